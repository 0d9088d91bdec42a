"""The model's streaming API: RnntModel.stream -> initial_state, stream_step."""

import numpy as np
import tensorflow as tf

from asr_kd.decoding import streaming_greedy
from asr_kd.export import streaming_reference
from asr_kd.modeling import rnnt_model
from asr_kd.modeling import rnnt_stream
from tests import testing_utils

MAX_SYMBOLS = 2


def _streaming_model() -> rnnt_model.RnntModel:
  tf.keras.utils.set_random_seed(5)
  model = rnnt_model.RnntModel(testing_utils.tiny_model_config(causal=True),
                               vocab_size=12)
  model.build_for_checkpoint()
  return model


class RnntStreamTest(tf.test.TestCase):

  def test_stream_step_threads_a_flat_state_and_matches_the_reference(self):
    model = _streaming_model()
    stream = model.stream(max_symbols_per_frame=MAX_SYMBOLS)
    samples = (np.random.RandomState(0).uniform(-0.3, 0.3, 9000) *
               32767).astype(np.int16)
    state = stream.initial_state()
    self.assertTrue(all(isinstance(name, str) and '/' not in name
                        for name in state))
    tokens, encoder_frames = [], []
    chunks = streaming_reference.num_chunks(len(samples),
                                            stream.chunk_samples)
    padded = np.zeros([chunks * stream.chunk_samples], np.int16)
    padded[:len(samples)] = samples
    for index in range(chunks):
      valid = min(stream.chunk_samples,
                  len(samples) - index * stream.chunk_samples)
      outputs, state = stream.stream_step(
          padded[index * stream.chunk_samples:
                 (index + 1) * stream.chunk_samples], tf.constant(valid),
          state)
      self.assertEqual(sorted(state), sorted(stream.initial_state()))
      count = int(outputs['num_tokens'])
      tokens.extend(outputs['tokens'].numpy()[:count].tolist())
      encoder_frames.append(outputs['encoder_outputs'].numpy())
    expected = streaming_reference.streaming_greedy_reference(
        model, samples, stream.chunk_samples, stream.tail_samples,
        MAX_SYMBOLS)
    self.assertNotEmpty(tokens)  # Untrained weights emit tokens.
    self.assertAllEqual(tokens, expected.tokens)
    frames = np.concatenate(encoder_frames)[:len(expected.encoder_outputs)]
    self.assertAllClose(frames, expected.encoder_outputs, atol=1e-5)

  def test_unrolled_and_while_loop_searches_emit_the_same_tokens(self):
    model = _streaming_model()
    decoder = streaming_greedy.StreamingGreedyDecoder(
        model.prediction_network, model.joint_network, MAX_SYMBOLS)
    rng = np.random.RandomState(1)
    loop_state = unrolled_state = decoder.initial_decoder_state(3)
    emitted = 0
    for _ in range(3):
      chunk = tf.constant(rng.normal(
          size=[3, 4, model.encoder.output_dim]).astype(np.float32) * 3)
      lengths = tf.constant(rng.randint(0, 5, 3), tf.int32)
      loop = decoder.decode_chunk(chunk, loop_state, lengths)
      unrolled = decoder.decode_chunk(chunk, unrolled_state, lengths,
                                      unrolled=True)
      self.assertAllEqual(loop[1], unrolled[1])
      emitted += int(tf.reduce_sum(loop[1]))
      for row, count in enumerate(loop[1].numpy()):
        self.assertAllEqual(loop[0][row, :count], unrolled[0][row, :count])
      loop_state, unrolled_state = loop[2], unrolled[2]
      tf.nest.map_structure(self.assertAllClose, loop_state, unrolled_state)
    self.assertGreater(emitted, 0)

  def test_flat_state_names_round_trip(self):
    nested = {'a': [tf.zeros([1]), {'b': tf.ones([2])}], 'c': tf.zeros([3])}
    flat = rnnt_stream.flatten_named(nested)
    self.assertEqual(sorted(flat), ['a_0', 'a_1_b', 'c'])
    rebuilt = rnnt_stream.unflatten_named(nested, flat)
    tf.nest.map_structure(self.assertAllEqual, nested, rebuilt)

  def test_a_full_context_model_does_not_stream(self):
    model = rnnt_model.RnntModel(testing_utils.tiny_model_config(),
                                 vocab_size=12)
    model.build_for_checkpoint()
    with self.assertRaisesRegex(ValueError, 'not causal'):
      model.stream()


if __name__ == '__main__':
  tf.test.main()
