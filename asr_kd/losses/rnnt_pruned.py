"""Pruned RNN-T loss (Kuang et al., Interspeech 2022), on `rnnt_lattice`.

The full joint network costs B * T * (U+1) evaluations. The pruned loss runs
it only on a band of `prune_range` label positions per frame:

1. A "simple" joint, logits = am[t] + lm[u] from two linear heads, gives a
   cheap full lattice: its normalizer is one matrix product over the
   vocabulary. Its loss (`simple_loss`) is trained too, and the posterior
   occupancy of its lattice nodes says where the alignment lies.
2. Per frame t the band [s_t, s_t + S) with the largest occupancy is chosen,
   then adjusted so that a path exists inside the bands: s_0 = 0,
   s_t <= s_(t+1) <= s_t + S - 1 and s_(T_b - 1) >= U_b - S + 1
   (`pruning_starts`). This needs U_b <= (S - 1) * T_b; an example with more
   labels has no path in its band and an infinite pruned loss.
3. The real joint runs on the band only ([B, T, S, V] logits), and its blank
   and label log-probabilities, -inf outside the band, go through the same
   alpha/beta recursions as the full loss (`pruned_loss`).

Both losses take their gradient from the lattice's transition occupancies
(d loss / d log P(transition) = -occupancy) through a `tf.custom_gradient`;
TF differentiates the rest (normalizers, gathers, joint). The band is chosen
without gradient. docs/losses.md has the cost and the options.
"""

from typing import Callable, NamedTuple

import tensorflow as tf

from asr_kd.losses import rnnt
from asr_kd.losses import rnnt_lattice

_NEG_INF = float('-inf')


def lattice_loss(blank_log_probs, label_log_probs, labels, logit_lengths,
                 label_lengths, vocab_size, blank=0, fastemit_lambda=0.0,
                 zero_infinity=False):
  """-log P(labels) from per-node log-probabilities, with node occupancies.

  Args:
    blank_log_probs: float32 [B, T, U+1], log P(blank | t, u).
    label_log_probs: float32 [B, T, U+1], log P(y_(u+1) | t, u); column U is
      ignored. -inf entries are transitions no path may take.
    labels: int [B, U].
    logit_lengths: int [B], T_b.
    label_lengths: int [B], U_b.
    vocab_size: V, for the label checks (an invalid example's loss is NaN).
    blank: blank id.
    fastemit_lambda: FastEmit weight: the label transitions' gradient is
      scaled by 1 + fastemit_lambda (the loss and occupancy are not).
    zero_infinity: an example whose loss is not finite gets loss 0 and a zero
      gradient.

  Returns:
    (loss float32 [B], node_occupancy float32 [B, T, U+1]): the posterior
    probability that the alignment passes through node (t, u) (no gradient).
    The loss's gradient w.r.t. the two log-probability inputs is minus the
    occupancy of the blank and label transitions.
  """
  max_t = tf.shape(blank_log_probs)[1]

  @tf.custom_gradient
  def loss_fn(blank_log_probs, label_log_probs):
    lattice = rnnt.Lattice(
        blank_log_probs, label_log_probs, labels, logit_lengths,
        label_lengths, max_t, vocab_size, blank)
    blank_occ, label_occ = lattice.occupancies(fastemit_lambda=0.0)
    keep = lattice.keep_mask(zero_infinity)

    def grad_fn(upstream_loss, upstream_occupancy):
      del upstream_occupancy  # The occupancy is a statistic, not a loss.
      scale = tf.cast(upstream_loss, tf.float32)[:, None, None]
      return (tf.where(keep, -blank_occ * scale, 0.0),
              tf.where(keep, -label_occ * (1.0 + fastemit_lambda) * scale,
                       0.0))

    occupancy = tf.where(keep, blank_occ + label_occ, 0.0)
    return (lattice.reported_loss(zero_infinity), occupancy), grad_fn

  loss, occupancy = loss_fn(tf.cast(blank_log_probs, tf.float32),
                            tf.cast(label_log_probs, tf.float32))
  return loss, tf.stop_gradient(occupancy)


