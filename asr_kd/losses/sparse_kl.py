"""The full-vocabulary KL against stored top-k teacher targets.

A stored target keeps, per lattice node (t, u), the teacher's k most likely
ids with their tempered log-probabilities and the log of the remaining mass
(`TopKTargets`): k + 1 classes {v_1, ..., v_k, rest}. The KL compares the
teacher's and the student's distributions over those classes:

  KL = sum_i p_i (log p_i - log q_(v_i)) + p_rest (log p_rest - log q_rest)

with q = softmax(z / tau) and q_rest the student's mass outside the top k.
Its gradient w.r.t. the student's logits is (q_v - p'_v) / tau, where
p'_v = p_i for v = v_i and p_rest * q_v / q_rest for the other ids: the
teacher's rest mass spread in the student's own proportions (derivation in
docs/distillation.md, "Stored teacher targets"). With k = V it is the
full-vocabulary KL. The stored log-probs (float16 on disk) are renormalized
over the k + 1 classes before use.
"""

import functools
from typing import NamedTuple

import tensorflow as tf

from asr_kd.losses import chunked_joint
from asr_kd.losses import distillation_kl
from asr_kd.losses import vocab_reductions


class TopKTargets(NamedTuple):
  """A teacher's top-k distributions on the lattice nodes of a batch."""
  log_probs: tf.Tensor  # float [..., k], tempered, of the k most likely ids.
  ids: tf.Tensor  # int32 [..., k].
  rest_log_prob: tf.Tensor  # float [...], log of the mass of all other ids.


def _spread_over_vocab(values: tf.Tensor, ids: tf.Tensor,
                       vocab_size) -> tf.Tensor:
  """[..., V] with values [..., k] at ids [..., k] (distinct), 0 elsewhere.

  A chain of k elementwise selects, which XLA fuses into one pass over the
  vocabulary; k must be static.
  """
  ids = tf.cast(ids, tf.int32)
  num_ids = ids.shape[-1]
  if num_ids is None:
    raise ValueError('stored teacher targets need a static k (ids of shape '
                     f'[..., k]), got {ids.shape}.')
  vocab_ids = tf.range(vocab_size, dtype=tf.int32)
  spread = tf.zeros_like(values[..., :1]) * tf.cast(vocab_ids, values.dtype)
  for rank in range(num_ids):
    spread = tf.where(vocab_ids == ids[..., rank:rank + 1],
                      values[..., rank:rank + 1], spread)
  return spread


def _outside_top_k(vocab_size, ids: tf.Tensor) -> tf.Tensor:
  """[..., V] bool: True for the ids that are not among `ids` [..., k]."""
  return _spread_over_vocab(tf.ones(tf.shape(ids), tf.int32), ids,
                            vocab_size) == 0


def _log_sum_outside(scores: tf.Tensor, outside: tf.Tensor) -> tf.Tensor:
  """log sum exp of `scores` [..., V] over the entries marked `outside`."""
  return vocab_reductions.logsumexp_over_vocab(
      tf.where(outside, scores, float('-inf')))


def top_k_targets(log_probs: tf.Tensor, k: int) -> TopKTargets:
  """The top-k targets of full log-probs [..., V] (k <= V).

  The rest mass is summed over the other entries (never 1 - sum of the
  top k, which cancels to 0 for a confident teacher); -inf when k = V.
  """
  log_probs = tf.cast(log_probs, tf.float32)
  values, ids = tf.math.top_k(log_probs, k=k)
  outside = _outside_top_k(tf.shape(log_probs)[-1], ids)
  return TopKTargets(values, ids, _log_sum_outside(log_probs, outside))


def _normalized(targets: TopKTargets):
  """Float32 (top log-probs, rest log-prob) renormalized over k + 1."""
  top = tf.cast(targets.log_probs, tf.float32)
  rest = tf.cast(targets.rest_log_prob, tf.float32)
  log_total = tf.reduce_logsumexp(
      tf.concat([top, rest[..., None]], axis=-1), axis=-1)
  return top - log_total[..., None], rest - log_total


