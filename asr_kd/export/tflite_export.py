"""Converts a `StreamingRecognizer` to a multi-signature TFLite model.

The model has two signatures, `initial_state` and `stream_step`
(docs/export.md), and only TFLite builtin ops (the converter fails on
anything else: no Flex / SELECT_TF_OPS). Quantization modes:
  none: float32.
  float16: float16 weights (dequantized at load on CPUs).
  dynamic_int8: int8 weights, activations quantized on the fly.
  full_int8: int8 weights and activations, calibrated on streamed training
    audio, except the log-mel frontend, which stays float (see
    `_quantize_full_int8`), and by default the greedy search (prediction
    and joint networks: argmax over int8 logits flips near-ties, and the
    LSTM state would be requantized at every label; `int8_decoder=True`
    quantizes them too); ops without an int8 kernel keep float
    (TFLITE_BUILTINS listed after TFLITE_BUILTINS_INT8), and the signature
    inputs/outputs keep their types. Its `stream_step` decodes with the
    unrolled greedy search (`StreamingGreedyDecoder.decode_chunk` with
    `unrolled=True`).
"""

from typing import Iterable, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf
# pylint: disable=g-direct-tensorflow-import
from tensorflow.lite.python import convert as lite_convert
from tensorflow.lite.tools import flatbuffer_utils
# pylint: enable=g-direct-tensorflow-import

from asr_kd.dataloaders import tfrecord_schema
from asr_kd.export import streaming
from asr_kd.modeling import quantization_hints
from asr_kd.modeling import rnnt_stream

QUANTIZATIONS = ('none', 'float16', 'dynamic_int8', 'full_int8')
VOCAB_SUFFIX = '.vocab.txt'


def read_record_waveforms(file_pattern: str,
                          max_utterances: int) -> List[np.ndarray]:
  """int16 waveforms of the first `max_utterances` records of a glob.

  Raises:
    ValueError: if the pattern matches no file.
  """
  paths = sorted(tf.io.gfile.glob(file_pattern))
  if not paths:
    raise ValueError(f'No TFRecord files match {file_pattern}')
  dataset = tf.data.TFRecordDataset(paths).map(tfrecord_schema.parse_example)
  return [record['audio'] for record in
          dataset.take(max_utterances).as_numpy_iterator()]


def stream_inputs(recognizer: streaming.StreamingRecognizer,
                  waveforms: Iterable[np.ndarray]
                 ) -> Iterator[dict]:
  """The `stream_step` input dicts a stream of these waveforms produces.

  Runs the recognizer's own `stream_step` (TF, float) to get realistic
  states for calibration.
  """
  _, step_function = recognizer.signature_functions()
  names = recognizer.state_names
  chunk = recognizer.chunk_samples
  for waveform in waveforms:
    state = {name: value.numpy()
             for name, value in recognizer.initial_state().items()}
    for start in range(0, len(waveform), chunk):
      samples = waveform[start:start + chunk]
      inputs = dict(state)
      inputs['audio_chunk'] = np.pad(samples, (0, chunk - len(samples)))
      inputs['num_valid_samples'] = np.int32(len(samples))
      yield inputs
      outputs = step_function(inputs['audio_chunk'],
                              inputs['num_valid_samples'],
                              *[state[name] for name in names])
      state = {name: outputs[name].numpy() for name in names}


def convert(recognizer: streaming.StreamingRecognizer,
            quantization: str = 'none',
            calibration_waveforms: Optional[List[np.ndarray]] = None,
            max_calibration_steps: int = 200,
            int8_decoder: bool = False) -> bytes:
  """Returns the TFLite flatbuffer of the recognizer.

  Args:
    recognizer: the module to convert.
    quantization: one of QUANTIZATIONS.
    calibration_waveforms: int16 waveforms streamed for full_int8.
    max_calibration_steps: at most this many stream_step calls calibrate.
    int8_decoder: full_int8 only: quantize the prediction and joint
      networks too instead of keeping them float.

  Raises:
    ValueError: bad quantization or no calibration audio for full_int8.
  """
  if quantization not in QUANTIZATIONS:
    raise ValueError(f'quantization must be one of {QUANTIZATIONS}, got '
                     f'{quantization!r}')
  if int8_decoder and quantization != 'full_int8':
    raise ValueError('int8_decoder applies to full_int8 only, got '
                     f'quantization {quantization!r}')
  float_decoder = quantization == 'full_int8' and not int8_decoder
  initial_state, stream_step = recognizer.signature_functions(
      int8_calibratable=quantization == 'full_int8',
      float_decoder=float_decoder)
  converter = tf.lite.TFLiteConverter.from_concrete_functions(
      [initial_state.get_concrete_function(),
       stream_step.get_concrete_function()], recognizer)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if quantization != 'none':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if quantization == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  elif quantization == 'full_int8':
    if not calibration_waveforms:
      raise ValueError('full_int8 needs calibration audio '
                       '(--representative_data).')
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]

    def representative_dataset() -> Iterator[Tuple[str, dict]]:
      for step, inputs in enumerate(stream_inputs(recognizer,
                                                  calibration_waveforms)):
        if step >= max_calibration_steps:
          return
        yield 'stream_step', inputs
      yield 'initial_state', {'unused': np.int32(0)}

    converter.representative_dataset = representative_dataset
    return _quantize_full_int8(
        converter, float_state_prefix=rnnt_stream.DECODER_STATE_PREFIX
        if float_decoder else None)
  return converter.convert()


