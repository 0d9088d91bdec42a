"""RNN-T loss (Graves 2012) with an analytic gradient, FastEmit and a fused joint.

Two entry points, both returning the per-example negative log-likelihood in
nats as float32 [B]:

* `rnnt_loss(logits, ...)` takes the full joint output [B, T, U+1, V].
* `rnnt_loss_from_joint(encoder_out, predictor_out, joint_fn, ...)` computes
  the joint chunk by chunk over T (`chunked_joint`, with `ChunkedRnntTerm`)
  and never holds the full B*T*(U+1)*V logits.

Both reduce the vocabulary axis once (log-softmax normalizer + two gathers) to
[B, T, U+1] blank and label log-probabilities, run the alpha/beta recursions
of `rnnt_lattice` on those, and return d loss / d logits from a
`tf.custom_gradient`:

  d loss / d logits[t, u, v] = occ(t, u) * softmax(logits[t, u])[v]
                               - blank_occ(t, u) * [v == blank]
                               - label_occ(t, u) * [v == y_{u+1}]

with occ = blank_occ + label_occ (the node posterior). docs/losses.md has the
derivation, the memory layout and the numerics.

Input checks: shapes are checked at trace time (ValueError). Value checks
(lengths, label ids) are `tf.debugging` assertions, which raise
InvalidArgumentError eagerly and in ordinary graphs; XLA drops assertions, so
under `jit_compile=True` an example failing them gets a NaN loss instead
(never a silently wrong number), and `check_rnnt_inputs` can run the same
checks outside the compiled step (e.g. in the tf.data pipeline).
"""

import tensorflow as tf

from asr_kd.losses import chunked_joint
from asr_kd.losses import rnnt_lattice
from asr_kd.losses import vocab_reductions

lattice_mask = rnnt_lattice.lattice_mask

_NEG_INF = float('-inf')


def log_softmax_normalizer(logits):
  """log sum_v exp(logits[..., v]), accumulated in float32.

  Args:
    logits: float [..., V], any float dtype.

  Returns:
    float32 [...]. XLA fuses the cast into the passes over V, so no float32
    copy of low-precision logits is materialised.
  """
  return vocab_reductions.logsumexp_over_vocab(tf.cast(logits, tf.float32))


def pad_labels(labels, blank=0):
  """Appends one column so labels index every lattice column u = 0..U.

  Args:
    labels: int [B, U].
    blank: id written in the extra column (never used as a target).

  Returns:
    int32 [B, U+1].
  """
  labels = tf.cast(labels, tf.int32)
  return tf.pad(labels, [[0, 0], [0, 1]], constant_values=blank)


def blank_and_label_log_probs(logits, padded_labels, log_normalizer, blank=0):
  """Gathers log P(blank | t, u) and log P(y_{u+1} | t, u).

  Args:
    logits: float [B, T, U+1, V].
    padded_labels: int32 [B, U+1] from `pad_labels`.
    log_normalizer: float32 [B, T, U+1] from `log_softmax_normalizer`.
    blank: blank id.

  Returns:
    (blank_log_probs, label_log_probs), float32 [B, T, U+1] each; column U
    of label_log_probs refers to the padding label and must be ignored.
  """
  max_t = tf.shape(logits)[1]
  blank_logits = tf.cast(logits[..., blank], tf.float32)
  label_ids = tf.repeat(padded_labels[:, tf.newaxis, :], max_t, axis=1)
  label_logits = tf.gather(logits, label_ids[..., tf.newaxis], batch_dims=3)
  label_logits = tf.cast(label_logits[..., 0], tf.float32)
  return blank_logits - log_normalizer, label_logits - log_normalizer


