"""Soft-target KL terms over an RNN-T lattice, with analytic gradients.

Both terms compare the teacher's and the student's next-symbol distributions
at every valid node (t, u) of the target sequence's lattice (t < T_b,
u <= U_b) and return one sum per example. The teacher is a constant: no
gradient ever flows to it. The student's gradient is written out analytically
(see docs/distillation.md, "Losses") instead of being left to autodiff, so
the backward pass is one fused elementwise kernel and nothing else of size
B*T*(U+1)*V is kept between the passes.

* `full_vocab_kl`: KL(P_teacher^tau || P_student^tau) over the whole
  vocabulary, blank included.
* `three_class_kl`: KL over the distributions collapsed to the classes
  {y_(u+1), blank, rest} (Panchapagesan et al., Interspeech 2021). At the
  last row u == U_b there is no next label, so the classes are {blank, rest}.

The kernels are XLA-compiled (`tf.function(jit_compile=True)`).
"""

import functools
from typing import Any, Callable, NamedTuple, Optional, Tuple

import tensorflow as tf

from asr_kd.losses import vocab_reductions

# Class ids of the three-class collapse.
LABEL_CLASS = 0
BLANK_CLASS = 1
REST_CLASS = 2
NUM_CLASSES = 3


def lattice_node_mask(logit_lengths: tf.Tensor, label_lengths: tf.Tensor,
                      num_frames, num_label_rows) -> tf.Tensor:
  """Marks the valid nodes of each example's RNN-T lattice.

  Args:
    logit_lengths: [B] int, valid encoder frames per example.
    label_lengths: [B] int, labels per example (U_b).
    num_frames: T, the padded number of frames.
    num_label_rows: U + 1, the padded number of label rows.

  Returns:
    [B, T, U + 1] bool, True where t < logit_lengths[b] and
    u <= label_lengths[b].
  """
  frame_valid = tf.range(num_frames)[None, :] < tf.cast(
      logit_lengths, tf.int32)[:, None]
  row_valid = tf.range(num_label_rows)[None, :] <= tf.cast(
      label_lengths, tf.int32)[:, None]
  return frame_valid[:, :, None] & row_valid[:, None, :]


def chunk_node_mask(logit_lengths: tf.Tensor, label_lengths: tf.Tensor,
                    chunk_start, chunk_size: int,
                    num_label_rows) -> tf.Tensor:
  """`lattice_node_mask` of the frames [chunk_start, chunk_start + size).

  Frames in the padding beyond an example's length (and beyond T) are
  invalid.
  """
  return lattice_node_mask(
      tf.clip_by_value(tf.cast(logit_lengths, tf.int32) - chunk_start, 0,
                       chunk_size),
      label_lengths, chunk_size, num_label_rows)


def tempered_log_probs(logits: tf.Tensor, temperature: float) -> tf.Tensor:
  """log softmax(logits / temperature) in float32."""
  return tf.nn.log_softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)


def next_labels(labels: tf.Tensor, label_lengths: tf.Tensor,
                blank: int = 0) -> Tuple[tf.Tensor, tf.Tensor]:
  """The label y_(u+1) that row u of the lattice emits next.

  Args:
    labels: [B, U] int target labels (padded entries are ignored).
    label_lengths: [B] int, U_b.
    blank: the blank id.

  Returns:
    next_label: [B, U + 1] int32 (blank where there is none).
    has_next_label: [B, U + 1] bool: u < U_b and the label is not blank. A
      label equal to blank is treated as absent (its row gets the classes
      {blank, rest}); the last row u == U_b never has one.
  """
  labels = tf.cast(labels, tf.int32)
  next_label = tf.concat(
      [labels, tf.fill([tf.shape(labels)[0], 1], tf.constant(blank, tf.int32))],
      axis=1)
  rows = tf.range(tf.shape(next_label)[1])
  has_next_label = ((rows[None, :] < tf.cast(label_lengths, tf.int32)[:, None])
                    & (next_label != blank))
  return tf.where(has_next_label, next_label, blank), has_next_label


