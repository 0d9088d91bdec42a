"""Checks that a file is a whole TFLite model before an interpreter opens it.

`tf.lite.Interpreter` trusts the flatbuffer it is given: a truncated model
makes it read past the end of the file and takes the process down with a
segmentation fault, which no `try` can catch. Reading the whole flatbuffer
first with TFLite's Python schema (which raises on any read out of range)
and checking that every index it holds points inside the model turns those
files into one ValueError naming the file.
"""

import struct

# pylint: disable=g-direct-tensorflow-import
from tensorflow.lite.tools import flatbuffer_utils
# pylint: enable=g-direct-tensorflow-import

# Bytes 4..8 of every TFLite flatbuffer.
TFLITE_FILE_IDENTIFIER = b'TFL3'


class TfliteFileError(ValueError):
  """The file is not a complete TFLite model."""


def _items(field) -> list:
  """A schema list field (None, a list or a NumPy array) as a list."""
  return [] if field is None else list(field)


def _check_index(index: int, count: int, what: str):
  if not -1 <= index < count:
    raise TfliteFileError(f'{what} {index} is out of range (0..{count - 1})')


def _check_references(model, model_size: int):
  """Every buffer, tensor, operator-code and subgraph index is in range."""
  buffers = _items(model.buffers)
  for buffer in buffers:
    # Models over 2 GB keep buffers after the flatbuffer: (offset, size).
    if buffer.offset > 1 and buffer.offset + buffer.size > model_size:
      raise TfliteFileError('a weight buffer ends past the end of the file')
  num_operator_codes = len(_items(model.operatorCodes))
  subgraphs = _items(model.subgraphs)
  for subgraph in subgraphs:
    tensors = _items(subgraph.tensors)
    for tensor in tensors:
      _check_index(tensor.buffer, len(buffers), 'tensor buffer')
    indices = _items(subgraph.inputs) + _items(subgraph.outputs)
    for operator in _items(subgraph.operators):
      _check_index(operator.opcodeIndex, num_operator_codes, 'operator code')
      indices += _items(operator.inputs) + _items(operator.outputs)
    for index in indices:
      _check_index(index, len(tensors), 'tensor')
  for signature in _items(model.signatureDefs):
    _check_index(signature.subgraphIndex, len(subgraphs), 'signature subgraph')
    tensors = _items(subgraphs[signature.subgraphIndex].tensors)
    for tensor_map in _items(signature.inputs) + _items(signature.outputs):
      _check_index(tensor_map.tensorIndex, len(tensors), 'signature tensor')


def check_tflite_model(model: bytes, name: str) -> None:
  """Raises TfliteFileError unless `model` is a complete TFLite flatbuffer.

  Args:
    model: the file's bytes.
    name: how the error names the model (its path).
  """
  if len(model) < 8 or model[4:8] != TFLITE_FILE_IDENTIFIER:
    raise TfliteFileError(f'{name} is not a TFLite model (no '
                          f'{TFLITE_FILE_IDENTIFIER.decode()} identifier)')
  try:
    model_object = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(model))
    _check_references(model_object, len(model))
  except TfliteFileError as error:
    raise TfliteFileError(f'{name} is damaged: {error}') from None
  except (struct.error, IndexError, ValueError, TypeError, OverflowError,
          UnicodeDecodeError) as error:
    # What the flatbuffer reader raises on a read past the end of the file.
    raise TfliteFileError(f'{name} is truncated or damaged ({len(model)} '
                          f'bytes; {type(error).__name__}: {error})'
                         ) from None