def logits_gradient(logits, log_normalizer, padded_labels, blank_occ,
                    label_occ, keep, blank=0, clamp=None):
  """d(-log P)/d logits from transition occupancies, one elementwise pass.

  Args:
    logits: float [B, T, U+1, V].
    log_normalizer: float32 [B, T, U+1].
    padded_labels: int32 [B, U+1].
    blank_occ: float32 [B, T, U+1], posterior of the blank transition.
    label_occ: float32 [B, T, U+1], posterior of the label transition (already
      scaled by 1 + fastemit_lambda where FastEmit is on).
    keep: bool [B, T, U+1]; the gradient is exactly 0 where False.
    blank: blank id.
    clamp: optional float, clips every gradient value to [-clamp, clamp].

  Returns:
    float32 [B, T, U+1, V].
  """
  vocab = tf.range(tf.shape(logits)[-1])
  softmax = tf.exp(tf.cast(logits, tf.float32) - log_normalizer[..., None])
  grad = (softmax * (blank_occ + label_occ)[..., None]
          - tf.where(vocab == blank, blank_occ[..., None], 0.0)
          - tf.where(vocab == padded_labels[:, tf.newaxis, :, tf.newaxis],
                     label_occ[..., None], 0.0))
  if clamp is not None:
    grad = tf.clip_by_value(grad, -clamp, clamp)
  return tf.where(keep[..., None], grad, 0.0)


def check_rnnt_inputs(labels, logit_lengths, label_lengths, max_t, vocab_size,
                      blank=0):
  """Returns assertion ops for the value checks of the RNN-T loss.

  Raises InvalidArgumentError (eagerly, in graphs and in tf.data) when a
  length is negative or beyond the padded shape, or a label inside its
  length is out of [0, vocab_size) or equal to blank. Padding labels (at
  u >= label_lengths[b]) are not checked.

  Args:
    labels: int [B, U].
    logit_lengths: int [B].
    label_lengths: int [B].
    max_t: int, padded number of frames T.
    vocab_size: int, V.
    blank: blank id.

  Returns:
    A list of assertion ops (empty when executing eagerly and all pass).
  """
  labels = tf.cast(labels, tf.int32)
  logit_lengths = tf.cast(logit_lengths, tf.int32)
  label_lengths = tf.cast(label_lengths, tf.int32)
  max_u = tf.shape(labels)[1]
  in_length = tf.range(max_u)[tf.newaxis, :] < label_lengths[:, tf.newaxis]
  checked_labels = tf.where(in_length, labels, tf.ones_like(labels) * -1)
  label_ok = tf.logical_not(in_length) | (
      (labels >= 0) & (labels < vocab_size) & (labels != blank))
  return [
      tf.debugging.assert_non_negative(
          logit_lengths, message='rnnt: logit_lengths must be >= 0'),
      tf.debugging.assert_less_equal(
          logit_lengths, tf.cast(max_t, tf.int32),
          message='rnnt: logit_lengths exceed the number of frames T'),
      tf.debugging.assert_non_negative(
          label_lengths, message='rnnt: label_lengths must be >= 0'),
      tf.debugging.assert_less_equal(
          label_lengths, max_u,
          message='rnnt: label_lengths exceed the labels width U'),
      tf.debugging.Assert(
          tf.reduce_all(label_ok),
          ['rnnt: labels must be in [0, V) and differ from blank; V and blank:',
           vocab_size, blank, 'labels (-1 = padding):', checked_labels],
          summarize=64),
  ]


def _example_is_valid(labels, logit_lengths, label_lengths, max_t, vocab_size,
                      blank):
  """bool [B]: the per-example form of `check_rnnt_inputs`, kept by XLA."""
  max_u = tf.shape(labels)[1]
  in_length = tf.range(max_u)[tf.newaxis, :] < label_lengths[:, tf.newaxis]
  label_ok = tf.logical_not(in_length) | (
      (labels >= 0) & (labels < vocab_size) & (labels != blank))
  return (tf.reduce_all(label_ok, axis=1) & (logit_lengths >= 0) &
          (logit_lengths <= max_t) & (label_lengths >= 0) &
          (label_lengths <= max_u))


