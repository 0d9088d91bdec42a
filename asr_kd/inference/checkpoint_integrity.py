"""Which file of a TF2 checkpoint cannot be read, and why.

A checkpoint `PREFIX` is `PREFIX.index` (a table of tensor names, shapes,
offsets and checksums) and `PREFIX.data-SSSSS-of-NNNNN` shards (the tensor
bytes). TensorFlow's read errors seldom name the file ("Read less bytes than
requested" for a truncated shard, "not an sstable" for a cut index), so a
failed restore is traced back to the damaged file here, for one-line error
messages and for training to skip a damaged checkpoint.
"""

import dataclasses
import re
from typing import Optional

import tensorflow as tf

# What reading a damaged checkpoint raises: OpError subclasses for a missing
# or corrupt file or a checksum mismatch; IndexError for a short .data shard.
READ_ERRORS = (tf.errors.OpError, IndexError)

_SHARD_PATTERN = re.compile(r'\.data-(\d{5})-of-(\d{5})$')
# A checksum mismatch names the shard: "TensorBundle at PREFIX shard 0 ...".
_SHARD_IN_MESSAGE = re.compile(r'\bshard (\d+)\b')


@dataclasses.dataclass(frozen=True)
class Damage:
  """A checkpoint file that cannot be read.

  Attributes:
    file_path: the damaged (or missing) file, e.g. PREFIX.index.
    reason: TensorFlow's first line of explanation, or 'missing'.
  """
  file_path: str
  reason: str

  def __str__(self) -> str:
    if self.reason == 'missing':
      return f'{self.file_path} is missing'
    return f'{self.file_path} is truncated or corrupt ({self.reason})'


def _first_line(error: BaseException) -> str:
  message = (getattr(error, 'message', None) or str(error)).strip()
  return message.splitlines()[0] if message else type(error).__name__


def _data_files(prefix: str) -> list:
  return sorted(path for path in tf.io.gfile.glob(prefix + '.data-*')
                if _SHARD_PATTERN.search(path))


def _missing_data_file(prefix: str, data_files: list) -> Optional[str]:
  """The first shard the file names promise but the folder lacks."""
  if not data_files:
    return f'{prefix}.data-00000-of-00001'
  num_shards = int(_SHARD_PATTERN.search(data_files[0]).group(2))
  for shard in range(num_shards):
    path = f'{prefix}.data-{shard:05d}-of-{num_shards:05d}'
    if not tf.io.gfile.exists(path):
      return path
  return None


def locate_damage(prefix: str, error: BaseException) -> Damage:
  """Names the file of checkpoint `prefix` that a read error came from.

  Args:
    prefix: the checkpoint prefix (e.g. MODEL_DIR/ckpt-200).
    error: what reading it raised (one of READ_ERRORS).

  Returns:
    The index when it is missing or cannot be parsed, else the data shard
    that is missing or that the error points at (the shards' pattern when
    there are several and none is named).
  """
  index_path = prefix + '.index'
  if not tf.io.gfile.exists(index_path):
    return Damage(index_path, 'missing')
  try:
    tf.train.load_checkpoint(prefix)
  except READ_ERRORS as index_error:
    return Damage(index_path, _first_line(index_error))
  data_files = _data_files(prefix)
  missing = _missing_data_file(prefix, data_files)
  if missing:
    return Damage(missing, 'missing')
  reason = _first_line(error)
  named = _SHARD_IN_MESSAGE.search(reason)
  if named and int(named.group(1)) < len(data_files):
    return Damage(data_files[int(named.group(1))], reason)
  if len(data_files) == 1:
    return Damage(data_files[0], reason)
  return Damage(f'{prefix}.data-*', reason)


def find_damage(prefix: str) -> Optional[Damage]:
  """Reads every tensor of checkpoint `prefix` (checksums included).

  Costs one full read of the checkpoint; a restore reads it again.

  Args:
    prefix: the checkpoint prefix.

  Returns:
    None when the whole checkpoint is readable, else the damaged file.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except READ_ERRORS as error:
    return locate_damage(prefix, error)
  return None