def float_node_names(model: bytes,
                     float_state_prefix: Optional[str] = None) -> List[str]:
  """Output tensor names of the ops that full_int8 keeps float.

  Args:
    model: a calibrated (or float) TFLite flatbuffer.
    float_state_prefix: also the ops that make the signature outputs whose
      names start with it. The last op of a state output is named after the
      output, not after its scope, so a `KEEP_FLOAT_SCOPE` around the code
      that computes that state does not reach it.

  Returns:
    Sorted tensor names.
  """
  model_object = flatbuffer_utils.convert_bytearray_to_object(
      bytearray(model))
  names = set()
  for subgraph in model_object.subgraphs:
    for operator in subgraph.operators or []:
      for index in operator.outputs:
        name = subgraph.tensors[index].name.decode('utf-8')
        if quantization_hints.is_kept_float(name):
          names.add(name)
  if float_state_prefix is not None:
    for signature in model_object.signatureDefs or []:
      tensors = model_object.subgraphs[signature.subgraphIndex].tensors
      for output in signature.outputs:
        if output.name.decode('utf-8').startswith(float_state_prefix):
          names.add(tensors[output.tensorIndex].name.decode('utf-8'))
  return sorted(names)


def _quantize_full_int8(converter: tf.lite.TFLiteConverter,
                        float_state_prefix: Optional[str] = None) -> bytes:
  """Calibrates, then quantizes everything but the kept-float ops to int8.

  The log-mel frontend (int16 PCM -> window -> RFFT -> power -> mel -> log)
  spans too many decades for int8: quantized, the waveform itself had 8-bit
  resolution and the power spectrum, mel energies and log were int8 too
  (encoder outputs off by ~75% on the demo student, ~13% with a float
  frontend). Its ops keep float;
  the int8 part starts at the normalized features. This is what
  `tf.lite.experimental.QuantizationDebugger.get_nondebug_quantized_model`
  does with `denylisted_nodes`, without its debug and float conversions:
  calibrate only, then the MLIR quantizer with the `KEEP_FLOAT_SCOPE` ops
  (frontend, attention logits, layer norms, and the greedy search when
  `convert` builds it there) denylisted. `float_state_prefix`: see
  `float_node_names`.
  """
  converter._experimental_calibrate_only = True  # pylint: disable=protected-access
  calibrated = converter.convert()
  return lite_convert.mlir_quantize(
      calibrated, denylisted_nodes=float_node_names(calibrated,
                                                    float_state_prefix))


def vocab_path_for(model_path: str) -> str:
  """The vocabulary file that ships beside a .tflite model."""
  return model_path + VOCAB_SUFFIX


def write_vocab(path: str, pieces: List[str]):
  """One SentencePiece piece per line; the line number is the id."""
  with tf.io.gfile.GFile(path, 'w') as vocab_file:
    for piece in pieces:
      vocab_file.write(piece + '\n')


def write_model(path: str, flatbuffer: bytes, pieces: List[str]) -> str:
  """Writes a .tflite model and its vocabulary beside it.

  Returns:
    The vocabulary file's path.
  """
  with tf.io.gfile.GFile(path, 'wb') as model_file:
    model_file.write(flatbuffer)
  vocab_path = vocab_path_for(path)
  write_vocab(vocab_path, pieces)
  return vocab_path


def read_vocab(path: str) -> List[str]:
  """Inverse of `write_vocab`.

  Raises:
    ValueError: if the file is missing.
  """
  if not tf.io.gfile.exists(path):
    raise ValueError(f'Vocabulary file not found: {path} (it is written '
                     'beside the model by asr_kd.bin.export_tflite)')
  with tf.io.gfile.GFile(path, 'r') as vocab_file:
    return vocab_file.read().split('\n')[:-1]


def detokenize(token_ids: Iterable[int], pieces: List[str]) -> str:
  """Host-side SentencePiece detokenization.

  Joins the pieces, turns '▁' into spaces and drops leading spaces (the
  dummy prefix), as SentencePiece's own decoder does for ordinary pieces.
  """
  text = ''.join(pieces[token] for token in token_ids if token != 0)
  return text.replace('\u2581', ' ').lstrip(' ')