def _check_static_shapes(labels, logit_lengths, label_lengths, max_u_plus_1):
  """Raises ValueError on rank or width mismatches known at trace time."""
  if labels.shape.rank != 2:
    raise ValueError(f'rnnt: labels must be [B, U], got {labels.shape}')
  for name, lengths in (('logit_lengths', logit_lengths),
                        ('label_lengths', label_lengths)):
    if lengths.shape.rank != 1:
      raise ValueError(f'rnnt: {name} must be [B], got {lengths.shape}')
  max_u = labels.shape[1]
  if max_u is not None and max_u_plus_1 is not None and (
      max_u + 1 != max_u_plus_1):
    raise ValueError(
        f'rnnt: logits have U+1 = {max_u_plus_1} label positions but labels '
        f'have U = {max_u} columns; expected U+1 = {max_u + 1}')
  if not labels.dtype.is_integer:
    raise ValueError(f'rnnt: labels must be integers, got {labels.dtype}')


class Lattice:
  """Everything the loss needs about one batch, except the logits."""

  def __init__(self, blank_log_probs, label_log_probs, labels, logit_lengths,
               label_lengths, max_t, vocab_size, blank):
    self.logit_lengths = tf.cast(logit_lengths, tf.int32)
    self.label_lengths = tf.cast(label_lengths, tf.int32)
    labels = tf.cast(labels, tf.int32)
    self.input_ok = _example_is_valid(labels, self.logit_lengths,
                                      self.label_lengths, max_t, vocab_size,
                                      blank)
    # Clipping keeps invalid examples in range; they are reported as NaN.
    self.skewed = rnnt_lattice.skew_lattice(
        blank_log_probs, label_log_probs,
        tf.clip_by_value(self.logit_lengths, 0, max_t),
        tf.clip_by_value(self.label_lengths, 0, tf.shape(labels)[1]))
    self.max_t = max_t
    self.scaled_alpha, log_likelihood = rnnt_lattice.forward(self.skewed)
    self.loss = tf.where(self.input_ok, -log_likelihood, float('nan'))

  def occupancies(self, fastemit_lambda):
    """(blank_occ, label_occ), float32 [B, T, U+1], FastEmit-scaled."""
    scaled_beta = rnnt_lattice.backward(self.skewed)
    blank_occ, label_occ = rnnt_lattice.transition_occupancies(
        self.skewed, self.scaled_alpha, scaled_beta)
    blank_occ = rnnt_lattice.unskew(blank_occ, self.max_t)
    label_occ = rnnt_lattice.unskew(label_occ, self.max_t)
    return blank_occ, label_occ * (1.0 + fastemit_lambda)

  def keep_mask(self, zero_infinity):
    """bool [B, T, U+1]: lattice nodes whose gradient is not forced to 0."""
    keep = self.input_ok
    if zero_infinity:
      keep &= tf.math.is_finite(self.loss)
    return keep[:, tf.newaxis, tf.newaxis] & lattice_mask(
        self.logit_lengths, self.label_lengths, self.max_t,
        tf.shape(self.skewed.valid)[2])

  def reported_loss(self, zero_infinity):
    if zero_infinity:
      return tf.where(tf.math.is_finite(self.loss), self.loss, 0.0)
    return self.loss


def _assertions(labels, logit_lengths, label_lengths, max_t, vocab_size, blank,
                validate):
  if not validate:
    return []
  return check_rnnt_inputs(labels, logit_lengths, label_lengths, max_t,
                           vocab_size, blank)


