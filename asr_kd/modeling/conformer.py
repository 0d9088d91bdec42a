"""Conformer encoder: full context, or causal with exact chunk streaming.

One class serves both modes (config.causal):
  * full context: every valid frame attends every valid frame; 'same'
    depthwise convolution.
  * causal: encoder frames are grouped in chunks of `chunk_size`; a frame
    attends the frames of its own chunk and of the `left_chunks` previous
    chunks; the depthwise convolution only looks back; the subsampling
    convolutions are time-causal (see subsampling.py).

Streaming (`initial_state` + `stream_step`) feeds `chunk_size *
subsampling_factor` feature frames at a time and returns `chunk_size`
encoder frames. Chunk k of the stream covers feature frames
[k * chunk_size * factor, (k + 1) * chunk_size * factor): the first chunk
starts at the first feature frame, with all caches zero (the zeros are the
left padding of the full computation). For an utterance of T frames, pad the
features to a multiple of the chunk, pass the valid frame count of each chunk
as `features_chunk_lengths`, concatenate the outputs and keep the first
`output_lengths(T) = T // factor` frames: they equal `call()` on the same
frames to float32 round-off.

Run `python -m asr_kd.modeling.conformer` to print the presets' parameter
counts.
"""

import sys
from typing import Dict, Optional, Tuple, Union

from absl import app
from absl import flags
import tensorflow as tf
import tf_keras

from asr_kd.configs import conformer_config
from asr_kd.modeling import conformer_layers
from asr_kd.modeling import subsampling
from asr_kd.modeling import time_reduction

ConformerEncoderConfig = conformer_config.ConformerEncoderConfig


