"""Keras/TF streaming greedy recognition that mirrors the TFLite chunking.

The parity reference for the exported streaming model: features of the whole
zero-prefixed, zero-padded utterance computed at once, then
`encoder.stream_step` + `StreamingGreedyDecoder` chunk by chunk, with the
same valid-frame masking as `StreamingRecognizer` (docs/export.md). It
shares no code with the exported module beyond the model's own layers.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from asr_kd.dataloaders import features as features_lib
from asr_kd.decoding import streaming_greedy


class StreamingResult(NamedTuple):
  """Tokens and encoder frames of one utterance.

  Attributes:
    tokens: int32 [U] emitted token ids.
    encoder_outputs: float32 [num_chunks * frames_per_chunk, D], zeros past
      the valid frames (as the exported `encoder_outputs`).
  """
  tokens: np.ndarray
  encoder_outputs: np.ndarray


def num_chunks(num_samples: int, chunk_samples: int) -> int:
  """Calls a stream of `num_samples` takes: the last one may be partial."""
  return -(-int(num_samples) // int(chunk_samples))


def streaming_greedy_reference(model, samples: np.ndarray,
                               chunk_samples: int, tail_samples: int,
                               max_symbols_per_frame: int
                              ) -> StreamingResult:
  """Recognizes int16 `samples` as the exported streaming model does.

  Args:
    model: a streaming `RnntModel` (its frontend computes the features).
    samples: 1-D int16 waveform at 16 kHz.
    chunk_samples: audio samples per exported `stream_step` call.
    tail_samples: the zero prefix / carried tail (rnnt_stream.tail_samples_for).
    max_symbols_per_frame: greedy limit.

  Returns:
    A `StreamingResult`.
  """
  frontend = model.frontend
  encoder = model.encoder
  calls = num_chunks(len(samples), chunk_samples)
  padded = np.concatenate([
      np.zeros([tail_samples], np.int16), np.asarray(samples, np.int16),
      np.zeros([calls * chunk_samples - len(samples)], np.int16)])
  features = frontend.normalize(frontend.log_mel(
      features_lib.waveform_to_float(padded[np.newaxis])))
  valid_frames = int(frontend.num_frames(tail_samples + len(samples)))
  frames_in = encoder.chunk_frames_in
  decoder = streaming_greedy.StreamingGreedyDecoder(
      model.prediction_network, model.joint_network, max_symbols_per_frame)
  encoder_state = encoder.initial_state(1)
  decoder_state = decoder.initial_decoder_state(1)
  tokens, encoder_frames = [], []
  steps = calls * chunk_samples // (frames_in *
                                    features_lib.frame_step_samples(
                                        frontend.config))
  for step in range(steps):
    step_frames = int(np.clip(valid_frames - step * frames_in, 0, frames_in))
    lengths = tf.constant([step_frames], tf.int32)
    encoder_chunk, encoder_state = encoder.stream_step(
        features[:, step * frames_in:(step + 1) * frames_in], encoder_state,
        features_chunk_lengths=lengths)
    step_tokens, counts, decoder_state = decoder.decode_chunk(
        encoder_chunk, decoder_state,
        chunk_lengths=encoder.output_lengths(lengths))
    tokens.extend(step_tokens.numpy()[0, :int(counts[0])].tolist())
    encoder_frames.append(encoder_chunk.numpy()[0])
  dim = encoder.output_dim
  return StreamingResult(
      np.asarray(tokens, np.int32),
      np.concatenate(encoder_frames) if encoder_frames
      else np.zeros([0, dim], np.float32))