def rnnt_loss(logits,
              labels,
              logit_lengths,
              label_lengths,
              blank=0,
              fastemit_lambda=0.0,
              clamp=None,
              zero_infinity=False,
              validate=True):
  """Per-example RNN-T negative log-likelihood, -log P(labels | logits).

  Args:
    logits: float [B, T, U+1, V] unnormalised joint outputs (float32,
      bfloat16 or float16; all accumulation is float32).
    labels: int [B, U], padded with anything (e.g. 0) past label_lengths.
    logit_lengths: int [B], T_b in [0, T]. T_b = 0 gives an infinite loss.
    label_lengths: int [B], U_b in [0, U].
    blank: blank id (the project's tokenizer uses 0).
    fastemit_lambda: FastEmit (Yu et al. 2021) weight: the gradient through
      label transitions is scaled by 1 + fastemit_lambda; the returned value
      stays the plain negative log-likelihood.
    clamp: optional float, clips d loss_b / d logits to [-clamp, clamp] before
      the upstream gradient is applied (as torchaudio's `clamp`).
    zero_infinity: when True, examples whose loss is inf or NaN (e.g. from
      non-finite logits or T_b < U_b + ... impossible alignments) get loss 0
      and an all-zero gradient.
    validate: add the `check_rnnt_inputs` assertions (no-ops under XLA).

  Returns:
    float32 [B] loss; differentiable w.r.t. `logits` only. The gradient has
    the dtype of `logits` and is exactly 0 at padded positions
    (t >= T_b or u > U_b).
  """
  logits = tf.convert_to_tensor(logits)
  labels = tf.convert_to_tensor(labels)
  logit_lengths = tf.convert_to_tensor(logit_lengths)
  label_lengths = tf.convert_to_tensor(label_lengths)
  if logits.shape.rank != 4:
    raise ValueError(f'rnnt: logits must be [B, T, U+1, V], got {logits.shape}')
  _check_static_shapes(labels, logit_lengths, label_lengths, logits.shape[2])
  max_t, vocab_size = tf.shape(logits)[1], tf.shape(logits)[3]
  checks = _assertions(labels, logit_lengths, label_lengths, max_t,
                       vocab_size, blank, validate)
  with tf.control_dependencies(checks):
    padded_labels = tf.clip_by_value(pad_labels(labels, blank), 0,
                                     vocab_size - 1)

  @tf.custom_gradient
  def loss_fn(logits):
    log_normalizer = log_softmax_normalizer(logits)
    blank_log_probs, label_log_probs = blank_and_label_log_probs(
        logits, padded_labels, log_normalizer, blank)
    lattice = Lattice(blank_log_probs, label_log_probs, labels,
                      logit_lengths, label_lengths, max_t, vocab_size, blank)

    def grad_fn(upstream):
      blank_occ, label_occ = lattice.occupancies(fastemit_lambda)
      grad = logits_gradient(logits, log_normalizer, padded_labels, blank_occ,
                             label_occ, lattice.keep_mask(zero_infinity),
                             blank, clamp)
      grad *= tf.cast(upstream, tf.float32)[:, None, None, None]
      return tf.cast(grad, logits.dtype)

    return lattice.reported_loss(zero_infinity), grad_fn

  return loss_fn(logits)


JointFn = chunked_joint.JointFn


class ChunkedRnntTerm(chunked_joint.Term):
  """The RNN-T loss as a `chunked_joint` term.

  Per chunk it keeps the float32 [B, Tc, U+1] normalizer, blank and label
  log-probs; after the loop the lattice gives the loss and, in the backward
  pass, the occupancies from which `logits_gradient` forms each chunk's
  logit gradient.
  """
  num_frame_values = 3

  def __init__(self, encoder_out, predictor_out, labels, logit_lengths,
               label_lengths, blank=0, fastemit_lambda=0.0, clamp=None,
               zero_infinity=False, validate=True):
    """Checks the inputs; the arguments are those of `rnnt_loss_from_joint`.

    Raises:
      ValueError: on rank or width mismatches known at trace time.
    """
    labels = tf.convert_to_tensor(labels)
    logit_lengths = tf.convert_to_tensor(logit_lengths)
    label_lengths = tf.convert_to_tensor(label_lengths)
    if encoder_out.shape.rank != 3 or predictor_out.shape.rank != 3:
      raise ValueError('rnnt: encoder_out must be [B, T, D] and predictor_out '
                       f'[B, U+1, D], got {encoder_out.shape} and '
                       f'{predictor_out.shape}')
    _check_static_shapes(labels, logit_lengths, label_lengths,
                         predictor_out.shape[1])
    self.labels = labels
    self.logit_lengths = logit_lengths
    self.label_lengths = label_lengths
    self.max_t = tf.shape(encoder_out)[1]
    self.blank = blank
    self.fastemit_lambda = fastemit_lambda
    self.clamp = clamp
    self.zero_infinity = zero_infinity
    self.validate = validate
    self.lattice = None
    self.log_normalizer = None

  def _padded_labels(self, logits):
    return tf.clip_by_value(pad_labels(self.labels, self.blank), 0,
                            tf.shape(logits)[-1] - 1)

  def reduce_chunk(self, chunk):
    log_normalizer = log_softmax_normalizer(chunk.logits)
    blank_log_probs, label_log_probs = blank_and_label_log_probs(
        chunk.logits, self._padded_labels(chunk.logits), log_normalizer,
        self.blank)
    return (log_normalizer, blank_log_probs, label_log_probs), ()

  def output(self, frame_values, example_totals, vocab_size):
    del example_totals  # The RNN-T term has no per-example values.
    self.log_normalizer, blank_log_probs, label_log_probs = frame_values
    checks = _assertions(self.labels, self.logit_lengths, self.label_lengths,
                         self.max_t, vocab_size, self.blank, self.validate)
    with tf.control_dependencies(checks):
      self.lattice = Lattice(blank_log_probs, label_log_probs, self.labels,
                             self.logit_lengths, self.label_lengths,
                             self.max_t, vocab_size, self.blank)
    return self.lattice.reported_loss(self.zero_infinity)

  def logits_gradient_fn(self, upstream, split):
    blank_occ, label_occ = self.lattice.occupancies(self.fastemit_lambda)
    log_normalizer, blank_occ, label_occ, keep = [
        split(x) for x in (self.log_normalizer, blank_occ, label_occ,
                           self.lattice.keep_mask(self.zero_infinity))]

    def gradient(chunk):
      index = chunk.index
      grad = logits_gradient(chunk.logits, log_normalizer[index],
                             self._padded_labels(chunk.logits),
                             blank_occ[index], label_occ[index], keep[index],
                             self.blank, self.clamp)
      return grad * upstream[:, None, None, None]

    return gradient


