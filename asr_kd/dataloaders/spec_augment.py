"""SpecAugment with adaptive time masks (Park et al. 2020, LibriSpeech policy).

On one utterance's features [T, F] with `length` valid frames:
  * `num_freq_masks` frequency masks, width f ~ U{0..freq_mask_max_bins},
    start ~ U{0..F - f};
  * min(num_time_masks, floor(time_masks_per_frame * length)) time masks,
    width t ~ U{0..floor(time_mask_max_ratio * length)}, start ~
    U{0..length - t}: both the count and the width adapt to the length.
Masked cells get 0, the mean of the normalized features; the input pipeline
sends the mask (`mask`) and the model's frontend applies it.
All randomness is stateless (`tf.random.stateless_uniform`) from a seed [2],
so the same seed gives the same masks.
"""

from typing import NamedTuple

import tensorflow as tf

from asr_kd.configs import data_config


class MaskSpans(NamedTuple):
  """Sampled masks; inactive time masks have width 0.

  Attributes:
    freq_starts: int32 [num_freq_masks].
    freq_widths: int32 [num_freq_masks].
    time_starts: int32 [num_time_masks].
    time_widths: int32 [num_time_masks].
    num_active_time_masks: int32 scalar.
  """
  freq_starts: tf.Tensor
  freq_widths: tf.Tensor
  time_starts: tf.Tensor
  time_widths: tf.Tensor
  num_active_time_masks: tf.Tensor


def _uniform_int(count: int, maxval_inclusive: tf.Tensor,
                 seed: tf.Tensor) -> tf.Tensor:
  """`count` ints uniform in [0, maxval_inclusive] (element-wise bound)."""
  unit = tf.random.stateless_uniform([count], seed=seed, dtype=tf.float32)
  upper = tf.cast(maxval_inclusive, tf.float32) + 1.0
  # min() guards the float rounding case unit * upper == upper.
  return tf.minimum(tf.cast(tf.floor(unit * upper), tf.int32),
                    tf.cast(maxval_inclusive, tf.int32))


def sample_mask_spans(length: tf.Tensor, num_bins: int,
                      config: data_config.SpecAugmentConfig,
                      seed: tf.Tensor) -> MaskSpans:
  """Draws the frequency and time masks for one utterance.

  Args:
    length: int scalar, number of valid frames.
    num_bins: feature dimension F.
    config: SpecAugment config.
    seed: int32/int64 [2] stateless seed.

  Returns:
    MaskSpans.
  """
  length = tf.cast(length, tf.int32)
  seeds = tf.random.experimental.stateless_split(seed, num=4)
  max_freq_width = min(config.freq_mask_max_bins, num_bins)
  freq_widths = _uniform_int(config.num_freq_masks,
                             tf.constant(max_freq_width), seeds[0])
  freq_starts = _uniform_int(config.num_freq_masks, num_bins - freq_widths,
                             seeds[1])

  length_float = tf.cast(length, tf.float32)
  num_active = tf.minimum(
      config.num_time_masks,
      tf.cast(tf.floor(config.time_masks_per_frame * length_float), tf.int32))
  max_time_width = tf.cast(
      tf.floor(config.time_mask_max_ratio * length_float), tf.int32)
  # A fixed number of masks is drawn so shapes stay static; the ones past
  # `num_active` get width 0.
  time_widths = _uniform_int(config.num_time_masks,
                             tf.fill([config.num_time_masks], max_time_width),
                             seeds[2])
  time_widths *= tf.cast(tf.range(config.num_time_masks) < num_active,
                         tf.int32)
  time_starts = _uniform_int(config.num_time_masks,
                             tf.maximum(length - time_widths, 0), seeds[3])
  return MaskSpans(freq_starts, freq_widths, time_starts, time_widths,
                   num_active)


def _spans_to_mask(size: tf.Tensor, starts: tf.Tensor,
                   widths: tf.Tensor) -> tf.Tensor:
  """bool [size], True inside any [start, start + width)."""
  positions = tf.range(size)[:, tf.newaxis]
  inside = (positions >= starts) & (positions < starts + widths)
  return tf.reduce_any(inside, axis=1)


def mask_from_spans(num_frames: tf.Tensor, num_bins: int,
                    spans: MaskSpans) -> tf.Tensor:
  """bool [num_frames, num_bins], True in every masked cell."""
  freq_mask = _spans_to_mask(num_bins, spans.freq_starts, spans.freq_widths)
  time_mask = _spans_to_mask(num_frames, spans.time_starts,
                             spans.time_widths)
  return time_mask[:, tf.newaxis] | freq_mask[tf.newaxis, :]


def mask(num_frames: tf.Tensor, length: tf.Tensor, num_bins: int,
         config: data_config.SpecAugmentConfig,
         seed: tf.Tensor) -> tf.Tensor:
  """bool [num_frames, num_bins]: the cells SpecAugment masks.

  Args:
    num_frames: int scalar, the features' frames T.
    length: int scalar, valid frames (<= T); masks fall in [0, length).
    num_bins: feature dimension F.
    config: SpecAugment config.
    seed: int [2] stateless seed.
  """
  return mask_from_spans(num_frames, num_bins,
                         sample_mask_spans(length, num_bins, config, seed))
