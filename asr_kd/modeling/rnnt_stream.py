"""Streaming recognition with an RnntModel, one audio chunk per call.

`RnntStream` runs, for batch 1: the model's log-mel frontend with a carried
audio tail, feature normalization, `encoder.stream_step` and the streaming
greedy decoder. `initial_state()` and `stream_step(chunk, num_valid_samples,
state) -> (outputs, state)` take and return every state tensor explicitly
(flat, named), so a caller (a TFLite interpreter on a phone, through
asr_kd/export/streaming.py) only has to feed the state one call returns into
the next.

Stream framing (exact, see docs/export.md):
  * `log_mel` has no centering: frame j covers samples [j*h, j*h + w)
    (h = 160 hop, w = 400 window). Each call frames `tail + chunk`, where
    `tail` is the last `tail_samples` = ceil((w - h) / h) * h = 320 samples
    of the previous call; with chunks of whole hops every call yields exactly
    chunk_samples / h frames and leaves the same tail length.
  * The initial tail is zeros, so the stream is the utterance preceded by
    `tail_samples` of silence (20 ms, two whole frames); the recognizer's
    output equals streaming recognition of that zero-prefixed waveform.
  * The last chunk may be partial: the caller zero-pads it to
    `chunk_samples` and passes `num_valid_samples`; frames reading padding
    are masked in the encoder and the decoder.
"""

import collections.abc
import math
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.decoding import streaming_greedy
from asr_kd.modeling import quantization_hints

AUDIO_TAIL = 'audio_tail'
STATE_SEPARATOR = '_'
DECODER_STATE = 'decoder'
# Flat names of the greedy search's state (prediction network, last token).
DECODER_STATE_PREFIX = DECODER_STATE + STATE_SEPARATOR


def tail_samples_for(feature_config: data_config.FeatureConfig) -> int:
  """Samples carried between calls: ceil((window - hop) / hop) hops."""
  window = features_lib.frame_length_samples(feature_config)
  hop = features_lib.frame_step_samples(feature_config)
  return int(math.ceil((window - hop) / hop)) * hop


def flatten_named(structure: Any, prefix: str = '') -> Dict[str, tf.Tensor]:
  """Flattens nested dicts/lists of tensors into {'a_b_0': tensor}."""
  if isinstance(structure, collections.abc.Mapping):
    items = sorted(structure.items())
  elif isinstance(structure, collections.abc.Sequence) and not isinstance(
      structure, (str, bytes)):
    items = list(enumerate(structure))
  else:
    return {prefix: structure}
  flat = {}
  for key, value in items:
    name = f'{prefix}{STATE_SEPARATOR}{key}' if prefix else str(key)
    flat.update(flatten_named(value, name))
  return flat


def unflatten_named(template: Any, flat: Dict[str, tf.Tensor],
                    prefix: str = '') -> Any:
  """Inverse of `flatten_named` for the structure of `template`.

  Sequences come back as plain lists (a tf.Module wraps the template's
  lists and dicts in trackable wrappers).
  """
  def child(key):
    return f'{prefix}{STATE_SEPARATOR}{key}' if prefix else str(key)

  if isinstance(template, collections.abc.Mapping):
    return {key: unflatten_named(value, flat, child(key))
            for key, value in template.items()}
  if isinstance(template, collections.abc.Sequence) and not isinstance(
      template, (str, bytes)):
    return [unflatten_named(value, flat, child(index))
            for index, value in enumerate(template)]
  return flat[prefix]