def three_class_ids(labels: tf.Tensor, label_lengths: tf.Tensor,
                    vocab_size, blank: int = 0) -> tf.Tensor:
  """Assigns every vocabulary entry to a class at every label row.

  Args:
    labels: [B, U] int target labels (padded entries are ignored).
    label_lengths: [B] int, U_b.
    vocab_size: V.
    blank: the blank id.

  Returns:
    [B, 1, U + 1, V] int32 in {LABEL_CLASS, BLANK_CLASS, REST_CLASS}; the
    frame axis has size 1 and broadcasts over T.
  """
  next_label, has_next_label = next_labels(labels, label_lengths, blank)
  vocab_ids = tf.range(vocab_size)[None, None, :]
  is_label = (vocab_ids == next_label[:, :, None]) & has_next_label[:, :, None]
  class_ids = tf.where(vocab_ids == blank, BLANK_CLASS,
                       tf.where(is_label, LABEL_CLASS, REST_CLASS))
  return class_ids[:, None, :, :]


def _teacher_log_probs_and_lse(teacher_scores: tf.Tensor,
                               teacher_temperature: Optional[float]):
  """Teacher log-probs and their normaliser (0 for ready log-probs)."""
  if teacher_temperature is None:
    teacher_log_probs = tf.cast(teacher_scores, tf.float32)
    return teacher_log_probs, tf.zeros_like(teacher_log_probs[..., 0])
  scaled = tf.cast(teacher_scores, tf.float32) / teacher_temperature
  teacher_lse = vocab_reductions.logsumexp_over_vocab(scaled)
  return scaled - teacher_lse[..., None], teacher_lse


def _masked_sum_per_example(node_values: tf.Tensor, node_mask: tf.Tensor,
                            scale: float) -> tf.Tensor:
  # tf.where (not a product) so that garbage in padded logits cannot leak NaN.
  return tf.reduce_sum(tf.where(node_mask, node_values * scale, 0.0),
                       axis=[1, 2])


def gradient_weights(node_mask, upstream, temperature, scale):
  """[B, T, U+1, 1] factor of every node's gradient: 0 on padded nodes."""
  weights = tf.cast(node_mask, tf.float32) * (scale / temperature)
  return (weights * tf.cast(upstream, tf.float32)[:, None, None])[..., None]


@functools.partial(tf.function, jit_compile=True)
def full_vocab_forward(student_logits, teacher_scores, node_mask, temperature,
                       teacher_temperature, scale):
  """Full-vocabulary KL per example, and the residuals of its gradient.

  Args:
    student_logits: [B, T, U + 1, V] raw student logits.
    teacher_scores: [B, T, U + 1, V] teacher logits (divided by
      `teacher_temperature`) or, with `teacher_temperature` None, teacher
      log-probabilities already at the distillation temperature.
    node_mask: [B, T, U + 1] bool, valid lattice nodes.
    temperature: tau, divides the student logits.
    teacher_temperature: tau for teacher logits; None for log-probs.
    scale: factor on every node's KL (tau**2 or 1).

  Returns:
    kl: [B] float32, scale * sum over valid nodes of KL(teacher || student).
    residuals: (student_lse, teacher_lse), both [B, T, U + 1]: the softmax
      normalisers, so that the backward pass is one elementwise loop.
  """
  student_scaled = tf.cast(student_logits, tf.float32) / temperature
  student_lse = vocab_reductions.logsumexp_over_vocab(student_scaled)
  teacher_log_probs, teacher_lse = _teacher_log_probs_and_lse(
      teacher_scores, teacher_temperature)
  node_kl = vocab_reductions.sum_over_vocab(
      tf.exp(teacher_log_probs) *
      (teacher_log_probs - student_scaled + student_lse[..., None]))
  return (_masked_sum_per_example(node_kl, node_mask, scale),
          (student_lse, teacher_lse))


@functools.partial(tf.function, jit_compile=True)
def full_vocab_backward(student_logits, teacher_scores, node_mask, residuals,
                        upstream, temperature, teacher_temperature, scale):
  """upstream[b] * d kl_b / d student_logits = (q - p) / tau * scale.

  Args:
    residuals: from `full_vocab_forward`.
    upstream: [B] gradient of the loss w.r.t. kl.
    (The others are those of `full_vocab_forward`.)

  Returns:
    [B, T, U + 1, V] float32 gradient, 0 on padded nodes.
  """
  student_lse, teacher_lse = residuals
  teacher_scaled = tf.cast(teacher_scores, tf.float32)
  if teacher_temperature is not None:
    teacher_scaled /= teacher_temperature
  student_probs = tf.exp(
      tf.cast(student_logits, tf.float32) / temperature -
      student_lse[..., None])
  teacher_probs = tf.exp(teacher_scaled - teacher_lse[..., None])
  return tf.where(node_mask[..., None],
                  (student_probs - teacher_probs) *
                  gradient_weights(node_mask, upstream, temperature, scale),
                  0.0)


