"""RNN-T prediction network: LSTM or stateless (fixed label context).

The prediction network turns the label history into a vector per position.
During training `call` runs on whole label sequences with the blank/start
symbol (id 0) prepended, so U labels give U + 1 outputs. During decoding
`step` consumes one label per hypothesis and carries a fixed-shape state, so
decoders can keep it in a `tf.while_loop`.
"""

from typing import Any, Optional, Tuple

import tensorflow as tf
import tf_keras

from asr_kd.configs import rnnt_config

_NETWORK_TYPES = ('lstm', 'stateless')


@tf_keras.utils.register_keras_serializable(package='asr_kd')
class PredictionNetwork(tf_keras.layers.Layer):
  """Embedding + stacked LSTM (or stateless context) prediction network."""

  def __init__(self, config: rnnt_config.PredictionNetworkConfig, **kwargs):
    """Creates the sub-layers.

    Args:
      config: A `PredictionNetworkConfig` (or a dict with its fields).
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if isinstance(config, dict):
      config = rnnt_config.PredictionNetworkConfig(config)
    if config.type not in _NETWORK_TYPES:
      raise ValueError(f'Unknown prediction network type {config.type!r}; '
                       f'expected one of {_NETWORK_TYPES}.')
    if config.type == 'stateless' and config.context_size < 1:
      raise ValueError('A stateless prediction network needs context_size >= 1.')
    self._config = config
    self._embedding = tf_keras.layers.Embedding(
        config.vocab_size, config.embedding_dim, name='embedding')
    self._dropout = tf_keras.layers.Dropout(config.dropout_rate)
    self._lstm_layers = []
    self._context_dense = None
    self._projection = None
    if config.type == 'lstm':
      # RNN(LSTMCell), not tf_keras.layers.LSTM: under XLA the gradient
      # through LSTM's fused implementation is compiled again for every
      # new label batch (values, not shapes), which makes a whole-step XLA
      # program recompile each step. The cell's weights and checkpoint
      # paths are LSTM's, so checkpoints of either layer restore into both.
      self._lstm_layers = [
          tf_keras.layers.RNN(
              tf_keras.layers.LSTMCell(config.lstm_units, name='lstm_cell'),
              return_sequences=True, return_state=True, name=f'lstm_{i}')
          for i in range(config.num_layers)
      ]
      if config.projection_dim:
        self._projection = tf_keras.layers.Dense(
            config.projection_dim, name='projection')
    else:
      # Embeddings of the last `context_size` labels are concatenated and
      # mixed by one dense layer: a 1-D convolution over the label context
      # (as in stateless transducers), with no state beyond the labels.
      self._context_dense = tf_keras.layers.Dense(
          config.projection_dim or config.embedding_dim, activation='relu',
          name='context_dense')

  @property
  def config(self) -> rnnt_config.PredictionNetworkConfig:
    return self._config

  @property
  def output_dim(self) -> int:
    """Size P of each output vector."""
    if self._config.type == 'lstm':
      return self._config.projection_dim or self._config.lstm_units
    return self._config.projection_dim or self._config.embedding_dim

  def call(self,
           labels: tf.Tensor,
           label_lengths: Optional[tf.Tensor] = None,
           training: Optional[bool] = None) -> tf.Tensor:
    """Runs the network on whole label sequences.

    Args:
      labels: int32 [B, U] labels, padded with 0 after `label_lengths`.
      label_lengths: Optional int32 [B]. The network is causal, so padding
        never changes valid positions; when given, outputs past position
        `label_lengths` (of U + 1) are zeroed.
      training: Keras training flag (enables dropout).

    Returns:
      float [B, U + 1, P]; position u summarizes blank + labels[:, :u].
    """
    labels = tf.cast(labels, tf.int32)
    start = tf.zeros([tf.shape(labels)[0], 1], tf.int32)
    inputs = tf.concat([start, labels], axis=1)  # [B, U + 1]
    if self._config.type == 'lstm':
      outputs = self._dropout(self._embedding(inputs), training=training)
      for lstm in self._lstm_layers:
        outputs, _, _ = lstm(outputs, training=training)
        outputs = self._dropout(outputs, training=training)
      if self._projection is not None:
        outputs = self._projection(outputs)
    else:
      context_size = self._config.context_size
      # Left-pad with the start symbol so position u sees the last
      # `context_size` inputs up to and including inputs[:, u].
      padded = tf.pad(inputs, [[0, 0], [context_size - 1, 0]])
      num_positions = tf.shape(inputs)[1]
      contexts = tf.stack(
          [padded[:, i:i + num_positions] for i in range(context_size)],
          axis=-1)  # [B, U + 1, context_size]
      outputs = self._stateless_outputs(contexts, training)
    if label_lengths is not None:
      mask = tf.sequence_mask(
          tf.cast(label_lengths, tf.int32) + 1, tf.shape(inputs)[1],
          dtype=outputs.dtype)
      outputs *= mask[:, :, tf.newaxis]
    return outputs

  def _stateless_outputs(self, contexts: tf.Tensor,
                         training: Optional[bool]) -> tf.Tensor:
    """Maps label contexts [..., context_size] to outputs [..., P]."""
    embedded = self._dropout(self._embedding(contexts), training=training)
    context_shape = tf.shape(contexts)
    flat_embeddings = tf.reshape(
        embedded,
        tf.concat([context_shape[:-1],
                   [self._config.context_size * self._config.embedding_dim]],
                  axis=0))
    return self._dropout(self._context_dense(flat_embeddings),
                         training=training)

  def initial_state(self, batch_size: Any) -> Any:
    """Returns the state before any label has been consumed.

    Args:
      batch_size: Python int or scalar int32 tensor.

    Returns:
      For 'lstm', a list with one [h, c] pair ([B, lstm_units] each) per
      layer; for 'stateless', int32 [B, context_size] of previous labels
      (all 0, the start symbol).
    """
    if self._config.type == 'lstm':
      zeros = tf.zeros([batch_size, self._config.lstm_units])
      return [[zeros, zeros] for _ in self._lstm_layers]
    return tf.zeros([batch_size, self._config.context_size], tf.int32)

  def step(self, labels: tf.Tensor, state: Any) -> Tuple[tf.Tensor, Any]:
    """Consumes one label per sequence (inference, no dropout).

    Feeding 0 (the start symbol) to `initial_state` and then labels one by
    one reproduces `call`'s outputs position by position.

    Args:
      labels: int32 [B] labels to consume.
      state: A state from `initial_state` or a previous `step`.

    Returns:
      (outputs [B, P], new_state with the same structure and shapes).
    """
    labels = tf.cast(labels, tf.int32)
    if self._config.type == 'lstm':
      outputs = self._embedding(labels)
      new_state = []
      for lstm, layer_state in zip(self._lstm_layers, state):
        outputs, layer_state = lstm.cell(
            outputs, states=list(layer_state), training=False)
        new_state.append(list(layer_state))
      if self._projection is not None:
        outputs = self._projection(outputs)
      return outputs, new_state
    new_state = tf.concat([state[:, 1:], labels[:, tf.newaxis]], axis=1)
    return self._stateless_outputs(new_state, training=False), new_state

  def get_config(self):
    base = super().get_config()
    base['config'] = self._config.as_dict()
    return base
