"""Time-causal 2-D convolutional subsampling for the Conformer front end.

Each convolution looks at a (time, frequency) patch. Along frequency it is an
ordinary 'valid' strided convolution. Along time it is causal: a layer with
kernel k and stride s is left-padded with k - s zero frames, so output frame t
reads input frames [t*s + s - k, t*s + s - 1]. Consequences:
  * T input frames give exactly floor(T / s) output frames per layer, so the
    whole stack turns T frames into floor(T / factor) frames;
  * a valid output frame never reads a frame past its own stride block, hence
    never reads padding (no masking needed), and never looks ahead;
  * streaming is exact: carrying the last k - s input frames of every layer
    (the "subsampling remainder") in front of the next chunk reproduces the
    full computation, and the zero initial remainder is the zero left padding.
"""

from typing import Dict, List, Tuple

import tensorflow as tf
import tf_keras

# (time/frequency stride, kernel size) of each convolution per factor.
# 6x follows ESPnet's Conv2dSubsampling6 (stride 2 then stride 3).
_LAYOUTS = {
    4: ((2, 3), (2, 3)),
    6: ((2, 3), (3, 5)),
    8: ((2, 3), (2, 3), (2, 3)),
}


class ConvSubsampling(tf_keras.layers.Layer):
  """Conv2D stack (ReLU) -> linear projection -> dropout."""

  def __init__(self, factor: int, filters: int, input_dim: int,
               output_dim: int, dropout_rate: float, **kwargs):
    """Initializes the layer.

    Args:
      factor: Time (and frequency) reduction: 4, 6 or 8.
      filters: Channels of every convolution.
      input_dim: Feature bins per input frame.
      output_dim: Width of the projected output frames.
      dropout_rate: Dropout after the projection.
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if factor not in _LAYOUTS:
      raise ValueError(f'subsampling factor must be one of {sorted(_LAYOUTS)}'
                       f', got {factor}.')
    self._factor = factor
    self._filters = filters
    self._layout = _LAYOUTS[factor]
    self._convs = [
        tf_keras.layers.Conv2D(
            filters, kernel_size=kernel, strides=stride, padding='valid',
            activation='relu', name=f'conv_{index}')
        for index, (stride, kernel) in enumerate(self._layout)
    ]
    # Frequency bins (and channels) entering each convolution.
    self._conv_input_shapes: List[Tuple[int, int]] = []
    bins, channels = input_dim, 1
    for stride, kernel in self._layout:
      self._conv_input_shapes.append((bins, channels))
      bins = (bins - kernel) // stride + 1
      channels = filters
    if bins < 1:
      raise ValueError(f'input_dim={input_dim} is too small for '
                       f'{factor}x subsampling.')
    self._output_bins = bins
    self._projection = tf_keras.layers.Dense(output_dim, name='projection')
    self._dropout = tf_keras.layers.Dropout(dropout_rate)

  @property
  def factor(self) -> int:
    return self._factor

  def output_lengths(self, input_lengths: tf.Tensor) -> tf.Tensor:
    """Output frames for `input_lengths` input frames (any int tensor)."""
    lengths = input_lengths
    for stride, _ in self._layout:
      lengths = lengths // stride
    return lengths

  def _project(self, conv_outputs: tf.Tensor, training) -> tf.Tensor:
    """[B, T, bins, filters] -> [B, T, output_dim]."""
    shape = tf.shape(conv_outputs)
    frames = tf.reshape(conv_outputs, [
        shape[0], shape[1], self._output_bins * self._filters])
    return self._dropout(self._projection(frames), training=training)

  def call(self, features: tf.Tensor, training=False) -> tf.Tensor:
    """Subsamples whole utterances.

    Args:
      features: [B, T, input_dim] float.
      training: Enables dropout.

    Returns:
      [B, floor(T / factor), output_dim].
    """
    maps = features[..., tf.newaxis]
    for conv, (stride, kernel) in zip(self._convs, self._layout):
      maps = tf.pad(maps, [[0, 0], [kernel - stride, 0], [0, 0], [0, 0]])
      maps = conv(maps)
    return self._project(maps, training)

  def initial_state(self, batch_size) -> Dict[str, tf.Tensor]:
    """Zero remainders: the last kernel - stride input frames of each conv."""
    return {
        conv.name: tf.zeros(
            [batch_size, kernel - stride, bins, channels], self.compute_dtype)
        for conv, (stride, kernel), (bins, channels) in zip(
            self._convs, self._layout, self._conv_input_shapes)
    }

  def stream(self, features_chunk: tf.Tensor, state: Dict[str, tf.Tensor],
             training=False):
    """Subsamples one chunk, carrying the remainder frames in `state`.

    Args:
      features_chunk: [B, N, input_dim] with N a multiple of `factor`.
      state: From `initial_state` or the previous `stream` call.
      training: Enables dropout.

    Returns:
      ([B, N / factor, output_dim], new_state).
    """
    maps = features_chunk[..., tf.newaxis]
    new_state = {}
    for conv, (stride, kernel) in zip(self._convs, self._layout):
      maps = tf.concat([state[conv.name], maps], axis=1)
      # The carried frames are the left context the next chunk's first
      # output frame reads (they play the role of call()'s left padding).
      new_state[conv.name] = maps[:, tf.shape(maps)[1] - (kernel - stride):]
      maps = conv(maps)
    return self._project(maps, training), new_state