def simple_log_probs(am_logits, lm_logits, padded_labels, blank=0):
  """Blank and label log-probabilities of the joint logits am[t] + lm[u].

  log sum_v exp(am[t, v] + lm[u, v]) factors into a matrix product of
  exp(am) and exp(lm), so no [B, T, U+1, V] tensor is formed.

  Args:
    am_logits: float [B, T, V] (from the encoder).
    lm_logits: float [B, U+1, V] (from the prediction network).
    padded_labels: int32 [B, U+1] from `rnnt.pad_labels`.
    blank: blank id.

  Returns:
    (blank_log_probs, label_log_probs), float32 [B, T, U+1].
  """
  am_logits = tf.cast(am_logits, tf.float32)
  lm_logits = tf.cast(lm_logits, tf.float32)
  am_max = tf.stop_gradient(tf.reduce_max(am_logits, axis=2, keepdims=True))
  lm_max = tf.stop_gradient(tf.reduce_max(lm_logits, axis=2, keepdims=True))
  products = tf.einsum('btv,buv->btu', tf.exp(am_logits - am_max),
                       tf.exp(lm_logits - lm_max))
  # Exact unless, for every label, am and lm together fall more than ~87
  # nats below their maxima (float32 underflow of the product); the floor
  # keeps the log finite in that case.
  log_normalizer = (tf.math.log(tf.maximum(products, 1e-35)) + am_max +
                    tf.transpose(lm_max, [0, 2, 1]))
  blank_log_probs = (am_logits[:, :, blank][:, :, tf.newaxis] +
                     lm_logits[:, :, blank][:, tf.newaxis, :] -
                     log_normalizer)
  am_label = tf.gather(am_logits, padded_labels, axis=2, batch_dims=1)
  lm_label = tf.gather(lm_logits, padded_labels[:, :, tf.newaxis],
                       batch_dims=2)[:, :, 0]
  label_log_probs = am_label + lm_label[:, tf.newaxis, :] - log_normalizer
  return blank_log_probs, label_log_probs


def _running_max(values, reverse=False):
  """max over t' <= t (or t' >= t when reverse) of values[:, t'], [B, T]."""
  steps = tf.range(tf.shape(values)[1])
  if reverse:
    included = steps[tf.newaxis, :] >= steps[:, tf.newaxis]
  else:
    included = steps[tf.newaxis, :] <= steps[:, tf.newaxis]
  lowest = tf.reduce_min(values)
  return tf.reduce_max(
      tf.where(included[tf.newaxis], values[:, tf.newaxis, :], lowest), axis=2)


def pruning_starts(occupancy, logit_lengths, label_lengths, prune_range):
  """First label position s_t of each frame's band [s_t, s_t + S).

  Args:
    occupancy: float [B, T, U+1] node occupancy (e.g. of the simple lattice).
    logit_lengths: int [B], T_b.
    label_lengths: int [B], U_b.
    prune_range: S >= 2, label positions per frame.

  Returns:
    int32 [B, T]: the start maximizing the band's occupancy, moved as little
    as needed so that s_0 = 0, s_t <= s_(t+1) <= s_t + S - 1 and (where
    U_b <= (S - 1) * T_b) s_(T_b - 1) >= U_b - S + 1, and never past
    max(U_b + 1 - S, 0). Frames t >= T_b hold the last valid start.
  """
  if prune_range < 2:
    raise ValueError(f'prune_range must be >= 2, got {prune_range}')
  occupancy = tf.cast(occupancy, tf.float32)
  logit_lengths = tf.cast(logit_lengths, tf.int32)
  label_lengths = tf.cast(label_lengths, tf.int32)
  width = tf.shape(occupancy)[2]
  # Zero columns so that every start 0 .. U has a full window.
  padded = tf.pad(occupancy, [[0, 0], [0, 0], [1, prune_range]])
  cumulative = tf.cumsum(padded, axis=2)
  window = (cumulative[:, :, prune_range:prune_range + width] -
            cumulative[:, :, :width])
  last_start = tf.maximum(label_lengths + 1 - prune_range, 0)  # [B]
  positions = tf.range(width)
  window = tf.where(positions[tf.newaxis, tf.newaxis, :] <=
                    last_start[:, tf.newaxis, tf.newaxis], window, -1.0)
  starts = tf.argmax(window, axis=2, output_type=tf.int32)

  frames = tf.range(tf.shape(occupancy)[1])[tf.newaxis, :]
  step = prune_range - 1
  # Reachable from s_0 = 0, and able to reach U_b by frame T_b - 1.
  highest = tf.minimum(step * frames, last_start[:, tf.newaxis])
  frames_left = logit_lengths[:, tf.newaxis] - 1 - frames
  lowest = tf.maximum(label_lengths[:, tf.newaxis] - step -
                      step * tf.maximum(frames_left, 0), 0)
  lowest = tf.minimum(lowest, highest)
  starts = tf.minimum(tf.maximum(starts, lowest), highest)
  in_frames = frames < logit_lengths[:, tf.newaxis]
  # Padding frames must not raise the starts of the frames before them.
  starts = _running_max(tf.where(in_frames, starts, 0))
  # s_t >= s_t' - step * (t' - t) for every t' > t (steps of at most S - 1);
  # this keeps starts <= highest, which grows by at most S - 1 per frame.
  starts = _running_max(starts - step * frames, reverse=True) + step * frames
  last_valid = tf.gather(starts, tf.maximum(logit_lengths - 1, 0),
                         batch_dims=1)
  return tf.where(in_frames, starts, last_valid[:, tf.newaxis])