def _class_log_probs(scores, class_ids, next_label, has_next_label, blank):
  """Normaliser and log class masses of softmax(scores) over the 3 classes.

  The label and blank classes hold one entry each and are read directly; the
  rest class is summed relative to the row maximum (never as
  1 - p_label - p_blank, which cancels to 0 when the model is confident).

  Args:
    scores: [B, T, U + 1, V] float32 tempered logits (or log-probs).
    class_ids: [B, 1, U + 1, V] from `three_class_ids`.
    next_label, has_next_label: [B, U + 1] from `next_labels`.
    blank: the blank id.

  Returns:
    lse: [B, T, U + 1] log sum exp(scores).
    class_log_probs: [B, T, U + 1, 3]; -inf for an empty class (no next
      label at the last row; no rest when V == 2).
  """
  row_max = tf.reduce_max(scores, axis=-1)
  shape = tf.shape(scores)
  label_index = tf.broadcast_to(next_label[:, None, :, None],
                                tf.concat([shape[:3], [1]], 0))
  label_score = tf.gather(scores, label_index, batch_dims=3)[..., 0]
  blank_score = scores[..., blank]
  # One pass over the vocabulary: the rest mass; the normaliser adds the two
  # single-entry classes to it (all terms positive: nothing cancels).
  rest_mass = vocab_reductions.sum_over_vocab(
      tf.where(class_ids == REST_CLASS, tf.exp(scores - row_max[..., None]),
               0.0))
  label_mass = tf.where(has_next_label[:, None, :],
                        tf.exp(label_score - row_max), 0.0)
  log_total = tf.math.log(rest_mass + label_mass +
                          tf.exp(blank_score - row_max))
  lse = log_total + row_max
  label_log_prob = tf.where(has_next_label[:, None, :], label_score - lse,
                            float('-inf'))
  return lse, tf.stack([label_log_prob, blank_score - lse,
                        tf.math.log(rest_mass) - log_total], axis=-1)


@functools.partial(tf.function, jit_compile=True)
def three_class_forward(student_logits, teacher_scores, node_mask, labels,
                        label_lengths, blank, temperature, teacher_temperature,
                        scale):
  """Three-class KL per example, and the residuals of its gradient.

  Args:
    labels: [B, U] int target labels; label_lengths: [B] int; blank: int.
    (The others are those of `full_vocab_forward`.)

  Returns:
    kl: [B] float32.
    residuals: (rest_lse [B, T, U + 1], the student's log sum exp over the
      rest class; class_mass_gap [B, T, U + 1, 3], Q_c - P_c: student minus
      teacher class masses).
  """
  vocab_size = tf.shape(student_logits)[-1]
  class_ids = three_class_ids(labels, label_lengths, vocab_size, blank)
  next_label, has_next_label = next_labels(labels, label_lengths, blank)
  student_lse, student_class_log_probs = _class_log_probs(
      tf.cast(student_logits, tf.float32) / temperature, class_ids,
      next_label, has_next_label, blank)
  teacher_scores = tf.cast(teacher_scores, tf.float32)
  if teacher_temperature is not None:
    teacher_scores /= teacher_temperature
  _, teacher_class_log_probs = _class_log_probs(
      teacher_scores, class_ids, next_label, has_next_label, blank)
  teacher_class_present = teacher_class_log_probs > float('-inf')
  node_kl = tf.reduce_sum(
      tf.where(teacher_class_present,
               tf.exp(teacher_class_log_probs) *
               (teacher_class_log_probs - student_class_log_probs), 0.0),
      axis=-1)
  # -inf (an empty rest class) only when V == 2: then no entry reads it.
  rest_lse = student_lse + student_class_log_probs[..., REST_CLASS]
  class_mass_gap = (tf.exp(student_class_log_probs) -
                    tf.exp(teacher_class_log_probs))
  return (_masked_sum_per_example(node_kl, node_mask, scale),
          (rest_lse, class_mass_gap))


