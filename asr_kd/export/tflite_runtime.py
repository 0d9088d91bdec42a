"""Runs an exported streaming TFLite model the way a phone app would.

Only `tf.lite.Interpreter` and NumPy: the audio goes in chunk by chunk
(`stream_step`), every state output is fed back as the next call's input,
and the token ids are detokenized on the host with the vocabulary file that
ships beside the model.
"""

import time
from typing import List, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from asr_kd.export import tflite_export
from asr_kd.export import tflite_file_check

INITIAL_STATE = 'initial_state'
STREAM_STEP = 'stream_step'


class StreamOutput(NamedTuple):
  """One utterance streamed through the model.

  Attributes:
    tokens: int32 [U] token ids.
    text: detokenized transcript.
    chunk_seconds: wall time of each `stream_step` call.
    encoder_outputs: float32 [calls * frames_per_call, D].
  """
  tokens: np.ndarray
  text: str
  chunk_seconds: np.ndarray
  encoder_outputs: np.ndarray


class TfliteStreamer:
  """A streaming TFLite recognizer with its vocabulary.

  Attributes:
    chunk_samples: int16 samples per `stream_step` call.
    state_names: names of the state tensors.
  """

  def __init__(self, model_path: str, num_threads: int = 1,
               vocab_path: Optional[str] = None):
    """Loads the model and its vocabulary.

    Args:
      model_path: a .tflite file from asr_kd.bin.export_tflite.
      num_threads: interpreter threads.
      vocab_path: default `<model_path>.vocab.txt`.

    Raises:
      ValueError: missing files, a file that is not a complete TFLite
        model (checked before the interpreter reads it, which would crash
        the process on a truncated one) or a model without the two
        signatures.
    """
    if not tf.io.gfile.exists(model_path):
      raise ValueError(f'TFLite model not found: {model_path}')
    self.pieces = tflite_export.read_vocab(
        vocab_path or tflite_export.vocab_path_for(model_path))
    with tf.io.gfile.GFile(model_path, 'rb') as model_file:
      model = model_file.read()
    tflite_file_check.check_tflite_model(model, model_path)
    self.interpreter = tf.lite.Interpreter(model_content=model,
                                           num_threads=num_threads)
    signatures = self.interpreter.get_signature_list()
    if INITIAL_STATE not in signatures or STREAM_STEP not in signatures:
      raise ValueError(f'{model_path} has signatures {sorted(signatures)}, '
                       f'expected {INITIAL_STATE} and {STREAM_STEP}')
    self._initial_state = self.interpreter.get_signature_runner(INITIAL_STATE)
    self._stream_step = self.interpreter.get_signature_runner(STREAM_STEP)
    self.state_names: List[str] = list(signatures[INITIAL_STATE]['outputs'])
    self.chunk_samples = int(
        self._stream_step.get_input_details()['audio_chunk']['shape'][0])

  def transcribe(self, samples: np.ndarray,
                 keep_encoder_outputs: bool = True) -> StreamOutput:
    """Streams 16 kHz int16 samples; a last partial chunk is zero-padded.

    Args:
      samples: the audio.
      keep_encoder_outputs: return every chunk's encoder outputs (for
        parity checks); without them memory stays flat however long the
        audio (`encoder_outputs` is then empty).

    Raises:
      ValueError: for input that is not 1-D int16.
    """
    samples = np.asarray(samples)
    if samples.dtype != np.int16 or samples.ndim != 1:
      raise ValueError('samples must be a 1-D int16 array, got '
                       f'{samples.dtype} with shape {samples.shape}')
    # Full-int8 models take a dummy `unused` scalar (see tflite_export).
    state = self._initial_state(**{
        name: np.zeros(detail['shape'], detail['dtype'])
        for name, detail in self._initial_state.get_input_details().items()})
    tokens, seconds, encoder_frames = [], [], []
    chunk = self.chunk_samples
    for start in range(0, len(samples), chunk):
      piece = samples[start:start + chunk]
      audio_chunk = np.pad(piece, (0, chunk - len(piece)))
      began = time.perf_counter()
      outputs = self._stream_step(audio_chunk=audio_chunk,
                                  num_valid_samples=np.int32(len(piece)),
                                  **state)
      seconds.append(time.perf_counter() - began)
      state = {name: outputs[name] for name in self.state_names}
      tokens.extend(outputs['tokens'][:int(outputs['num_tokens'])].tolist())
      if keep_encoder_outputs:
        encoder_frames.append(outputs['encoder_outputs'])
    tokens = np.asarray(tokens, np.int32)
    return StreamOutput(
        tokens, tflite_export.detokenize(tokens, self.pieces),
        np.asarray(seconds), np.concatenate(encoder_frames) if encoder_frames
        else np.zeros([0, 0], np.float32))
