"""Tests for asr_kd.dataloaders.start_offset and its pipeline use."""

import numpy as np
import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import start_offset
from tests import input_pipeline_test


class RandomStartOffsetTest(tf.test.TestCase):

  def test_prepend_zeros_matches_numpy(self):
    rng = np.random.RandomState(0)
    for offset in (0, 1, 159, 640):
      waveform = rng.uniform(-1, 1, rng.randint(1, 3000)).astype(np.float32)
      expected = np.concatenate([np.zeros(offset, np.float32), waveform])
      self.assertAllEqual(start_offset.prepend_zeros(waveform, offset),
                          expected)

  def test_same_seed_same_offset_and_offsets_cover_the_range(self):
    config = data_config.StartOffsetConfig(enabled=True,
                                           max_offset_samples=7)
    waveform = tf.random.stateless_uniform([1000], seed=[1, 2],
                                           minval=0.1, maxval=1.0)
    offsets = set()
    for seed in range(60):
      first = start_offset.random_start_offset(waveform, config, 10**6,
                                               [seed, 3])
      again = start_offset.random_start_offset(waveform, config, 10**6,
                                               [seed, 3])
      self.assertAllEqual(first, again)
      offset = len(first) - 1000
      self.assertAllEqual(first[:offset], tf.zeros([offset]))
      self.assertAllEqual(first[offset:], waveform)
      offsets.add(offset)
    self.assertEqual(offsets, set(range(8)))

  def test_offset_is_narrowed_to_fit_the_longest_allowed(self):
    config = data_config.StartOffsetConfig(enabled=True,
                                           max_offset_samples=640)
    waveform = tf.ones([1000])
    for seed in range(20):
      self.assertBetween(len(start_offset.random_start_offset(
          waveform, config, 1003, [seed, 0])), 1000, 1003)
      # An utterance already at (or past) the limit keeps its length.
      self.assertLen(start_offset.random_start_offset(
          waveform, config, 900, [seed, 0]), 1000)


class PipelineStartOffsetTest(input_pipeline_test.ShardsTestCase):

  def test_training_features_are_those_of_the_zero_prefixed_audio(self):
    config = self._config(start_offset={'enabled': True},
                          spec_augment={'enabled': False})
    offsets = []
    batches = self.first_batches(config)
    for batch in batches:
      for row, utterance_id in enumerate(batch['utterance_id']):
        audio = self.records[utterance_id.decode()][0]
        offset = batch['num_samples'][row] - len(audio)
        self.assertBetween(offset, 0, 640)
        offsets.append(offset)
        expected = features_lib.log_mel(start_offset.prepend_zeros(
            features_lib.waveform_to_float(audio), offset))
        length = batch['feature_lengths'][row]
        self.assertEqual(length, len(expected))
        self.assertAllClose(batch['features'][row, :length], expected,
                            atol=1e-4)
    self.assertGreater(len(set(offsets)), len(offsets) // 2)
    # Seeded: the same config gives the same batches.
    for first, again in zip(batches, self.first_batches(config)):
      self.assertAllEqual(first['num_samples'], again['num_samples'])

  def test_evaluation_is_never_offset(self):
    self.assert_evaluation_keeps_every_length(start_offset={'enabled': True})

  def test_enabling_it_leaves_speed_perturbation_unchanged(self):
    # Each waveform augmentation folds its own seed.
    speed = self._config(speed_perturbation={'enabled': True})
    both = self._config(speed_perturbation={'enabled': True},
                        start_offset={'enabled': True})
    for alone, together in zip(self.first_batches(speed),
                               self.first_batches(both)):
      offsets = together['num_samples'] - alone['num_samples']
      self.assertTrue(np.all((offsets >= 0) & (offsets <= 640)))

  def test_non_positive_largest_offset_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'start_offset'):
      input_pipeline.AsrInputPipeline(
          self._config(start_offset={'enabled': True,
                                     'max_offset_samples': 0}),
          self.tokenizer)


if __name__ == '__main__':
  tf.test.main()
