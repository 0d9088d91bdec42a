"""Tests for asr_kd.decoding.greedy and asr_kd.decoding.streaming_greedy."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from asr_kd.configs import rnnt_config
from asr_kd.decoding import greedy
from asr_kd.decoding import streaming_greedy
from asr_kd.modeling import joint_network
from asr_kd.modeling import prediction_network

VOCAB_SIZE = 6
ENCODER_DIM = 8


def build_tiny_model(network_type='lstm', seed=0):
  """A tiny random prediction + joint network pair (vocab 6, dims 8-12).

  The blank logit's bias is shifted so that blank is the argmax for about
  half of random (frame, label history) pairs: decoding then mixes blanks,
  single and repeated emissions instead of emitting all-blank or all-token.

  Args:
    network_type: 'lstm' or 'stateless'.
    seed: Seed of the Keras initializers and of the calibration inputs.

  Returns:
    (prediction_network, joint_network), both built.
  """
  tf_keras.utils.set_random_seed(seed)
  prediction = prediction_network.PredictionNetwork(
      rnnt_config.PredictionNetworkConfig(
          type=network_type, vocab_size=VOCAB_SIZE, embedding_dim=8,
          num_layers=1, lstm_units=12, projection_dim=10, dropout_rate=0.0))
  joint = joint_network.JointNetwork(
      rnnt_config.JointNetworkConfig(joint_dim=8, vocab_size=VOCAB_SIZE))
  rng = np.random.default_rng(seed)
  logits = joint(
      rng.normal(size=[8, 6, ENCODER_DIM]).astype(np.float32),
      prediction(rng.integers(1, VOCAB_SIZE, size=[8, 5]).astype(np.int32)))
  margins = tf.reduce_max(logits[..., 1:], axis=-1) - logits[..., 0]
  bias = joint.weights[-1]
  bias.assign_add(tf.one_hot(0, VOCAB_SIZE) * np.median(margins.numpy()))
  return prediction, joint


def numpy_joint_weights(joint):
  """The joint network's weights as float64 arrays."""
  return [w.numpy().astype(np.float64) for w in joint.weights]


def numpy_joint_log_probs(weights, encoder_frame, prediction_output):
  """float64 log-softmax of the joint for one frame and one output.

  Args:
    weights: From `numpy_joint_weights`.
    encoder_frame: [D] encoder output.
    prediction_output: [P] prediction network output.

  Returns:
    [V] log-probabilities.
  """
  encoder_kernel, encoder_bias, prediction_kernel, output_kernel, output_bias = (
      weights)
  hidden = np.tanh(encoder_frame @ encoder_kernel + encoder_bias +
                   prediction_output @ prediction_kernel)
  logits = hidden @ output_kernel + output_bias
  logits -= logits.max()
  return logits - np.log(np.exp(logits).sum())


def numpy_greedy_decode(encoder_outputs, encoder_lengths, prediction, joint,
                        max_symbols_per_frame):
  """Reference greedy decoding, one sequence and one symbol at a time."""
  weights = numpy_joint_weights(joint)
  hypotheses = []
  for encoder, length in zip(encoder_outputs.astype(np.float64),
                             encoder_lengths):
    output, state = prediction.step(np.zeros([1], np.int32),
                                    prediction.initial_state(1))
    hypothesis = []
    for frame in range(length):
      for _ in range(max_symbols_per_frame):
        log_probs = numpy_joint_log_probs(weights, encoder[frame],
                                          output.numpy()[0])
        token = int(np.argmax(log_probs))
        if token == 0:
          break
        hypothesis.append(token)
        output, state = prediction.step(np.array([token], np.int32), state)
    hypotheses.append(hypothesis)
  return hypotheses


def to_lists(tokens, lengths):
  return [list(row[:length]) for row, length in zip(np.asarray(tokens),
                                                    np.asarray(lengths))]


class GreedyDecodeTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(3)
    self._encoder_outputs = rng.normal(size=[4, 7, ENCODER_DIM]).astype(
        np.float32)
    self._encoder_lengths = np.array([7, 5, 1, 0], np.int32)

  @parameterized.product(network_type=('lstm', 'stateless'),
                         max_symbols_per_frame=(1, 3))
  def test_matches_numpy_reference(self, network_type, max_symbols_per_frame):
    prediction, joint = build_tiny_model(network_type)
    tokens, lengths = greedy.greedy_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint,
        max_symbols_per_frame=max_symbols_per_frame)
    self.assertEqual(tokens.shape, (4, 7 * max_symbols_per_frame))
    expected = numpy_greedy_decode(self._encoder_outputs,
                                   self._encoder_lengths, prediction, joint,
                                   max_symbols_per_frame)
    self.assertEqual(to_lists(tokens, lengths), expected)
    # Padding is 0 and an empty input emits nothing.
    for row, length in zip(tokens.numpy(), lengths.numpy()):
      self.assertAllEqual(row[length:], np.zeros_like(row[length:]))
    self.assertEqual(int(lengths[3]), 0)
    # The case is not trivial: some tokens, and not all frames non-blank.
    self.assertBetween(int(lengths[0]), 1, 7 * max_symbols_per_frame - 1)

  def test_xla_compiled_matches_eager(self):
    prediction, joint = build_tiny_model('lstm')
    eager_tokens, eager_lengths = greedy.greedy_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint)

    @tf.function(jit_compile=True)
    def decode(encoder_outputs, encoder_lengths):
      return greedy.greedy_decode(encoder_outputs, encoder_lengths,
                                  prediction, joint)

    tokens, lengths = decode(self._encoder_outputs, self._encoder_lengths)
    self.assertAllEqual(tokens, eager_tokens)
    self.assertAllEqual(lengths, eager_lengths)

  def test_max_output_length_truncates(self):
    prediction, joint = build_tiny_model('lstm')
    full_tokens, full_lengths = greedy.greedy_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint)
    tokens, lengths = greedy.greedy_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint,
        max_output_length=2)
    self.assertAllEqual(lengths, np.minimum(full_lengths, 2))
    self.assertAllEqual(tokens, full_tokens[:, :2])


class StreamingGreedyDecoderTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('lstm', 2), ('stateless', 3))
  def test_chunks_equal_whole_utterance(self, network_type, chunk_size):
    rng = np.random.default_rng(5)
    encoder_outputs = rng.normal(size=[3, 8, ENCODER_DIM]).astype(np.float32)
    encoder_lengths = np.array([8, 6, 3], np.int32)
    prediction, joint = build_tiny_model(network_type)
    expected = to_lists(*greedy.greedy_decode(
        encoder_outputs, encoder_lengths, prediction, joint,
        max_symbols_per_frame=2))

    decoder = streaming_greedy.StreamingGreedyDecoder(
        prediction, joint, max_symbols_per_frame=2)
    decode_chunk = tf.function(decoder.decode_chunk)
    state = decoder.initial_decoder_state(3)
    hypotheses = [[] for _ in range(3)]
    for start in range(0, 8, chunk_size):
      chunk = encoder_outputs[:, start:start + chunk_size]
      chunk_lengths = np.clip(encoder_lengths - start, 0, chunk.shape[1])
      new_tokens, counts, state = decode_chunk(chunk, state, chunk_lengths)
      self.assertEqual(new_tokens.shape, (3, chunk.shape[1] * 2))
      for hypothesis, new in zip(hypotheses, to_lists(new_tokens, counts)):
        hypothesis.extend(new)
    self.assertEqual(hypotheses, expected)
    self.assertAllEqual(state['last_token'],
                        [h[-1] if h else 0 for h in hypotheses])


if __name__ == '__main__':
  tf.test.main()
