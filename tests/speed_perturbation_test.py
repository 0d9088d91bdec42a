"""Tests for asr_kd.dataloaders.speed_perturbation and its pipeline use."""

import numpy as np
import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import speed_perturbation
from tests import input_pipeline_test


def _reference_change_speed(waveform, factor):
  """float64 NumPy: linear interpolation at k * factor."""
  last = len(waveform) - 1
  positions = np.arange(int(np.floor(last / factor)) + 1) * factor
  return np.interp(positions, np.arange(len(waveform)), waveform)


class ChangeSpeedTest(tf.test.TestCase):

  def test_matches_float64_interpolation_on_random_cases(self):
    rng = np.random.default_rng(0)
    for _ in range(20):
      waveform = rng.standard_normal(int(rng.integers(1, 3000)))
      factor = float(rng.uniform(0.5, 2.0))
      result = speed_perturbation.change_speed(
          tf.constant(waveform, tf.float32), factor).numpy()
      expected = _reference_change_speed(waveform, factor)
      self.assertEqual(result.shape, expected.shape)
      self.assertAllClose(result, expected, atol=1e-5)

  def test_factor_one_is_the_identity_and_lengths_follow_the_factor(self):
    waveform = tf.random.stateless_normal([16000], seed=[1, 2])
    self.assertAllEqual(speed_perturbation.change_speed(waveform, 1.0),
                        waveform)
    self.assertLen(speed_perturbation.change_speed(waveform, 1.1),
                   1 + int(15999 / 1.1))
    self.assertLen(speed_perturbation.change_speed(waveform, 0.9),
                   1 + int(15999 / 0.9))

  def test_a_slower_tone_has_a_lower_pitch(self):
    time = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * time).astype(np.float32)
    for factor in (0.9, 1.1):
      slowed = speed_perturbation.change_speed(tf.constant(tone),
                                               factor).numpy()
      spectrum = np.abs(np.fft.rfft(slowed))
      peak_hz = np.argmax(spectrum) * 16000 / len(slowed)
      self.assertAllClose(peak_hz, 1000 * factor, atol=2.0)


class RandomSpeedTest(tf.test.TestCase):

  def test_same_seed_same_factor_and_lengths_in_range(self):
    config = data_config.SpeedPerturbationConfig(enabled=True)
    waveform = tf.random.stateless_normal([8001], seed=[3, 4])
    lengths = set()
    for seed in range(20):
      first = speed_perturbation.random_speed(waveform, config, 10**6,
                                              [seed, 0])
      again = speed_perturbation.random_speed(waveform, config, 10**6,
                                              [seed, 0])
      self.assertAllEqual(first, again)
      self.assertBetween(len(first), 1 + 8000 / 1.1, 1 + 8000 / 0.9)
      lengths.add(len(first))
    self.assertGreater(len(lengths), 10)

  def test_factor_is_raised_to_fit_the_longest_allowed(self):
    config = data_config.SpeedPerturbationConfig(
        enabled=True, min_factor=0.5, max_factor=0.5)
    waveform = tf.random.stateless_normal([10001], seed=[5, 6])
    result = speed_perturbation.random_speed(waveform, config, 12001, [7, 8])
    self.assertLessEqual(len(result), 12001)
    self.assertGreaterEqual(len(result), 12000)


class PipelineSpeedPerturbationTest(input_pipeline_test.ShardsTestCase):

  def test_training_changes_lengths_within_the_range_and_buckets(self):
    config = self._config(speed_perturbation={'enabled': True})
    last_bucket = input_pipeline_test._BOUNDARIES[-1]
    perturbed = self.first_batches(config)
    for batch in perturbed:
      for row, utterance_id in enumerate(batch['utterance_id']):
        samples = len(self.records[utterance_id.decode()][0])
        self.assertBetween(batch['num_samples'][row],
                           min(1 + (samples - 1) / 1.1, samples),
                           1 + (samples - 1) / 0.9)
        self.assertEqual(batch['feature_lengths'][row],
                         features_lib.num_frames(batch['num_samples'][row]))
        self.assertLessEqual(batch['feature_lengths'][row], last_bucket)
    plain = self.first_batches(self._config())
    self.assertNotEqual([list(b['num_samples']) for b in plain],
                        [list(b['num_samples']) for b in perturbed])
    # Seeded: the same config gives the same batches.
    for first, again in zip(perturbed, self.first_batches(config)):
      self.assertAllEqual(first['features'], again['features'])

  def test_evaluation_is_never_perturbed(self):
    self.assert_evaluation_keeps_every_length(
        speed_perturbation={'enabled': True})

  def test_bad_factor_range_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'speed_perturbation'):
      input_pipeline.AsrInputPipeline(
          self._config(speed_perturbation={'enabled': True,
                                           'min_factor': 1.2,
                                           'max_factor': 1.1}),
          self.tokenizer)


if __name__ == '__main__':
  tf.test.main()