@functools.partial(tf.function, jit_compile=True)
def sparse_forward(student_logits, targets, node_mask, temperature, scale):
  """The KL per example, and the residuals of its gradient.

  Args:
    student_logits: [B, T, U + 1, V] raw student logits.
    targets: TopKTargets of [B, T, U + 1, k] (and [B, T, U + 1]).
    node_mask: [B, T, U + 1] bool, valid lattice nodes.
    temperature: tau, divides the student logits.
    scale: factor on every node's KL (tau**2 or 1).

  Returns:
    kl: [B] float32.
    residuals: (student_lse, student_rest_lse), both [B, T, U + 1]: the
      log sum exp of the tempered student logits over all ids and over the
      ids outside the top k.
  """
  scores = tf.cast(student_logits, tf.float32) / temperature
  student_lse = vocab_reductions.logsumexp_over_vocab(scores)
  outside = _outside_top_k(tf.shape(scores)[-1], targets.ids)
  student_rest_lse = _log_sum_outside(scores, outside)
  top_log_probs, rest_log_prob = _normalized(targets)
  student_top = tf.gather(scores, tf.cast(targets.ids, tf.int32),
                          batch_dims=3) - student_lse[..., None]
  top_kl = tf.reduce_sum(
      tf.exp(top_log_probs) * (top_log_probs - student_top), axis=-1)
  # 0 * log 0 = 0: a teacher with no rest mass (or k = V) adds nothing.
  rest_kl = tf.where(
      rest_log_prob > float('-inf'),
      tf.exp(rest_log_prob) *
      (rest_log_prob - (student_rest_lse - student_lse)), 0.0)
  node_kl = top_kl + rest_kl
  return (tf.reduce_sum(tf.where(node_mask, node_kl * scale, 0.0),
                        axis=[1, 2]),
          (student_lse, student_rest_lse))


@functools.partial(tf.function, jit_compile=True)
def sparse_backward(student_logits, targets, node_mask, residuals, upstream,
                    temperature, scale):
  """upstream[b] * d kl_b / d student_logits = (q - p') / tau * scale.

  Args:
    residuals: from `sparse_forward`.
    upstream: [B] gradient of the loss w.r.t. kl.
    (The others are those of `sparse_forward`.)

  Returns:
    [B, T, U + 1, V] float32 gradient, 0 on padded nodes.
  """
  student_lse, student_rest_lse = residuals
  scores = tf.cast(student_logits, tf.float32) / temperature
  vocab_size = tf.shape(scores)[-1]
  top_log_probs, rest_log_prob = _normalized(targets)
  top_target = _spread_over_vocab(tf.exp(top_log_probs), targets.ids,
                                  vocab_size)
  outside = _outside_top_k(vocab_size, targets.ids)
  # The teacher's rest mass in the student's proportions; exp(.) <= 1.
  rest_target = tf.exp(rest_log_prob[..., None] + scores -
                       student_rest_lse[..., None])
  target = tf.where(outside,
                    tf.where(rest_log_prob[..., None] > float('-inf'),
                             rest_target, 0.0), top_target)
  student_probs = tf.exp(scores - student_lse[..., None])
  return tf.where(node_mask[..., None],
                  (student_probs - target) * distillation_kl.gradient_weights(
                      node_mask, upstream, temperature, scale), 0.0)


def sparse_kernel(temperature: float,
                  scale: float) -> distillation_kl.KlKernel:
  """The top-k KL as a KlKernel whose teacher scores are TopKTargets."""
  settings = dict(temperature=float(temperature), scale=scale)
  return distillation_kl.KlKernel(
      forward=functools.partial(sparse_forward, **settings),
      backward=functools.partial(sparse_backward, **settings))


