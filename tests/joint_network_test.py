"""Tests for asr_kd.modeling.joint_network."""

import numpy as np
import tensorflow as tf

from asr_kd.configs import rnnt_config
from asr_kd.modeling import joint_network


class JointNetworkTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self._rng = np.random.default_rng(0)
    self._network = joint_network.JointNetwork(
        rnnt_config.JointNetworkConfig(joint_dim=9, vocab_size=7))
    self._encoder_outputs = self._rng.normal(size=[2, 5, 11]).astype(
        np.float32)
    self._prediction_outputs = self._rng.normal(size=[2, 4, 6]).astype(
        np.float32)

  def _numpy_joint(self):
    weights = {w.name.split('/', 1)[1]: w.numpy().astype(np.float64)
               for w in self._network.weights}
    encoder = (self._encoder_outputs.astype(np.float64) @
               weights['encoder_projection/kernel:0'] +
               weights['encoder_projection/bias:0'])
    prediction = (self._prediction_outputs.astype(np.float64) @
                  weights['prediction_projection/kernel:0'])
    hidden = np.tanh(encoder[:, :, None, :] + prediction[:, None, :, :])
    return hidden @ weights['output/kernel:0'] + weights['output/bias:0']

  def test_call_matches_numpy(self):
    logits = self._network(self._encoder_outputs, self._prediction_outputs)
    self.assertEqual(logits.shape, (2, 5, 4, 7))
    self.assertAllClose(logits, self._numpy_joint(), atol=1e-5, rtol=1e-5)

  def test_pieces_compose_to_call_per_chunk_and_per_step(self):
    logits = self._network(self._encoder_outputs, self._prediction_outputs)
    encoder = self._network.project_encoder(self._encoder_outputs)
    prediction = self._network.project_prediction(self._prediction_outputs)
    # Per time chunk, as a memory-saving loss would do.
    chunks = [
        self._network.joint_from_projections(
            encoder[:, start:start + 2, tf.newaxis, :],
            prediction[:, tf.newaxis, :, :]) for start in range(0, 5, 2)
    ]
    self.assertAllClose(tf.concat(chunks, axis=1), logits, atol=1e-6)
    # Per decoding step: one frame and one label position per sequence.
    step_logits = self._network.joint_from_projections(
        encoder[:, 3], prediction[:, 2])
    self.assertAllClose(step_logits, logits[:, 3, 2], atol=1e-6)


if __name__ == '__main__':
  tf.test.main()
