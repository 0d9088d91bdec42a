"""Tests for asr_kd.modeling.prediction_network."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf
import tf_keras

from asr_kd.configs import rnnt_config
from asr_kd.modeling import prediction_network


def _sigmoid(values):
  return 1.0 / (1.0 + np.exp(-values))


def _numpy_lstm_network(network, labels):
  """float64 reference of the 'lstm' network: embedding, LSTMs, projection."""
  config = network.config
  weights = {w.name.split('/', 1)[1]: w.numpy().astype(np.float64)
             for w in network.weights}
  inputs = np.concatenate([np.zeros_like(labels[:, :1]), labels], axis=1)
  outputs = weights['embedding/embeddings:0'][inputs]
  for layer in range(config.num_layers):
    prefix = f'lstm_{layer}/lstm_cell/'
    kernel = weights[prefix + 'kernel:0']
    recurrent = weights[prefix + 'recurrent_kernel:0']
    bias = weights[prefix + 'bias:0']
    hidden = np.zeros([labels.shape[0], config.lstm_units])
    cell = np.zeros_like(hidden)
    layer_outputs = []
    for position in range(outputs.shape[1]):
      gates = outputs[:, position] @ kernel + hidden @ recurrent + bias
      i, f, g, o = np.split(gates, 4, axis=-1)
      cell = _sigmoid(f) * cell + _sigmoid(i) * np.tanh(g)
      hidden = _sigmoid(o) * np.tanh(cell)
      layer_outputs.append(hidden)
    outputs = np.stack(layer_outputs, axis=1)
  if config.projection_dim:
    outputs = (outputs @ weights['projection/kernel:0'] +
               weights['projection/bias:0'])
  return outputs


def _numpy_stateless_network(network, labels):
  """float64 reference of the 'stateless' network."""
  config = network.config
  weights = {w.name.split('/', 1)[1]: w.numpy().astype(np.float64)
             for w in network.weights}
  inputs = np.concatenate([np.zeros_like(labels[:, :1]), labels], axis=1)
  padded = np.pad(inputs, [[0, 0], [config.context_size - 1, 0]])
  outputs = []
  for position in range(inputs.shape[1]):
    context = padded[:, position:position + config.context_size]
    embedded = weights['embedding/embeddings:0'][context]
    flat = embedded.reshape(labels.shape[0], -1)
    outputs.append(np.maximum(
        flat @ weights['context_dense/kernel:0'] +
        weights['context_dense/bias:0'], 0.0))
  return np.stack(outputs, axis=1)


def _config(network_type, **overrides):
  params = dict(type=network_type, vocab_size=7, embedding_dim=8,
                num_layers=2, lstm_units=12, projection_dim=10,
                context_size=2, dropout_rate=0.5)
  params.update(overrides)
  return rnnt_config.PredictionNetworkConfig(**params)


class PredictionNetworkTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ('lstm_projection', 'lstm', {}),
      ('lstm_one_layer_no_projection', 'lstm',
       dict(num_layers=1, projection_dim=0)),
      ('stateless', 'stateless', {}),
      ('stateless_context3_no_projection', 'stateless',
       dict(context_size=3, projection_dim=0)),
  )
  def test_call_matches_numpy_and_step(self, network_type, overrides):
    rng = np.random.default_rng(1)
    config = _config(network_type, **overrides)
    network = prediction_network.PredictionNetwork(config)
    labels = rng.integers(1, config.vocab_size, size=[3, 5]).astype(np.int32)
    outputs = network(labels).numpy()
    self.assertEqual(outputs.shape, (3, 6, network.output_dim))

    reference = (_numpy_lstm_network if network_type == 'lstm' else
                 _numpy_stateless_network)(network, labels)
    self.assertAllClose(outputs, reference, atol=1e-5, rtol=1e-5)

    state = network.initial_state(3)
    inputs = np.concatenate([np.zeros([3, 1], np.int32), labels], axis=1)
    for position in range(inputs.shape[1]):
      step_outputs, new_state = network.step(inputs[:, position], state)
      tf.nest.assert_same_structure(state, new_state)
      for old, new in zip(tf.nest.flatten(state), tf.nest.flatten(new_state)):
        self.assertEqual(old.shape, new.shape)
      state = new_state
      self.assertAllClose(step_outputs, outputs[:, position], atol=1e-5)

  def test_label_lengths_zero_padding_and_keep_valid_positions(self):
    config = _config('lstm')
    network = prediction_network.PredictionNetwork(config)
    labels = np.array([[3, 4, 5, 6], [2, 1, 0, 0]], np.int32)
    lengths = np.array([4, 2], np.int32)
    masked = network(labels, label_lengths=lengths).numpy()
    unmasked = network(labels).numpy()
    self.assertAllClose(masked[0], unmasked[0])
    self.assertAllClose(masked[1, :3], unmasked[1, :3])
    self.assertAllEqual(masked[1, 3:], np.zeros_like(masked[1, 3:]))

  def test_empty_labels_give_the_start_output(self):
    network = prediction_network.PredictionNetwork(_config('lstm'))
    outputs = network(np.zeros([2, 0], np.int32))
    self.assertEqual(outputs.shape, (2, 1, network.output_dim))
    start_outputs, _ = network.step(np.zeros([2], np.int32),
                                    network.initial_state(2))
    self.assertAllClose(outputs[:, 0], start_outputs, atol=1e-6)

  def test_dropout_only_in_training(self):
    network = prediction_network.PredictionNetwork(_config('lstm'))
    labels = np.array([[1, 2, 3]], np.int32)
    self.assertAllClose(network(labels, training=False),
                        network(labels, training=False))
    self.assertNotAllClose(network(labels, training=True),
                           network(labels, training=False))

  def test_unknown_type_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'Unknown prediction network'):
      prediction_network.PredictionNetwork(_config('gru'))

  def test_checkpoints_of_fused_lstm_layers_restore(self):
    # Checkpoints written when the layers were tf_keras.layers.LSTM (same
    # cell weights and object paths) restore into today's RNN(LSTMCell).
    config = _config('lstm', dropout_rate=0.0)
    network = prediction_network.PredictionNetwork(config)
    labels = np.array([[1, 2, 3, 4], [5, 6, 1, 0]], np.int32)
    embedded = network._embedding(np.concatenate(
        [np.zeros([2, 1], np.int32), labels], axis=1))
    fused_layers = [tf_keras.layers.LSTM(config.lstm_units,
                                         return_sequences=True)
                    for _ in range(config.num_layers)]
    expected = embedded
    for layer in fused_layers:
      expected = layer(expected)
    network(labels)  # Builds the layers, so that restoring is immediate.
    directory = self.get_temp_dir()
    for index, layer in enumerate(fused_layers):
      path = tf.train.Checkpoint(layer=layer).write(f'{directory}/{index}')
      tf.train.Checkpoint(layer=network._lstm_layers[index]).read(
          path).assert_consumed()
    outputs = network(labels)
    projection = network._projection
    self.assertAllClose(outputs, projection(expected), atol=1e-6)

  def test_get_config_round_trip(self):
    network = prediction_network.PredictionNetwork(_config('stateless'))
    clone = prediction_network.PredictionNetwork.from_config(
        network.get_config())
    self.assertEqual(clone.config.as_dict(), network.config.as_dict())


if __name__ == '__main__':
  tf.test.main()