def band_to_lattice(band_values, starts, max_u_plus_1):
  """Places [B, T, S] band values at label positions s_t .. s_t + S - 1.

  Args:
    band_values: float [B, T, S].
    starts: int32 [B, T] from `pruning_starts`.
    max_u_plus_1: U+1, the lattice width.

  Returns:
    float [B, T, U+1], -inf outside the band.
  """
  prune_range = tf.shape(band_values)[2]
  offset = tf.range(max_u_plus_1)[tf.newaxis, tf.newaxis, :] - (
      starts[:, :, tf.newaxis])
  inside = (offset >= 0) & (offset < prune_range)
  gathered = tf.gather(band_values, tf.clip_by_value(offset, 0,
                                                     prune_range - 1),
                       batch_dims=2)
  return tf.where(inside, gathered, _NEG_INF)


BandJointFn = Callable[[tf.Tensor], tf.Tensor]


class PrunedLosses(NamedTuple):
  pruned: tf.Tensor  # float32 [B]
  simple: tf.Tensor  # float32 [B]


def pruned_rnnt_loss(am_logits, lm_logits, band_joint_fn: BandJointFn,
                     labels, logit_lengths, label_lengths, prune_range,
                     blank=0, fastemit_lambda=0.0,
                     zero_infinity=False) -> PrunedLosses:
  """The simple and the pruned RNN-T losses of one batch.

  Args:
    am_logits: float [B, T, V], the simple joint's encoder term.
    lm_logits: float [B, U+1, V], the simple joint's prediction term.
    band_joint_fn: label_index int32 [B, T, S] -> logits [B, T, S, V] of
      the real joint at frame t and label position label_index[b, t, s]
      (`RnntModel.band_joint_fn`).
    labels: int [B, U].
    logit_lengths: int [B], T_b.
    label_lengths: int [B], U_b.
    prune_range: S, label positions per frame (>= 2).
    blank: blank id.
    fastemit_lambda: FastEmit weight, applied to the pruned loss's gradient.
    zero_infinity: zero the loss and gradient of non-finite examples (e.g.
      U_b > (S - 1) * T_b, which has no path in the band).

  Returns:
    `PrunedLosses` of float32 [B]: the pruned loss approximates -log P(y|x)
    (from above: it sums over the band's paths only).
  """
  labels = tf.cast(labels, tf.int32)
  vocab_size = tf.shape(am_logits)[2]
  max_u_plus_1 = tf.shape(labels)[1] + 1
  padded_labels = tf.clip_by_value(rnnt.pad_labels(labels, blank), 0,
                                   vocab_size - 1)
  simple_blank, simple_label = simple_log_probs(am_logits, lm_logits,
                                                padded_labels, blank)
  simple, occupancy = lattice_loss(
      simple_blank, simple_label, labels, logit_lengths, label_lengths,
      vocab_size, blank, zero_infinity=zero_infinity)
  starts = pruning_starts(occupancy, logit_lengths, label_lengths,
                          prune_range)
  label_index = tf.minimum(starts[:, :, tf.newaxis] + tf.range(prune_range),
                           max_u_plus_1 - 1)  # [B, T, S]
  logits = band_joint_fn(label_index)
  log_normalizer = rnnt.log_softmax_normalizer(logits)
  band_blank = tf.cast(logits[..., blank], tf.float32) - log_normalizer
  band_labels = tf.gather(padded_labels, label_index, batch_dims=1)
  band_label = tf.cast(
      tf.gather(logits, band_labels[..., tf.newaxis], batch_dims=3)[..., 0],
      tf.float32) - log_normalizer
  pruned, _ = lattice_loss(
      band_to_lattice(band_blank, starts, max_u_plus_1),
      band_to_lattice(band_label, starts, max_u_plus_1),
      labels, logit_lengths, label_lengths, vocab_size, blank,
      fastemit_lambda, zero_infinity)
  return PrunedLosses(pruned=pruned, simple=simple)