class RnntStream:
  """Batch-1 streaming frontend + encoder + greedy decoder with flat state.

  Attributes:
    chunk_samples: int16 samples per `stream_step` call.
    tail_samples: samples carried between calls (the zero prefix).
    steps_per_call: encoder `stream_step`s per call.
    encoder_frames_per_call: encoder frames a call outputs.
    max_tokens_per_call: size of the `tokens` output.
  """

  def __init__(self, model, chunk_ms: Optional[float] = None,
               max_symbols_per_frame: int = 3):
    """Streams a streaming RnntModel (`RnntModel.stream`).

    Args:
      model: an `RnntModel` with a causal encoder (built, weights loaded);
        its frontend computes the features.
      chunk_ms: audio per call; a multiple of the encoder chunk
        (chunk_frames_in * frame_step_ms). Default: one encoder chunk.
      max_symbols_per_frame: greedy decoding limit per encoder frame.

    Raises:
      ValueError: for a non-streaming model or a bad chunk_ms.
    """
    if not model.encoder.is_streaming:
      raise ValueError('The model\'s encoder is not causal (streaming); '
                       'only streaming models stream (and export to TFLite '
                       'stream_step).')
    self._model = model
    self._feature_config = model.frontend.config
    self._encoder = model.encoder
    self._max_symbols_per_frame = max_symbols_per_frame
    self._decoder = streaming_greedy.StreamingGreedyDecoder(
        model.prediction_network, model.joint_network,
        max_symbols_per_frame=max_symbols_per_frame)
    hop = features_lib.frame_step_samples(self._feature_config)
    step_ms = self._encoder.chunk_frames_in * self._feature_config.frame_step_ms
    chunk_ms = step_ms if chunk_ms is None else chunk_ms
    if chunk_ms <= 0 or abs(chunk_ms / step_ms - round(chunk_ms / step_ms)
                           ) > 1e-9:
      raise ValueError(f'chunk_ms must be a positive multiple of the encoder '
                       f'chunk ({step_ms:g} ms), got {chunk_ms}')
    self.steps_per_call = int(round(chunk_ms / step_ms))
    self.chunk_frames = self.steps_per_call * self._encoder.chunk_frames_in
    self.chunk_samples = self.chunk_frames * hop
    self.tail_samples = tail_samples_for(self._feature_config)
    self.encoder_frames_per_call = (self.steps_per_call *
                                    self._encoder.config.chunk_size)
    self.max_tokens_per_call = (self.encoder_frames_per_call *
                                max_symbols_per_frame)
    self._state_template = self._initial_state_structure()

  def _initial_state_structure(self) -> Dict[str, Any]:
    return {
        AUDIO_TAIL: tf.zeros([1, self.tail_samples], tf.int16),
        'encoder': self._encoder.initial_state(1),
        DECODER_STATE: self._decoder.initial_decoder_state(1),
    }

  def initial_state(self) -> Dict[str, tf.Tensor]:
    """The flat state before any audio, {name: tensor}."""
    return flatten_named(self._initial_state_structure())

  def stream_step(self, audio_chunk: tf.Tensor, num_valid_samples: tf.Tensor,
                  state: Dict[str, tf.Tensor],
                  unrolled_search: bool = False,
                  float_decoder: bool = False
                 ) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor]]:
    """Consumes one chunk of audio.

    Args:
      audio_chunk: int16 [chunk_samples]; a last partial chunk zero-padded.
      num_valid_samples: int32 scalar, real samples in `audio_chunk`.
      state: flat state from `initial_state` or the previous call.
      unrolled_search: decode without a WHILE loop (same tokens,
        `StreamingGreedyDecoder.decode_chunk(unrolled=True)`).
      float_decoder: build the greedy search (prediction and joint
        networks) under `KEEP_FLOAT_SCOPE`, so full_int8 keeps it float.

    Returns:
      ({'tokens': int32 [max_tokens_per_call] (0-padded),
        'num_tokens': int32 scalar,
        'encoder_outputs': float32 [encoder_frames_per_call, D] (zeros past
          the valid frames)}, the new flat state).
    """
    nested = unflatten_named(self._state_template, state)
    # The tail stays int16 (raw samples, exact in every quantization mode)
    # and the frontend stays float in full_int8 (quantization_hints).
    samples = tf.concat([nested[AUDIO_TAIL], audio_chunk[tf.newaxis]], axis=1)
    with quantization_hints.keep_float_scope():
      frontend = self._model.frontend
      normalized = frontend.normalize(frontend.log_mel(
          features_lib.waveform_to_float(samples), mel_as_matmul=False))
    valid_frames = tf.minimum(
        features_lib.num_frames(
            self.tail_samples + tf.cast(num_valid_samples, tf.int32),
            self._feature_config), self.chunk_frames)
    encoder_state = nested['encoder']
    decoder_state = nested[DECODER_STATE]
    frames_in = self._encoder.chunk_frames_in
    tokens = tf.zeros([self.max_tokens_per_call], tf.int32)
    num_tokens = tf.constant(0, tf.int32)
    encoder_chunks = []
    for step in range(self.steps_per_call):
      step_lengths = tf.reshape(
          tf.clip_by_value(valid_frames - step * frames_in, 0, frames_in), [1])
      encoder_chunk, encoder_state = self._encoder.stream_step(
          normalized[:, step * frames_in:(step + 1) * frames_in],
          encoder_state, features_chunk_lengths=step_lengths)
      encoder_lengths = self._encoder.output_lengths(step_lengths)
      with quantization_hints.keep_float_scope(float_decoder):
        step_tokens, step_counts, decoder_state = self._decoder.decode_chunk(
            encoder_chunk, decoder_state, chunk_lengths=encoder_lengths,
            unrolled=unrolled_search)
      tokens += _place_tokens(step_tokens[0], step_counts[0], num_tokens,
                              self.max_tokens_per_call)
      num_tokens += step_counts[0]
      encoder_chunks.append(encoder_chunk[0])
    new_state = flatten_named({
        AUDIO_TAIL: samples[:, -self.tail_samples:],
        'encoder': encoder_state,
        DECODER_STATE: decoder_state,
    })
    outputs = {'tokens': tokens, 'num_tokens': num_tokens,
               'encoder_outputs': tf.concat(encoder_chunks, axis=0)}
    return outputs, new_state


def _place_tokens(step_tokens: tf.Tensor, step_count: tf.Tensor,
                  offset: tf.Tensor, buffer_size: int) -> tf.Tensor:
  """Scatters step_tokens[:step_count] to [offset, offset + count) of a
  zero buffer of `buffer_size` (fixed shapes, TFLite builtins only)."""
  positions = tf.range(tf.shape(step_tokens)[0])
  targets = tf.where(positions < step_count, positions + offset, buffer_size)
  # A one-hot of an index >= buffer_size is all zeros: that token drops out.
  placement = tf.one_hot(targets, buffer_size, dtype=tf.int32)
  return tf.reduce_sum(placement * step_tokens[:, tf.newaxis], axis=0)