def rnnt_loss_from_joint(encoder_out,
                         predictor_out,
                         joint_fn: JointFn,
                         labels,
                         logit_lengths,
                         label_lengths,
                         blank=0,
                         fastemit_lambda=0.0,
                         clamp=None,
                         zero_infinity=False,
                         time_chunk_size=8,
                         validate=True):
  """RNN-T loss with the joint network computed in chunks of frames.

  Equal (loss and gradients) to `rnnt_loss(joint_fn(encoder_out[:, :, None],
  predictor_out[:, None]), ...)`, but only [B, time_chunk_size, U+1, V]
  logits exist at any time (`chunked_joint.fused_losses` with a
  `ChunkedRnntTerm`): the forward pass keeps the float32 [B, T, U+1]
  normalizer, blank and label log-probs; the backward pass recomputes each
  chunk's logits under a GradientTape and back-propagates the chunk's logit
  gradient into encoder_out, predictor_out and the variables joint_fn reads.

  Args:
    encoder_out: float [B, T, D_enc].
    predictor_out: float [B, U+1, D_pred] (prediction network outputs for the
      blank-prefixed label sequence).
    joint_fn: callable(encoder_chunk [B, Tc, 1, D_enc],
      predictor_out [B, 1, U+1, D_pred]) -> logits [B, Tc, U+1, V]. It must
      be a pure function of its inputs and of tf.Variables (no randomness
      such as dropout: the backward pass calls it again and needs the same
      logits). Tc is `time_chunk_size` (the last chunk is zero-padded).
    labels, logit_lengths, label_lengths, blank, fastemit_lambda, clamp,
    zero_infinity, validate: as in `rnnt_loss`.
    time_chunk_size: frames per joint evaluation; peak memory is about
      4 * B * Tc * (U+1) * V floats plus joint_fn's own activations.

  Returns:
    float32 [B] loss, differentiable w.r.t. encoder_out, predictor_out and
    the variables read by joint_fn.
  """
  encoder_out = tf.convert_to_tensor(encoder_out)
  predictor_out = tf.convert_to_tensor(predictor_out)
  term = ChunkedRnntTerm(encoder_out, predictor_out, labels, logit_lengths,
                         label_lengths, blank=blank,
                         fastemit_lambda=fastemit_lambda, clamp=clamp,
                         zero_infinity=zero_infinity, validate=validate)
  return chunked_joint.fused_losses(encoder_out, predictor_out, joint_fn,
                                    [term], time_chunk_size)[0]
