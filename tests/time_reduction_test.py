"""Temporal U-Net pooling: NumPy reference, lengths, config checks, encoder use."""

import numpy as np
import tensorflow as tf

import asr_kd  # pylint: disable=unused-import  (sets TF_USE_LEGACY_KERAS)
from asr_kd.configs import conformer_config
from asr_kd.modeling import conformer
from asr_kd.modeling import time_reduction


def _reference_pool(hidden, lengths, depthwise_kernel, depthwise_bias,
                    pointwise_kernel, pointwise_bias):
  """float64 loops: pooled[i] = W_p (sum_k w_k * x[2i + k] + b) + b_p."""
  batch, frames, dim = hidden.shape
  pooled_frames = -(-frames // 2)
  pooled = np.zeros([batch, pooled_frames, dim])
  for b in range(batch):
    for i in range(-(-lengths[b] // 2)):
      mixed = depthwise_bias.copy()
      for k in range(3):
        if 2 * i + k < frames:
          mixed += depthwise_kernel[k] * hidden[b, 2 * i + k]
      pooled[b, i] = mixed @ pointwise_kernel + pointwise_bias
  return pooled


class TimeReductionTest(tf.test.TestCase):

  def test_pooling_matches_numpy_reference(self):
    rng = np.random.default_rng(0)
    layer = time_reduction.TimeReduction(6)
    for frames, lengths in ((9, [9, 4]), (10, [10, 7]), (1, [1, 0])):
      hidden = rng.standard_normal([2, frames, 6])
      for b, length in enumerate(lengths):
        hidden[b, length:] = 0.0  # The layer's contract: zero padding.
      layer(tf.constant(hidden, tf.float32), tf.constant(lengths, tf.int32))
      # Non-zero biases, so that a wrongly unmasked frame would show.
      for variable in layer.weights:
        if 'bias' in variable.name:
          variable.assign(rng.standard_normal(variable.shape))
      pooled, pooled_mask = layer(tf.constant(hidden, tf.float32),
                                  tf.constant(lengths, tf.int32))
      depthwise_kernel, depthwise_bias, pointwise_kernel, pointwise_bias = [
          np.asarray(w, np.float64) for w in layer.get_weights()]
      expected = _reference_pool(hidden, lengths, depthwise_kernel[:, :, 0],
                                 depthwise_bias, pointwise_kernel,
                                 pointwise_bias)
      self.assertAllEqual(tf.reduce_sum(pooled_mask, axis=1),
                          [-(-n // 2) for n in lengths])
      self.assertAllEqual(pooled_mask, tf.sequence_mask(
          [-(-n // 2) for n in lengths], pooled.shape[1], tf.float32))
      self.assertAllClose(pooled, expected, atol=1e-5, msg=f'T={frames}')

  def test_recover_repeats_frames_and_adds_the_skip(self):
    rng = np.random.default_rng(1)
    pooled = rng.standard_normal([2, 3, 4]).astype(np.float32)
    for frames in (5, 6):
      skip = rng.standard_normal([2, frames, 4]).astype(np.float32)
      expected = np.stack([pooled[:, t // 2] for t in range(frames)], 1) + skip
      self.assertAllClose(
          time_reduction.TimeReduction.recover(tf.constant(pooled),
                                               tf.constant(skip)), expected)

  def test_config_rejects_bad_spans_and_causal_encoders(self):
    base = conformer_config.conformer_demo_teacher()
    base.validate()
    layers = base.num_layers
    base.replace(time_reduction_start=1, time_reduction_end=layers).validate()
    for start, end in ((3, 2), (-1, 2), (2, layers + 1)):
      with self.assertRaisesRegex(ValueError, 'time_reduction_start'):
        base.replace(time_reduction_start=start,
                     time_reduction_end=end).validate()
    student = conformer_config.conformer_demo_student()
    with self.assertRaisesRegex(ValueError, 'full-context'):
      student.replace(time_reduction_start=1,
                      time_reduction_end=2).validate()

  def test_encoder_middle_blocks_see_half_the_frames(self):
    config = conformer_config.ConformerEncoderConfig(
        input_dim=16, subsampling_filters=4, model_dim=8, num_layers=3,
        num_heads=2, conv_kernel_size=3, dropout_rate=0.0,
        attention_dropout_rate=0.0, conv_norm='layer_norm',
        time_reduction_start=1, time_reduction_end=2)
    encoder = conformer.build_encoder(config)
    frames_seen = []
    for block in encoder.blocks:
      original_call = block.call

      def recording_call(hidden, *args, _call=original_call, **kwargs):
        frames_seen.append(hidden.shape[1])
        return _call(hidden, *args, **kwargs)

      block.call = recording_call
    outputs, lengths = encoder(tf.zeros([1, 44, 16]), tf.constant([44]))
    self.assertEqual(frames_seen, [11, 6, 11])
    self.assertEqual(outputs.shape, (1, 11, 8))
    self.assertAllEqual(lengths, [11])
    self.assertEqual(encoder.count_params(),
                     conformer.count_parameters(config))


if __name__ == '__main__':
  tf.test.main()