@functools.partial(tf.function, jit_compile=True)
def three_class_backward(student_logits, node_mask, labels, label_lengths,
                         blank, residuals, upstream, temperature, scale):
  """upstream[b] * d kl_b / d student_logits for the three-class KL.

  With q = softmax(z / tau), Q_c = sum_{v in c} q_v and teacher class masses
  P_c: d KL / d z_v = q_v (1 - P_c(v) / Q_c(v)) / tau, c(v) the class of v
  (derivation in docs/distillation.md). The label and blank classes hold one
  entry each (q_v = Q_c): Q_c - P_c. A rest entry's is
  (q_v / Q_rest) (Q_rest - P_rest), where q_v / Q_rest = exp(z_v / tau -
  lse_rest) <= 1: one exp per entry, and no overflow when the student gives
  the rest class almost no mass.

  Args:
    residuals: (rest_lse [B, T, U + 1], class_mass_gap [B, T, U + 1, 3] =
      Q_c - P_c) from `three_class_forward`.
    upstream: [B] gradient of the loss w.r.t. kl.
    (The others are those of `three_class_forward`.)

  Returns:
    [B, T, U + 1, V] float32 gradient, 0 on padded nodes.
  """
  rest_lse, class_mass_gap = residuals
  class_ids = three_class_ids(labels, label_lengths,
                              tf.shape(student_logits)[-1], blank)
  rest_share = tf.exp(tf.cast(student_logits, tf.float32) / temperature -
                      rest_lse[..., None])
  entry_gradient = tf.where(
      class_ids == LABEL_CLASS,
      class_mass_gap[..., LABEL_CLASS:LABEL_CLASS + 1],
      tf.where(class_ids == BLANK_CLASS,
               class_mass_gap[..., BLANK_CLASS:BLANK_CLASS + 1],
               rest_share * class_mass_gap[..., REST_CLASS:REST_CLASS + 1]))
  return tf.where(
      node_mask[..., None],
      entry_gradient * gradient_weights(node_mask, upstream, temperature,
                                         scale), 0.0)


class KlKernel(NamedTuple):
  """A KL term split into the passes its analytic gradient needs.

  forward(student_logits, teacher_scores, node_mask) -> (kl [B], residuals)
  backward(student_logits, teacher_scores, node_mask, residuals, upstream)
    -> upstream-weighted d kl / d student_logits.
  """
  forward: Callable[..., Tuple[tf.Tensor, Any]]
  backward: Callable[..., tf.Tensor]


def full_vocab_kernel(temperature: float, teacher_temperature: Optional[float],
                      scale: float) -> KlKernel:
  """The full-vocabulary KL as a KlKernel (static settings bound)."""
  settings = dict(temperature=float(temperature),
                  teacher_temperature=teacher_temperature, scale=scale)
  return KlKernel(
      forward=functools.partial(full_vocab_forward, **settings),
      backward=functools.partial(full_vocab_backward, **settings))


def three_class_kernel(labels: tf.Tensor, label_lengths: tf.Tensor, blank: int,
                       temperature: float,
                       teacher_temperature: Optional[float],
                       scale: float) -> KlKernel:
  """The three-class KL as a KlKernel (labels and settings bound)."""
  targets = dict(labels=tf.cast(labels, tf.int32),
                 label_lengths=tf.cast(label_lengths, tf.int32), blank=blank)

  def forward(student_logits, teacher_scores, node_mask):
    return three_class_forward(student_logits, teacher_scores, node_mask,
                               temperature=float(temperature),
                               teacher_temperature=teacher_temperature,
                               scale=scale, **targets)

  def backward(student_logits, teacher_scores, node_mask, residuals,
               upstream):
    del teacher_scores  # The residuals hold all the teacher's part.
    return three_class_backward(student_logits, node_mask,
                                residuals=residuals, upstream=upstream,
                                temperature=float(temperature), scale=scale,
                                **targets)

  return KlKernel(forward=forward, backward=backward)


def kl_with_analytic_gradient(kernel: KlKernel, student_logits: tf.Tensor,
                              teacher_scores: tf.Tensor,
                              node_mask: tf.Tensor) -> tf.Tensor:
  """Runs `kernel` and attaches its analytic gradient to `student_logits`.

  Args:
    kernel: the KL term.
    student_logits: [B, T, U + 1, V].
    teacher_scores: [B, T, U + 1, V] teacher logits or log-probs, or
      another structure of tensors (as the kernel expects); treated as a
      constant.
    node_mask: [B, T, U + 1] bool.

  Returns:
    [B] KL per example, differentiable w.r.t. `student_logits` only.
  """
  teacher_scores = tf.nest.map_structure(tf.stop_gradient, teacher_scores)

  @tf.custom_gradient
  def kl_of_student(logits):
    # Eager custom_gradient keeps recording inner ops on the tape; a watched
    # input would make the kernels' tf.functions keep every intermediate for
    # a backward pass that never runs (6x the logits, measured).
    constant_logits = tf.stop_gradient(logits)
    kl, residuals = kernel.forward(constant_logits, teacher_scores, node_mask)

    def grad_fn(upstream):
      return tf.cast(
          kernel.backward(constant_logits, teacher_scores, node_mask,
                          residuals, upstream), logits.dtype)

    return kl, grad_fn

  return kl_of_student(student_logits)