class ConformerEncoder(tf_keras.layers.Layer):
  """Conformer encoder: features [B, T, F] -> encoder frames [B, T_out, D]."""

  def __init__(self, config: ConformerEncoderConfig, **kwargs):
    """Builds the sublayers.

    Args:
      config: Encoder hyperparameters; validated here.
      **kwargs: Passed to `tf_keras.layers.Layer`.

    Raises:
      ValueError: if the config is inconsistent (see `config.validate`).
    """
    super().__init__(**kwargs)
    config.validate()
    self._config = config
    self._subsampling = subsampling.ConvSubsampling(
        config.subsampling_factor, config.subsampling_filters,
        config.input_dim, config.model_dim, config.dropout_rate,
        name='subsampling')
    self._blocks = [
        conformer_layers.ConformerBlock(
            model_dim=config.model_dim,
            num_heads=config.num_heads,
            ff_expansion=config.ff_expansion,
            conv_kernel_size=config.conv_kernel_size,
            causal=config.causal,
            conv_norm=config.conv_norm,
            max_relative_position=config.max_relative_position,
            dropout_rate=config.dropout_rate,
            attention_dropout_rate=config.attention_dropout_rate,
            # Linearly increasing: deeper blocks are dropped more often.
            stochastic_depth_rate=(config.stochastic_depth_rate *
                                   (index + 1) / config.num_layers),
            name=f'block_{index}')
        for index in range(config.num_layers)
    ]
    self._time_reduction = (
        time_reduction.TimeReduction(config.model_dim, name='time_reduction')
        if config.uses_time_reduction else None)

  @property
  def blocks(self):
    """The Conformer blocks, first to last."""
    return list(self._blocks)

  @property
  def config(self) -> ConformerEncoderConfig:
    return self._config

  @property
  def subsampling_factor(self) -> int:
    return self._config.subsampling_factor

  @property
  def output_dim(self) -> int:
    return self._config.model_dim

  @property
  def is_streaming(self) -> bool:
    return self._config.causal

  @property
  def chunk_frames_in(self) -> int:
    """Feature frames per `stream_step` chunk."""
    return self._config.chunk_size * self._config.subsampling_factor

  @property
  def cache_frames(self) -> int:
    """Encoder frames of attention context cached between chunks."""
    return self._config.chunk_size * self._config.left_chunks

  def output_lengths(self, feature_lengths):
    """Encoder frames for `feature_lengths` feature frames: T // factor."""
    return self._subsampling.output_lengths(feature_lengths)

  def attention_mask(self, frame_mask: tf.Tensor) -> tf.Tensor:
    """[B, T] valid frames -> [B, T, T] allowed (query, key) pairs."""
    key_mask = frame_mask[:, tf.newaxis, :]
    if not self._config.causal:
      return key_mask * tf.ones_like(frame_mask)[:, :, tf.newaxis]
    chunk_index = tf.range(tf.shape(frame_mask)[1]) // self._config.chunk_size
    chunks_back = chunk_index[:, tf.newaxis] - chunk_index[tf.newaxis, :]
    visible = tf.logical_and(chunks_back >= 0,
                             chunks_back <= self._config.left_chunks)
    return key_mask * tf.cast(visible, frame_mask.dtype)[tf.newaxis]

  def call(self, features: tf.Tensor, feature_lengths: tf.Tensor,
           training=False, intermediate_layer: Optional[int] = None
          ) -> Union[Tuple[tf.Tensor, tf.Tensor],
                     Tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """Encodes padded utterances.

    Args:
      features: [B, T, F] float32 normalized log-mel features.
      feature_lengths: [B] int32 valid frames per utterance.
      training: Enables dropout and stochastic depth.
      intermediate_layer: when set (1 .. num_layers - 1), also return the
        output of that many blocks, e.g. for an intermediate CTC loss. Not
        available with time reduction.

    Returns:
      (encoder_outputs [B, T // factor, D], encoder_lengths [B] int32);
      padded output frames are zeros. With `intermediate_layer`, a third
      element: that block's output [B, T // factor, D], padded frames zero.

    Raises:
      ValueError: for an `intermediate_layer` out of range, or with time
        reduction.
    """
    hidden = self._subsampling(features, training=training)
    encoder_lengths = tf.cast(
        self.output_lengths(tf.cast(feature_lengths, tf.int32)), tf.int32)
    frame_mask = tf.sequence_mask(
        encoder_lengths, tf.shape(hidden)[1], dtype=hidden.dtype)
    hidden *= frame_mask[..., tf.newaxis]
    attention_mask = self.attention_mask(frame_mask)
    if intermediate_layer is not None:
      self._check_intermediate_layer(intermediate_layer)
      intermediate = self._run_blocks(self._blocks[:intermediate_layer],
                                      hidden, frame_mask, attention_mask,
                                      training)
      return self._run_blocks(self._blocks[intermediate_layer:],
                              intermediate, frame_mask, attention_mask,
                              training), encoder_lengths, intermediate
    if self._time_reduction is None:
      return self._run_blocks(self._blocks, hidden, frame_mask,
                              attention_mask, training), encoder_lengths
    start = self._config.time_reduction_start
    end = self._config.time_reduction_end
    hidden = self._run_blocks(self._blocks[:start], hidden, frame_mask,
                              attention_mask, training)
    pooled, pooled_mask = self._time_reduction(hidden, encoder_lengths)
    pooled = self._run_blocks(self._blocks[start:end], pooled, pooled_mask,
                              self.attention_mask(pooled_mask), training)
    hidden = self._time_reduction.recover(pooled, hidden)
    hidden *= frame_mask[..., tf.newaxis]
    return self._run_blocks(self._blocks[end:], hidden, frame_mask,
                            attention_mask, training), encoder_lengths

  def _check_intermediate_layer(self, intermediate_layer: int):
    if self._time_reduction is not None:
      raise ValueError('ConformerEncoder: intermediate_layer is not '
                       'available with time reduction.')
    if not 1 <= intermediate_layer < self._config.num_layers:
      raise ValueError(
          f'ConformerEncoder: intermediate_layer must be in 1 .. '
          f'{self._config.num_layers - 1}, got {intermediate_layer}.')

  @staticmethod
  def _run_blocks(blocks, hidden, frame_mask, attention_mask, training):
    for block in blocks:
      hidden = block(hidden, frame_mask, attention_mask, training=training)
    return hidden

  def initial_state(self, batch_size) -> Dict[str, object]:
    """Zero streaming state (fixed shapes; see docs/models.md).

    Args:
      batch_size: Python int or scalar int tensor.

    Returns:
      {'subsampling': {conv name: [B, k - s, bins, channels]},
       'key_mask': [B, cache_frames] (1 = cached frame is valid),
       'block_i': {'key', 'value': [B, cache_frames, heads, head_dim],
                   'conv': [B, conv_kernel_size - 1, D]}}.
    """
    if not self._config.causal:
      raise ValueError('initial_state/stream_step need a causal encoder '
                       '(config.causal=True).')
    state = {
        'subsampling': self._subsampling.initial_state(batch_size),
        'key_mask': tf.zeros([batch_size, self.cache_frames],
                             self.compute_dtype),
    }
    for block in self._blocks:
      state[block.name] = block.initial_state(batch_size, self.cache_frames)
    return state

  def stream_step(self, features_chunk: tf.Tensor, state: Dict[str, object],
                  training=False,
                  features_chunk_lengths: Optional[tf.Tensor] = None):
    """Encodes the next chunk of a stream.

    Args:
      features_chunk: [B, chunk_size * factor, F]; frames past the end of an
        utterance may hold anything (they are masked out when
        `features_chunk_lengths` says so).
      state: From `initial_state` or the previous `stream_step`.
      training: Enables dropout and stochastic depth.
      features_chunk_lengths: Optional [B] int, valid feature frames in this
        chunk (default: all). Needed only for the last, partial chunk of an
        utterance so that its valid frames do not attend padding.

    Returns:
      (outputs [B, chunk_size, D], new_state); outputs past the valid
      frames are zeros.
    """
    if not self._config.causal:
      raise ValueError('stream_step needs a causal encoder '
                       '(config.causal=True).')
    hidden, subsampling_state = self._subsampling.stream(
        features_chunk, state['subsampling'], training=training)
    chunk_size = self._config.chunk_size
    if features_chunk_lengths is None:
      frame_mask = tf.ones(tf.shape(hidden)[:2], hidden.dtype)
    else:
      valid_frames = self.output_lengths(
          tf.cast(features_chunk_lengths, tf.int32))
      frame_mask = tf.sequence_mask(valid_frames, chunk_size,
                                    dtype=hidden.dtype)
    hidden *= frame_mask[..., tf.newaxis]
    key_mask = tf.concat([state['key_mask'], frame_mask], axis=1)
    new_state = {'subsampling': subsampling_state,
                 'key_mask': key_mask[:, chunk_size:]}
    for block in self._blocks:
      hidden, new_state[block.name] = block.stream(
          hidden, frame_mask, key_mask, state[block.name], training=training)
    return hidden, new_state


def _resolve_config(
    config_or_preset: Union[str, ConformerEncoderConfig]
) -> ConformerEncoderConfig:
  if isinstance(config_or_preset, str):
    return conformer_config.get_preset(config_or_preset)
  return config_or_preset


def build_encoder(
    config_or_preset: Union[str, ConformerEncoderConfig]) -> ConformerEncoder:
  """Builds an encoder (weights created) from a config or a preset name.

  Args:
    config_or_preset: A `ConformerEncoderConfig` or a name in
      `conformer_config.PRESETS`.

  Returns:
    A built `ConformerEncoder`.
  """
  config = _resolve_config(config_or_preset)
  encoder = ConformerEncoder(config, name='conformer_encoder')
  # A short dummy batch creates every weight (shapes do not depend on T).
  frames = 2 * config.subsampling_factor
  encoder(tf.zeros([1, frames, config.input_dim]), tf.constant([frames]))
  return encoder


def count_parameters(
    config_or_preset: Union[str, ConformerEncoderConfig]) -> int:
  """Number of encoder weights (trainable and batch-norm statistics).

  Args:
    config_or_preset: A `ConformerEncoderConfig` or a preset name.

  Returns:
    The same count as `build_encoder(...).count_params()`.
  """
  config = _resolve_config(config_or_preset)
  # All blocks have the same weight shapes, so a one-block encoder gives the
  # exact count about num_layers times faster; in a throwaway graph the
  # weights are declared but never initialized (Conformer L needs no 460 MB).
  with tf.Graph().as_default():
    # One block fits any time-reduction span that starts at 0 and ends at 1.
    reduction = ({'time_reduction_start': 0, 'time_reduction_end': 1}
                 if config.uses_time_reduction else {})
    encoder = build_encoder(config.replace(num_layers=1, **reduction))
    block_parameters = encoder.blocks[0].count_params()
    return (encoder.count_params() +
            (config.num_layers - 1) * block_parameters)


def main(argv):
  del argv
  for name in flags.FLAGS.presets:
    try:
      config = conformer_config.get_preset(name)
    except ValueError as error:
      sys.exit(f'error: {error}')  # One line on stderr, exit status 1.
    print(f'{name}: {count_parameters(config):,} encoder parameters '
          f'({config.num_layers} layers, dim {config.model_dim}, '
          f'{config.num_heads} heads, kernel {config.conv_kernel_size}, '
          f'{config.subsampling_factor}x, causal={config.causal})')


if __name__ == '__main__':
  # Defined here, not at import: a library module must not claim flag names.
  flags.DEFINE_list('presets', sorted(conformer_config.PRESETS),
                    'Conformer presets whose encoder parameter counts to '
                    'print.')
  app.run(main)
