"""Tests for asr_kd.dataloaders.spec_augment."""

import numpy as np
import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import spec_augment


def _reference_mask(num_frames, num_bins, spans):
  """Union of the sampled spans, built with NumPy loops."""
  masked = np.zeros((num_frames, num_bins), bool)
  for start, width in zip(spans.freq_starts.numpy(), spans.freq_widths.numpy()):
    masked[:, start:start + width] = True
  for start, width in zip(spans.time_starts.numpy(), spans.time_widths.numpy()):
    masked[start:start + width, :] = True
  return masked


class SpecAugmentTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.config = data_config.SpecAugmentConfig()
    self.rng = np.random.RandomState(5)

  def test_counts_and_sizes_follow_adaptive_policy(self):
    for trial, length in enumerate((10, 24, 25, 100, 260, 1000)):
      spans = spec_augment.sample_mask_spans(
          tf.constant(length), 80, self.config, tf.constant([3, trial]))
      expected_count = min(10, int(np.floor(0.04 * length)))
      max_width = int(np.floor(0.05 * length))
      self.assertEqual(int(spans.num_active_time_masks), expected_count)
      time_widths = spans.time_widths.numpy()
      time_starts = spans.time_starts.numpy()
      self.assertLen(time_widths, 10)
      self.assertTrue(np.all(time_widths[expected_count:] == 0))
      self.assertTrue(np.all(time_widths <= max_width))
      self.assertTrue(np.all(time_starts >= 0))
      self.assertTrue(np.all(time_starts + time_widths <= length))
      freq_widths = spans.freq_widths.numpy()
      freq_starts = spans.freq_starts.numpy()
      self.assertLen(freq_widths, 2)
      self.assertTrue(np.all(freq_widths <= 27))
      self.assertTrue(np.all(freq_starts + freq_widths <= 80))

  def test_widths_cover_their_ranges(self):
    # Over many seeds the widths reach both ends of U{0..max} (not off by one).
    freq_widths, time_widths = [], []
    for trial in range(150):
      spans = spec_augment.sample_mask_spans(
          tf.constant(400), 80, self.config, tf.constant([9, trial]))
      freq_widths.extend(spans.freq_widths.numpy())
      time_widths.extend(spans.time_widths.numpy())
    self.assertEqual((min(freq_widths), max(freq_widths)), (0, 27))
    self.assertEqual((min(time_widths), max(time_widths)), (0, 20))

  def test_mask_covers_the_sampled_spans_within_the_valid_frames(self):
    spans = spec_augment.sample_mask_spans(tf.constant(250), 80, self.config,
                                           tf.constant([1, 2]))
    masked = spec_augment.mask(tf.constant(300), tf.constant(250), 80,
                               self.config, tf.constant([1, 2]))
    expected_mask = _reference_mask(300, 80, spans)
    self.assertAllEqual(masked, expected_mask)
    self.assertTrue(expected_mask.any())
    self.assertFalse(expected_mask[250:, :].all(axis=1).any())

  def test_same_seed_same_masks_different_seed_different_masks(self):
    def mask(seed):
      return spec_augment.mask(200, 200, 80, self.config, seed)
    self.assertAllEqual(mask([4, 4]), mask([4, 4]))
    self.assertNotAllEqual(mask([4, 4]), mask([4, 5]))

  def test_runs_in_tf_function_with_unknown_length(self):
    mask = tf.function(
        lambda n, s: spec_augment.mask(n, n, 80, self.config, s),
        input_signature=[tf.TensorSpec([], tf.int32),
                         tf.TensorSpec([2], tf.int64)])
    self.assertEqual(mask(120, [0, 1]).shape, (120, 80))


if __name__ == '__main__':
  tf.test.main()