def top_k_kl(student_logits: tf.Tensor, targets: TopKTargets,
             logit_lengths: tf.Tensor, label_lengths: tf.Tensor,
             temperature: float = 1.0,
             scale_by_temperature_squared: bool = True) -> tf.Tensor:
  """Sum over valid lattice nodes of the KL against stored top-k targets.

  Args:
    student_logits: [B, T, U + 1, V] student joint logits.
    targets: TopKTargets of [B, T, U + 1, k]: the teacher's targets at the
      student's frames (`map_stored_targets`).
    logit_lengths: [B] int, valid frames per example.
    label_lengths: [B] int, labels per example.
    temperature: tau > 0 of the student (the targets were stored at it).
    scale_by_temperature_squared: multiply the KL by tau**2.

  Returns:
    [B] float32 KL per example; gradient to the student logits only.
  """
  scale = distillation_kl.scale_for(temperature,
                                    scale_by_temperature_squared)
  shape = tf.shape(student_logits)
  node_mask = distillation_kl.lattice_node_mask(
      logit_lengths, label_lengths, shape[1], shape[2])
  return distillation_kl.kl_with_analytic_gradient(
      sparse_kernel(temperature, scale), student_logits, targets, node_mask)


def map_stored_targets(targets: TopKTargets, target_frames: tf.Tensor,
                       frames: tf.Tensor, right_shift) -> TopKTargets:
  """Stored targets [B, M, U + 1, ...] at the student frames `frames`.

  Student frame t reads stored frame clip(t - right_shift, 0, M_b - 1), as
  the online mapping does (distillation_frames): the first frames repeat
  the first stored one, frames past the end repeat the last.

  Args:
    targets: TopKTargets with a frame axis 1 of M stored frames.
    target_frames: [B] int, the stored frames M_b of each example.
    frames: int32 [Tc], the student frames wanted.
    right_shift: the student's delay in frames: an int >= 0, or int [B]
      per example (e.g. plus a start offset's frames).

  Returns:
    TopKTargets with frame axis Tc.
  """
  last = tf.maximum(tf.cast(target_frames, tf.int32) - 1, 0)[:, None]
  shift = tf.reshape(tf.cast(right_shift, tf.int32), [-1, 1])
  indices = tf.minimum(tf.maximum(frames[None, :] - shift, 0), last)
  return TopKTargets(*[tf.gather(part, indices, batch_dims=1)
                       for part in targets])


class ChunkedTopKTerm(chunked_joint.Term):
  """The top-k KL as a `chunked_joint` term: the stored targets are mapped
  to each chunk's student frames, in the forward and the backward pass; the
  forward pass keeps the student's two normalizers per node for the
  backward one."""
  num_frame_values = 2
  num_example_values = 1

  def __init__(self, targets: TopKTargets, target_frames, logit_lengths,
               label_lengths, temperature=1.0,
               scale_by_temperature_squared=True, right_shift=0):
    """Binds the targets.

    Args:
      targets: TopKTargets [B, M, U + 1, k] (k static), the stored frames.
      target_frames: [B] int, stored frames per example.
      right_shift: int or int [B], as in `map_stored_targets`.
      (The others are those of `top_k_kl`.)
    """
    self.kernel = sparse_kernel(temperature, distillation_kl.scale_for(
        temperature, scale_by_temperature_squared))
    self.targets = tf.nest.map_structure(tf.stop_gradient, targets)
    self.target_frames = target_frames
    self.logit_lengths = tf.cast(logit_lengths, tf.int32)
    self.label_lengths = label_lengths
    self.right_shift = right_shift
    self.residuals = None

  def _targets_and_mask(self, chunk):
    frames = chunk.start + tf.range(chunk.size)
    targets = map_stored_targets(self.targets, self.target_frames, frames,
                                 self.right_shift)
    node_mask = distillation_kl.chunk_node_mask(
        self.logit_lengths, self.label_lengths, chunk.start, chunk.size,
        tf.shape(chunk.logits)[2])
    return targets, node_mask

  def reduce_chunk(self, chunk):
    kl, residuals = self.kernel.forward(chunk.logits,
                                        *self._targets_and_mask(chunk))
    return residuals, (kl,)

  def output(self, frame_values, example_totals, vocab_size):
    del vocab_size
    self.residuals = frame_values
    return example_totals[0]

  def logits_gradient_fn(self, upstream, split):
    chunked_residuals = [split(values) for values in self.residuals]

    def gradient(chunk):
      targets, node_mask = self._targets_and_mask(chunk)
      residuals = tuple(values[chunk.index] for values in chunked_residuals)
      return self.kernel.backward(chunk.logits, targets, node_mask,
                                  residuals, upstream)

    return gradient
