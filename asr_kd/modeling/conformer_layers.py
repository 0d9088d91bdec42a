"""Conformer block and its modules (Gulati et al. 2020).

block(x) = LayerNorm(x3 + 1/2 FFN(x3)) with
  x1 = x + 1/2 FFN(x)          (macaron feed-forward, first half)
  x2 = x1 + MHSA(x1)           (relative-position self-attention)
  x3 = x2 + Conv(x2)           (convolution module)

Masks are float [B, T] with 1 on valid frames. Every module has a `call` for
whole sequences and, where it has memory across frames, a `stream` for one
chunk plus a state; both share the same weights.
"""

from typing import Dict

import tensorflow as tf
import tf_keras

from asr_kd.modeling import attention_relpos
from asr_kd.modeling import quantization_hints

_LAYER_NORM_EPSILON = 1e-5


class FloatLayerNormalization(tf_keras.layers.LayerNormalization):
  """Layer normalization that full-int8 TFLite export keeps float.

  Its 1/sqrt(variance) spans too wide a range over frames (near-silent ones)
  for per-tensor int8; quantized, it alone moved the demo student's encoder
  outputs by ~5% per block (quantization_hints).
  """

  def call(self, inputs):
    with quantization_hints.keep_float_scope():
      return super().call(inputs)


def _layer_norm(name: str) -> FloatLayerNormalization:
  return FloatLayerNormalization(epsilon=_LAYER_NORM_EPSILON, name=name)


class StochasticDepth(tf_keras.layers.Layer):
  """Drops a residual branch per example with probability `drop_rate`.

  Kept branches are scaled by 1 / (1 - drop_rate) so the expected output is
  unchanged; at inference the branch always passes through unscaled.
  """

  def __init__(self, drop_rate: float, **kwargs):
    super().__init__(**kwargs)
    self._drop_rate = drop_rate

  def call(self, branch: tf.Tensor, training=False) -> tf.Tensor:
    if not training or self._drop_rate == 0.0:
      return branch
    keep_rate = 1.0 - self._drop_rate
    batch_size = tf.shape(branch)[0]
    keep = tf.floor(keep_rate + tf.random.uniform(
        [batch_size, 1, 1], dtype=branch.dtype))
    return branch * keep / keep_rate


class FeedForwardModule(tf_keras.layers.Layer):
  """LN -> Dense(expansion * D, swish) -> dropout -> Dense(D) -> dropout."""

  def __init__(self, model_dim: int, expansion: int, dropout_rate: float,
               **kwargs):
    super().__init__(**kwargs)
    self._norm = _layer_norm('norm')
    self._expand = tf_keras.layers.Dense(
        model_dim * expansion, activation='swish', name='expand')
    self._project = tf_keras.layers.Dense(model_dim, name='project')
    self._hidden_dropout = tf_keras.layers.Dropout(dropout_rate)
    self._output_dropout = tf_keras.layers.Dropout(dropout_rate)

  def call(self, inputs: tf.Tensor, training=False) -> tf.Tensor:
    hidden = self._hidden_dropout(
        self._expand(self._norm(inputs)), training=training)
    return self._output_dropout(self._project(hidden), training=training)


