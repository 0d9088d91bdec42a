"""ConformerEncoder.call(): lengths, masking, chunked context, XLA, presets."""

import numpy as np
import tensorflow as tf
import tf_keras

import asr_kd  # pylint: disable=unused-import  (sets TF_USE_LEGACY_KERAS)
from asr_kd.configs import conformer_config
from asr_kd.modeling import conformer


def _tiny_config(**overrides):
  values = dict(input_dim=16, subsampling_factor=4, subsampling_filters=4,
                model_dim=16, num_layers=2, num_heads=2, conv_kernel_size=3,
                dropout_rate=0.0, attention_dropout_rate=0.0,
                max_relative_position=6, conv_norm='layer_norm')
  values.update(overrides)
  return conformer_config.ConformerEncoderConfig(**values)


def _randomize_norms(encoder, rng):
  """Non-trivial batch-norm statistics, so that inference uses them."""
  for variable in encoder.weights:
    if 'moving_mean' in variable.name:
      variable.assign(rng.standard_normal(variable.shape))
    elif 'moving_variance' in variable.name:
      variable.assign(rng.random(variable.shape) + 0.5)


class ConformerEncoderTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    # Initial weights independent of the tests run before in the process:
    # with 4 subsampling filters a one-frame output can be all zeros after
    # the ReLUs for some draws, which the padding test would misread.
    tf_keras.utils.set_random_seed(0)

  def test_output_lengths_match_shapes_and_padding_is_zero(self):
    rng = np.random.default_rng(0)
    for factor in (4, 6, 8):
      encoder = conformer.ConformerEncoder(
          _tiny_config(subsampling_factor=factor))
      self.assertEqual(encoder.subsampling_factor, factor)
      self.assertEqual(encoder.output_dim, 16)
      for frames in (3 * factor, 5 * factor + factor - 1):
        lengths = np.array([frames, frames - factor - 1], np.int32)
        outputs, output_lengths = encoder(
            rng.standard_normal([2, frames, 16]).astype(np.float32), lengths)
        self.assertEqual(outputs.shape, (2, frames // factor, 16))
        self.assertAllEqual(output_lengths, lengths // factor)
        self.assertAllEqual(encoder.output_lengths(tf.constant(lengths)),
                            lengths // factor)
        self.assertEqual(output_lengths.dtype, tf.int32)
        self.assertAllEqual(outputs[1, output_lengths[1]:],
                            tf.zeros_like(outputs[1, output_lengths[1]:]))
        self.assertGreater(float(tf.reduce_min(tf.abs(
            outputs[1, :output_lengths[1], 0]))), 0.0)

  def test_padding_and_batching_do_not_change_outputs(self):
    rng = np.random.default_rng(1)
    for overrides in (dict(conv_norm='batch_norm'), dict(),
                      dict(causal=True, chunk_size=2, left_chunks=1),
                      dict(num_layers=3, time_reduction_start=1,
                           time_reduction_end=2),
                      dict(time_reduction_start=0, time_reduction_end=2)):
      encoder = conformer.ConformerEncoder(_tiny_config(**overrides))
      short = rng.standard_normal([1, 37, 16]).astype(np.float32)
      alone, alone_lengths = encoder(short, tf.constant([37]))
      _randomize_norms(encoder, rng)
      alone, alone_lengths = encoder(short, tf.constant([37]))
      batch = rng.standard_normal([2, 64, 16]).astype(np.float32)
      batch[1, :37] = short[0]
      batch[1, 37:] = 100.0  # Garbage padding must not leak in.
      batched, batched_lengths = encoder(batch, tf.constant([64, 37]))
      self.assertEqual(int(batched_lengths[1]), int(alone_lengths[0]))
      self.assertAllClose(batched[1, :alone.shape[1]], alone[0], atol=1e-5,
                          msg=str(overrides))

  def test_intermediate_layer_is_a_block_output_and_leaves_the_output(self):
    rng = np.random.default_rng(2)
    encoder = conformer.ConformerEncoder(_tiny_config(num_layers=3))
    features = rng.standard_normal([2, 40, 16]).astype(np.float32)
    lengths = tf.constant([40, 27])
    outputs, output_lengths = encoder(features, lengths)
    tapped, tapped_lengths, intermediate = encoder(features, lengths,
                                                   intermediate_layer=2)
    self.assertAllClose(tapped, outputs, atol=1e-6)
    self.assertAllEqual(tapped_lengths, output_lengths)
    self.assertAllEqual(intermediate[1, output_lengths[1]:],
                        tf.zeros_like(intermediate[1, output_lengths[1]:]))
    # The last block applied to the intermediate output gives the output.
    frame_mask = tf.sequence_mask(output_lengths, outputs.shape[1],
                                  dtype=tf.float32)
    last = encoder.blocks[2](intermediate, frame_mask,
                             encoder.attention_mask(frame_mask))
    self.assertAllClose(last, outputs, atol=1e-5)
    self.assertNotAllClose(intermediate, outputs)
    for layer in (0, 3):
      with self.assertRaisesRegex(ValueError, 'must be in 1 .. 2'):
        encoder(features, lengths, intermediate_layer=layer)
    reduced = conformer.ConformerEncoder(_tiny_config(
        num_layers=3, time_reduction_start=1, time_reduction_end=2))
    with self.assertRaisesRegex(ValueError, 'time reduction'):
      reduced(features, lengths, intermediate_layer=1)

  def test_causal_mode_sees_no_future_chunk(self):
    rng = np.random.default_rng(2)
    encoder = conformer.ConformerEncoder(
        _tiny_config(causal=True, chunk_size=3, left_chunks=2))
    features = rng.standard_normal([1, 72, 16]).astype(np.float32)
    outputs, _ = encoder(features, tf.constant([72]))
    # Encoder chunk 2 = frames 6..8 = feature frames 24..35.
    changed = features.copy()
    changed[:, 36:] += 5.0
    changed_outputs, _ = encoder(changed, tf.constant([72]))
    self.assertAllClose(changed_outputs[:, :9], outputs[:, :9], atol=1e-6)
    self.assertNotAllClose(changed_outputs[:, 9:], outputs[:, 9:])
    # Inside a chunk attention is two-sided: frame 6 sees frame 8.
    changed = features.copy()
    changed[:, 32:36] += 5.0
    changed_outputs, _ = encoder(changed, tf.constant([72]))
    self.assertNotAllClose(changed_outputs[:, 6], outputs[:, 6])

  def test_left_chunks_limit_the_context(self):
    rng = np.random.default_rng(3)
    chunk, left, layers, kernel = 2, 1, 2, 3
    features = rng.standard_normal([1, 96, 16]).astype(np.float32)
    last_chunk = 11  # Encoder frames 22, 23.
    # Each layer reaches left_chunks chunks back by attention, and the
    # depthwise conv kernel - 1 frames before that; encoder frame e reads
    # feature frames >= 4 e - 3 through the 4x subsampling convolutions.
    earliest_frame = (last_chunk - layers * left) * chunk - layers * (
        kernel - 1)
    earliest_feature = 4 * earliest_frame - 3
    too_old = features.copy()
    too_old[:, :earliest_feature] += 5.0
    in_window = features.copy()
    in_window[:, earliest_feature] += 5.0

    def last_chunk_change(left_chunks, changed):
      encoder = conformer.ConformerEncoder(_tiny_config(
          causal=True, chunk_size=chunk, left_chunks=left_chunks,
          num_layers=layers, conv_kernel_size=kernel))
      outputs, _ = encoder(features, tf.constant([96]))
      changed_outputs, _ = encoder(changed, tf.constant([96]))
      self.assertNotAllClose(changed_outputs, outputs)
      return float(tf.reduce_max(tf.abs(
          changed_outputs[:, 22:] - outputs[:, 22:])))

    self.assertLess(last_chunk_change(left, too_old), 1e-6)
    self.assertGreater(last_chunk_change(left, in_window), 1e-4)
    self.assertGreater(last_chunk_change(8, too_old), 1e-4)

  def test_xla_matches_eager(self):
    rng = np.random.default_rng(4)
    for overrides in (dict(conv_norm='batch_norm'),
                      dict(causal=True, chunk_size=2, left_chunks=1)):
      encoder = conformer.ConformerEncoder(_tiny_config(**overrides))
      features = tf.constant(rng.standard_normal([2, 40, 16]), tf.float32)
      lengths = tf.constant([40, 29])
      eager, _ = encoder(features, lengths)
      compiled = tf.function(encoder.call, jit_compile=True)
      xla, xla_lengths = compiled(features, lengths)
      self.assertAllClose(xla, eager, atol=1e-5, msg=str(overrides))
      self.assertAllEqual(xla_lengths, [10, 7])

  def test_xla_training_step_has_gradients_for_every_weight(self):
    rng = np.random.default_rng(5)
    encoder = conformer.ConformerEncoder(_tiny_config(
        dropout_rate=0.1, attention_dropout_rate=0.1,
        stochastic_depth_rate=0.2, causal=True, chunk_size=2, left_chunks=1))
    features = tf.constant(rng.standard_normal([2, 40, 16]), tf.float32)
    lengths = tf.constant([40, 29])
    inference, _ = encoder(features, lengths)

    @tf.function(jit_compile=True)
    def train_step(features, lengths):
      with tf.GradientTape() as tape:
        outputs, _ = encoder(features, lengths, training=True)
        loss = tf.reduce_sum(outputs ** 2)
      return outputs, tape.gradient(loss, encoder.trainable_variables)

    training_outputs, gradients = train_step(features, lengths)
    for gradient, variable in zip(gradients, encoder.trainable_variables):
      self.assertIsNotNone(gradient, variable.name)
      self.assertTrue(np.all(np.isfinite(gradient)), variable.name)
    # Dropout and stochastic depth are active in training only.
    self.assertNotAllClose(training_outputs, inference)


class PresetTest(tf.test.TestCase):

  def test_presets_build_with_expected_parameter_counts(self):
    # Published totals include the LSTM decoder (S 10.3M, M 30.7M, L 118.8M);
    # the encoder is most of each.
    expected_ranges = {
        'conformer_s': (7.5e6, 10.3e6),
        'conformer_m': (24e6, 30.7e6),
        'conformer_l': (105e6, 118.8e6),
        'conformer_demo_teacher': (1e6, 6e6),
        'conformer_demo_big_teacher': (3e6, 8e6),
        'conformer_demo_student': (0.3e6, 2e6),
    }
    self.assertCountEqual(expected_ranges, conformer_config.PRESETS)
    for name, (low, high) in expected_ranges.items():
      count = conformer.count_parameters(name)
      print(f'{name}: {count:,} encoder parameters')
      self.assertBetween(count, low, high, msg=name)
    # The fast count equals a full build (the demo presets are cheap).
    for name in ('conformer_demo_teacher', 'conformer_demo_student'):
      self.assertEqual(conformer.build_encoder(name).count_params(),
                       conformer.count_parameters(name))
    self.assertTrue(conformer_config.get_preset(
        'conformer_demo_student').causal)
    self.assertFalse(conformer_config.get_preset(
        'conformer_demo_teacher').causal)


if __name__ == '__main__':
  tf.test.main()