def scale_for(temperature: float, scale_by_temperature_squared: bool) -> float:
  """The per-node factor: tau**2 keeps gradient magnitudes tau-independent."""
  if temperature <= 0:
    raise ValueError(f'temperature must be > 0, got {temperature}.')
  return float(temperature)**2 if scale_by_temperature_squared else 1.0


def resolve_teacher(teacher_logits: Optional[tf.Tensor],
                    teacher_log_probs: Optional[tf.Tensor],
                    temperature: float) -> Tuple[tf.Tensor, Optional[float]]:
  """(teacher_scores, teacher_temperature) from exactly one of the inputs."""
  if (teacher_logits is None) == (teacher_log_probs is None):
    raise ValueError('Pass exactly one of teacher_logits and '
                     'teacher_log_probs.')
  if teacher_log_probs is not None:
    return teacher_log_probs, None
  return teacher_logits, float(temperature)


def full_vocab_kl(student_logits: tf.Tensor,
                  teacher_logits: Optional[tf.Tensor],
                  logit_lengths: tf.Tensor,
                  label_lengths: tf.Tensor,
                  temperature: float = 1.0,
                  scale_by_temperature_squared: bool = True,
                  teacher_log_probs: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Sum over valid lattice nodes of KL(P_teacher^tau || P_student^tau).

  Args:
    student_logits: [B, T, U + 1, V] student joint logits.
    teacher_logits: [B, T, U + 1, V] teacher joint logits on the same lattice
      (or None when `teacher_log_probs` is given).
    logit_lengths: [B] int, valid frames per example.
    label_lengths: [B] int, labels per example.
    temperature: tau > 0; both distributions are softmax(logits / tau).
    scale_by_temperature_squared: multiply the KL by tau**2.
    teacher_log_probs: alternatively, teacher log-probs already at `tau` (e.g.
      from `map_teacher_log_probs_to_student_frames`).

  Returns:
    [B] float32 KL summed over the valid (t, u) nodes of each example. Its
    gradient reaches the student logits only.
  """
  scale = scale_for(temperature, scale_by_temperature_squared)
  teacher_scores, teacher_temperature = resolve_teacher(
      teacher_logits, teacher_log_probs, temperature)
  shape = tf.shape(student_logits)
  node_mask = lattice_node_mask(logit_lengths, label_lengths, shape[1],
                                shape[2])
  kernel = full_vocab_kernel(temperature, teacher_temperature, scale)
  return kl_with_analytic_gradient(kernel, student_logits, teacher_scores,
                                   node_mask)


def three_class_kl(student_logits: tf.Tensor,
                   teacher_logits: Optional[tf.Tensor],
                   labels: tf.Tensor,
                   logit_lengths: tf.Tensor,
                   label_lengths: tf.Tensor,
                   blank: int = 0,
                   temperature: float = 1.0,
                   scale_by_temperature_squared: bool = True,
                   teacher_log_probs: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Sum over valid lattice nodes of the KL between collapsed distributions.

  At node (t, u) with u < U_b the classes are {y_(u+1), blank, rest}; at the
  last row u == U_b they are {blank, rest}.

  Args:
    student_logits: [B, T, U + 1, V] student joint logits.
    teacher_logits: [B, T, U + 1, V] teacher joint logits (or None when
      `teacher_log_probs` is given).
    labels: [B, U] int target labels (non-blank ids).
    logit_lengths: [B] int, valid frames per example.
    label_lengths: [B] int, labels per example.
    blank: the blank id.
    temperature: tau > 0, applied to the full distributions before collapsing.
    scale_by_temperature_squared: multiply the KL by tau**2.
    teacher_log_probs: alternatively, teacher log-probs already at `tau`.

  Returns:
    [B] float32 KL per example; gradient to the student logits only.
  """
  scale = scale_for(temperature, scale_by_temperature_squared)
  teacher_scores, teacher_temperature = resolve_teacher(
      teacher_logits, teacher_log_probs, temperature)
  shape = tf.shape(student_logits)
  node_mask = lattice_node_mask(logit_lengths, label_lengths, shape[1],
                                shape[2])
  kernel = three_class_kernel(labels, label_lengths, blank, temperature,
                              teacher_temperature, scale)
  return kl_with_analytic_gradient(kernel, student_logits, teacher_scores,
                                   node_mask)
