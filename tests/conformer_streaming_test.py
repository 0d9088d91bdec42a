"""stream_step chunk by chunk == call() in causal mode, to 1e-5."""

import numpy as np
import tensorflow as tf

import asr_kd  # pylint: disable=unused-import  (sets TF_USE_LEGACY_KERAS)
from asr_kd.configs import conformer_config
from asr_kd.modeling import conformer


def _causal_config(**overrides):
  values = dict(input_dim=16, subsampling_factor=4, subsampling_filters=4,
                model_dim=16, num_layers=2, num_heads=2, conv_kernel_size=4,
                dropout_rate=0.0, attention_dropout_rate=0.0, causal=True,
                chunk_size=3, left_chunks=2, conv_norm='layer_norm',
                max_relative_position=5)
  values.update(overrides)
  return conformer_config.ConformerEncoderConfig(**values)


def _stream(encoder, features, lengths, step=None):
  """Feeds padded features chunk by chunk; returns concatenated outputs."""
  step = step or encoder.stream_step
  chunk_frames = encoder.chunk_frames_in
  batch, frames, bins = features.shape
  num_chunks = -(-frames // chunk_frames)
  padded = np.zeros([batch, num_chunks * chunk_frames, bins], np.float32)
  # Junk past the end: the chunk lengths must keep it out.
  padded[:, frames:] = 50.0
  padded[:, :frames] = features
  state = encoder.initial_state(batch)
  outputs = []
  for index in range(num_chunks):
    start = index * chunk_frames
    chunk_lengths = np.clip(lengths - start, 0, chunk_frames).astype(np.int32)
    chunk_outputs, state = step(
        tf.constant(padded[:, start:start + chunk_frames]), state,
        features_chunk_lengths=tf.constant(chunk_lengths))
    outputs.append(chunk_outputs)
  return tf.concat(outputs, axis=1), state


class ConformerStreamingTest(tf.test.TestCase):

  def _assert_stream_matches_call(self, config, lengths, seed):
    rng = np.random.default_rng(seed)
    encoder = conformer.ConformerEncoder(config)
    lengths = np.asarray(lengths, np.int32)
    features = rng.standard_normal(
        [len(lengths), lengths.max(), config.input_dim]).astype(np.float32)
    full, full_lengths = encoder(features, lengths)
    streamed, _ = _stream(encoder, features, lengths)
    self.assertAllClose(streamed[:, :full.shape[1]], full, atol=1e-5,
                        rtol=1e-5, msg=f'{config.as_dict()} {lengths}')
    # Past each utterance's end the stream emits zeros, like call().
    for row, length in enumerate(full_lengths.numpy()):
      self.assertAllEqual(streamed[row, length:],
                          tf.zeros_like(streamed[row, length:]))

  def test_stream_equals_full_causal_for_several_lengths(self):
    # One chunk is 12 feature frames: lengths below, at and past multiples.
    self._assert_stream_matches_call(_causal_config(), [12, 7], seed=0)
    self._assert_stream_matches_call(_causal_config(), [131, 60, 95], seed=1)
    self._assert_stream_matches_call(_causal_config(), [100, 103], seed=2)

  def test_stream_equals_full_causal_for_every_subsampling_factor(self):
    for factor, seed in ((6, 3), (8, 4)):
      self._assert_stream_matches_call(
          _causal_config(subsampling_factor=factor), [150, 77], seed=seed)

  def test_stream_equals_full_causal_when_relative_window_is_short(self):
    # Keys span 3 chunks of 2 frames; distances clip at 2 in both paths.
    self._assert_stream_matches_call(
        _causal_config(chunk_size=2, left_chunks=2, max_relative_position=2,
                       conv_kernel_size=7), [90, 41], seed=5)

  def test_stream_equals_full_causal_without_left_context(self):
    self._assert_stream_matches_call(
        _causal_config(left_chunks=0, conv_kernel_size=1), [70, 33], seed=6)

  def test_stream_step_in_graph_mode_keeps_state_shapes(self):
    rng = np.random.default_rng(7)
    encoder = conformer.ConformerEncoder(_causal_config())
    features = rng.standard_normal([2, 50, 16]).astype(np.float32)
    lengths = np.array([50, 31], np.int32)
    eager, _ = _stream(encoder, features, lengths)
    # One trace serves every chunk: the state's shapes never change.
    step = tf.function(encoder.stream_step, reduce_retracing=False)
    graph, final_state = _stream(encoder, features, lengths, step=step)
    self.assertAllClose(graph, eager, atol=1e-6)
    self.assertEqual(step.experimental_get_tracing_count(), 1)
    initial = encoder.initial_state(2)
    tf.nest.assert_same_structure(initial, final_state)
    for initial_part, final_part in zip(tf.nest.flatten(initial),
                                        tf.nest.flatten(final_state)):
      self.assertEqual(initial_part.shape, final_part.shape)
    self.assertEqual(initial['block_0']['key'].shape, (2, 6, 2, 8))
    self.assertEqual(initial['block_1']['conv'].shape, (2, 3, 16))
    self.assertEqual(initial['key_mask'].shape, (2, 6))

  def test_full_context_encoder_refuses_to_stream(self):
    encoder = conformer.ConformerEncoder(_causal_config(causal=False))
    with self.assertRaisesRegex(ValueError, 'causal'):
      encoder.initial_state(1)


if __name__ == '__main__':
  tf.test.main()
