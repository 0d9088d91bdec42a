"""Tests for asr_kd.inference.segmentation."""

import numpy as np
import tensorflow as tf

from asr_kd.inference import segmentation

FRAME = segmentation.FRAME_SAMPLES


def _noise_with_pauses(num_samples, pauses, seed=0):
  """Loud noise with silent [start, end) pauses."""
  samples = np.random.default_rng(seed).normal(0, 3000, num_samples)
  for start, end in pauses:
    samples[start:end] = 0
  return samples.astype(np.int16)


class SegmentBoundsTest(tf.test.TestCase):

  def test_short_audio_is_one_segment(self):
    self.assertEqual(segmentation.segment_bounds(np.ones(800), 800, 400),
                     [(0, 800)])
    self.assertEqual(segmentation.segment_bounds(np.ones(0), 800, 400),
                     [(0, 0)])

  def test_cuts_fall_in_the_pauses(self):
    # Pauses at 7.1-7.3 s and 14.0-14.2 s; segments of at most 8 s, cut in
    # their last 2 s.
    pauses = [(7100 * 16, 7300 * 16), (14000 * 16, 14200 * 16)]
    samples = _noise_with_pauses(20 * 16000, pauses)
    bounds = segmentation.segment_bounds(samples, 8 * 16000, 2 * 16000)
    self.assertLen(bounds, 3)
    for (_, cut), (pause_start, pause_end) in zip(bounds, pauses):
      self.assertBetween(cut, pause_start + FRAME, pause_end)

  def test_random_audio_is_tiled_within_the_limit(self):
    rng = np.random.default_rng(1)
    for _ in range(30):
      num_samples = int(rng.integers(1, 200_000))
      max_samples = int(rng.integers(FRAME, 50_000))
      search = int(rng.integers(FRAME, 60_000))
      samples = rng.normal(0, 1000, num_samples)
      bounds = segmentation.segment_bounds(samples, max_samples, search)
      self.assertEqual(bounds[0][0], 0)
      self.assertEqual(bounds[-1][1], num_samples)
      for (start, end), (next_start, _) in zip(bounds, bounds[1:]):
        self.assertEqual(end, next_start)
      for start, end in bounds:
        self.assertBetween(end - start, 1 if num_samples else 0, max_samples)
      # Every cut is the quietest whole frame of its search window.
      for start, cut in bounds[:-1]:
        window_start = start + max_samples - min(search, max_samples)
        frames = (min(search, max_samples)) // FRAME
        energy = [np.sum(np.square(samples[window_start + f * FRAME:
                                           window_start + (f + 1) * FRAME]))
                  for f in range(frames)]
        chosen = (cut - window_start) // FRAME - 1
        self.assertEqual(energy[chosen], min(energy))

  def test_limits_below_a_frame_are_refused(self):
    with self.assertRaisesRegex(ValueError, 'at least 160'):
      segmentation.segment_bounds(np.ones(1000), 100, 400)


if __name__ == '__main__':
  tf.test.main()
