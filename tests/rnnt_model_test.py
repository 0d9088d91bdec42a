"""Tests for asr_kd.modeling.rnnt_model options not covered by the task tests."""

import numpy as np
import tensorflow as tf

from asr_kd.modeling import rnnt_model
from tests import testing_utils

VOCAB_SIZE = 7


def _model(utterance_mean_normalization: bool) -> rnnt_model.RnntModel:
  config = testing_utils.tiny_model_config().replace(
      utterance_mean_normalization=utterance_mean_normalization)
  tf.random.set_seed(3)
  model = rnnt_model.RnntModel(config, vocab_size=VOCAB_SIZE)
  model.build_for_checkpoint()
  return model


class UtteranceMeanNormalizationTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.lengths = np.array([40, 23], np.int32)
    self.features = rng.standard_normal((2, 40, 80)).astype(np.float32)
    self.features[1, 23:] = 0.0
    self.offsets = rng.standard_normal((2, 1, 80)).astype(np.float32) * 3
    self.model = _model(utterance_mean_normalization=True)

  def _plain_model_with_same_weights(self) -> rnnt_model.RnntModel:
    plain = _model(utterance_mean_normalization=False)
    plain.set_weights(self.model.get_weights())
    return plain

  def _encode(self, model, features):
    outputs = model({'features': tf.constant(features),
                     'feature_lengths': tf.constant(self.lengths)},
                    training=False)
    return outputs['encoder_outputs'].numpy(), outputs[
        'encoder_lengths'].numpy()

  def test_equals_the_plain_model_on_mean_subtracted_features(self):
    plain = self._plain_model_with_same_weights()
    reference = np.zeros_like(self.features, np.float64)
    for b, length in enumerate(self.lengths):
      valid = self.features[b, :length].astype(np.float64)
      reference[b, :length] = valid - valid.mean(0)
    expected, lengths = self._encode(plain, reference.astype(np.float32))
    actual, _ = self._encode(self.model, self.features)
    for b, length in enumerate(lengths):
      self.assertAllClose(actual[b, :length], expected[b, :length],
                          atol=1e-4)

  def test_a_fixed_spectral_offset_per_utterance_does_not_matter(self):
    shifted = self.features + self.offsets
    shifted[1, 23:] = 0.0
    before, lengths = self._encode(self.model, self.features)
    after, _ = self._encode(self.model, shifted)
    for b, length in enumerate(lengths):
      self.assertAllClose(after[b, :length], before[b, :length], atol=1e-4)
    # Guard: without the option the same offset changes the outputs.
    plain = self._plain_model_with_same_weights()
    self.assertNotAllClose(self._encode(plain, shifted)[0][0],
                           self._encode(plain, self.features)[0][0])

  def test_streaming_encoder_rejects_it(self):
    config = testing_utils.tiny_model_config(causal=True).replace(
        utterance_mean_normalization=True)
    with self.assertRaisesRegex(ValueError, 'streaming'):
      rnnt_model.RnntModel(config, vocab_size=VOCAB_SIZE)


if __name__ == '__main__':
  tf.test.main()