class ConvolutionModule(tf_keras.layers.Layer):
  """LayerNorm -> pointwise(2D) -> GLU -> depthwise -> norm -> swish ->
  pointwise(D) -> dropout.

  Padded frames are zeroed before the depthwise convolution so they never
  leak into valid frames. In causal mode the depthwise convolution only looks
  back (left padding kernel_size - 1), and streaming carries those
  kernel_size - 1 past (GLU output) frames as state.
  """

  def __init__(self, model_dim: int, kernel_size: int, causal: bool,
               norm: str, dropout_rate: float, **kwargs):
    super().__init__(**kwargs)
    if causal and norm == 'batch_norm':
      raise ValueError('batch_norm is not allowed in a causal convolution '
                       'module; use layer_norm.')
    self._model_dim = model_dim
    self._kernel_size = kernel_size
    self._causal = causal
    self._input_norm = _layer_norm('input_norm')
    self._pointwise_in = tf_keras.layers.Dense(
        2 * model_dim, name='pointwise_in')
    self._depthwise = tf_keras.layers.DepthwiseConv1D(
        kernel_size, padding='valid', name='depthwise')
    if norm == 'batch_norm':
      self._depthwise_norm = tf_keras.layers.BatchNormalization(
          name='batch_norm')
    else:
      self._depthwise_norm = _layer_norm('layer_norm')
    self._pointwise_out = tf_keras.layers.Dense(
        model_dim, name='pointwise_out')
    self._dropout = tf_keras.layers.Dropout(dropout_rate)

  def _gated(self, inputs: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Pointwise conv + GLU, zeroed on padded frames."""
    content, gate = tf.split(
        self._pointwise_in(self._input_norm(inputs)), 2, axis=-1)
    return content * tf.sigmoid(gate) * mask[..., tf.newaxis]

  def _finish(self, depthwise_outputs: tf.Tensor, training) -> tf.Tensor:
    normalized = self._depthwise_norm(depthwise_outputs, training=training)
    return self._dropout(
        self._pointwise_out(tf.nn.silu(normalized)), training=training)

  def call(self, inputs: tf.Tensor, mask: tf.Tensor,
           training=False) -> tf.Tensor:
    """Args: inputs [B, T, D], mask [B, T]. Returns [B, T, D]."""
    gated = self._gated(inputs, mask)
    if self._causal:
      padding = [self._kernel_size - 1, 0]
    else:
      left = (self._kernel_size - 1) // 2
      padding = [left, self._kernel_size - 1 - left]
    gated = tf.pad(gated, [[0, 0], padding, [0, 0]])
    return self._finish(self._depthwise(gated), training)

  def initial_state(self, batch_size) -> tf.Tensor:
    return tf.zeros([batch_size, self._kernel_size - 1, self._model_dim],
                    self.compute_dtype)

  def stream(self, inputs: tf.Tensor, mask: tf.Tensor, state: tf.Tensor,
             training=False):
    """One chunk in causal mode.

    Args:
      inputs: [B, C, D].
      mask: [B, C] valid frames of the chunk.
      state: [B, kernel_size - 1, D] last GLU outputs of the past.
      training: Enables dropout.

    Returns:
      ([B, C, D], new_state).
    """
    gated = tf.concat([state, self._gated(inputs, mask)], axis=1)
    new_state = gated[:, tf.shape(gated)[1] - (self._kernel_size - 1):]
    return self._finish(self._depthwise(gated), training), new_state


class ConformerBlock(tf_keras.layers.Layer):
  """One Conformer block; see the module docstring."""

  def __init__(self, model_dim: int, num_heads: int, ff_expansion: int,
               conv_kernel_size: int, causal: bool, conv_norm: str,
               max_relative_position: int, dropout_rate: float,
               attention_dropout_rate: float, stochastic_depth_rate: float,
               **kwargs):
    """Initializes the block.

    Args:
      model_dim: Block width.
      num_heads: Attention heads.
      ff_expansion: Feed-forward hidden width / model_dim.
      conv_kernel_size: Depthwise kernel size.
      causal: Causal depthwise convolution (streaming).
      conv_norm: 'batch_norm' or 'layer_norm' after the depthwise conv.
      max_relative_position: Relative-position clipping distance.
      dropout_rate: Dropout on every residual branch.
      attention_dropout_rate: Dropout on attention probabilities.
      stochastic_depth_rate: Drop probability of each residual branch.
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    self._first_ffn = FeedForwardModule(
        model_dim, ff_expansion, dropout_rate, name='first_ffn')
    self._attention_norm = _layer_norm('attention_norm')
    self._attention = attention_relpos.RelativePositionMultiHeadAttention(
        model_dim, num_heads, max_relative_position, attention_dropout_rate,
        name='attention')
    self._attention_dropout = tf_keras.layers.Dropout(dropout_rate)
    self._convolution = ConvolutionModule(
        model_dim, conv_kernel_size, causal, conv_norm, dropout_rate,
        name='convolution')
    self._second_ffn = FeedForwardModule(
        model_dim, ff_expansion, dropout_rate, name='second_ffn')
    self._output_norm = _layer_norm('output_norm')
    # One drop decision per residual branch: independent draws.
    self._drop_branches = [
        StochasticDepth(stochastic_depth_rate, name=f'stochastic_depth_{i}')
        for i in range(4)
    ]

  def _feed_forward(self, ffn, drop, inputs, training):
    return inputs + 0.5 * drop(ffn(inputs, training=training),
                               training=training)

  def _attention_branch(self, attention_outputs, training):
    return self._drop_branches[1](
        self._attention_dropout(attention_outputs, training=training),
        training=training)

  def _after_attention(self, hidden, convolution_outputs, mask, training):
    hidden = hidden + self._drop_branches[2](
        convolution_outputs, training=training)
    hidden = self._feed_forward(
        self._second_ffn, self._drop_branches[3], hidden, training)
    # Zeroing padded frames keeps them from growing across blocks; they are
    # already kept out of valid frames by the attention and conv masks.
    return self._output_norm(hidden) * mask[..., tf.newaxis]

  def call(self, inputs: tf.Tensor, mask: tf.Tensor,
           attention_mask: tf.Tensor, training=False) -> tf.Tensor:
    """Whole sequences.

    Args:
      inputs: [B, T, D].
      mask: [B, T] valid frames.
      attention_mask: [B, T, T], 1 where query t may attend key t'.
      training: Enables dropout and stochastic depth.

    Returns:
      [B, T, D], zero on padded frames.
    """
    hidden = self._feed_forward(
        self._first_ffn, self._drop_branches[0], inputs, training)
    hidden += self._attention_branch(self._attention(
        self._attention_norm(hidden), attention_mask, training=training),
                                     training)
    convolution_outputs = self._convolution(hidden, mask, training=training)
    return self._after_attention(hidden, convolution_outputs, mask, training)

  def initial_state(self, batch_size,
                    cache_frames: int) -> Dict[str, tf.Tensor]:
    """Attention key/value caches and the depthwise-convolution cache."""
    state = self._attention.initial_state(batch_size, cache_frames)
    state['conv'] = self._convolution.initial_state(batch_size)
    return state

  def stream(self, inputs: tf.Tensor, mask: tf.Tensor, key_mask: tf.Tensor,
             state: Dict[str, tf.Tensor], training=False):
    """One chunk in causal mode.

    Args:
      inputs: [B, C, D].
      mask: [B, C] valid frames of the chunk.
      key_mask: [B, cache_frames + C] valid cached frames, then `mask`.
      state: From `initial_state` or the previous `stream` call.
      training: Enables dropout and stochastic depth.

    Returns:
      ([B, C, D], new_state).
    """
    hidden = self._feed_forward(
        self._first_ffn, self._drop_branches[0], inputs, training)
    attention_outputs, attention_state = self._attention.stream(
        self._attention_norm(hidden), key_mask,
        {'key': state['key'], 'value': state['value']}, training=training)
    hidden += self._attention_branch(attention_outputs, training)
    convolution_outputs, conv_state = self._convolution.stream(
        hidden, mask, state['conv'], training=training)
    new_state = dict(attention_state, conv=conv_state)
    return (self._after_attention(hidden, convolution_outputs, mask, training),
            new_state)
