"""A sharded TFRecord sink for Beam (the converter and the pseudo-labeler).

Records are keyed by a stable hash of their utterance id, every shard is
made to exist (also when it gets no record), and each shard is written by
`WriteShardFn` with TensorFlow's TFRecord writer.
"""

import uuid
import zlib
from typing import Iterable, Optional, Tuple

import apache_beam as beam
import tensorflow as tf



class WriteShardFn(beam.DoFn):
  """Writes one shard's records with TensorFlow's TFRecord writer.

  Beam's own WriteToTFRecord needs a crc32c package (google-crc32c, crcmod
  or python-snappy) that this environment does not ship; TensorFlow's writer
  has native crc32c and GZIP, and tf.io.gfile reaches the same remote
  filesystems. Each shard is written to a temporary name and renamed, so a
  retried bundle never leaves a half-written shard behind.
  Output: (records_written, samples_written) for the summary.
  """

  def __init__(self, shard_prefix: str, shard_suffix: str, num_shards: int,
               compression: str):
    super().__init__()
    self._shard_prefix = shard_prefix
    self._shard_suffix = shard_suffix
    self._num_shards = num_shards
    self._options = 'GZIP' if compression == 'gzip' else None

  def process(self, keyed_records: Tuple[int, Iterable[Optional[tuple]]]
             ) -> Iterable[Tuple[int, int]]:
    shard_index, records = keyed_records
    path = (f'{self._shard_prefix}-{shard_index:05d}-of-'
            f'{self._num_shards:05d}{self._shard_suffix}')
    temporary_path = f'{path}.incomplete-{uuid.uuid4().hex}'
    num_records = num_samples = 0
    with tf.io.TFRecordWriter(temporary_path, options=self._options) as writer:
      for record in records:
        if record is None:
          continue  # Placeholder that makes empty shards exist too.
        _, serialized, record_samples = record
        writer.write(serialized)
        num_records += 1
        num_samples += record_samples
    tf.io.gfile.rename(temporary_path, path, overwrite=True)
    yield num_records, num_samples


def shard_of(utterance_id: str, num_shards: int) -> int:
  """Stable shard index (not Python's salted hash(), so reruns agree)."""
  return zlib.crc32(utterance_id.encode('utf-8')) % num_shards


def sum_pairs(pairs: Iterable[Tuple[int, int]]) -> Tuple[int, int]:
  """Element-wise sum of (records, samples) pairs."""
  records = samples = 0
  for pair_records, pair_samples in pairs:
    records += pair_records
    samples += pair_samples
  return records, samples


class WriteShardedTFRecords(beam.PTransform):
  """Writes (utterance_id, serialized, num_samples) into N TFRecord shards.

  Shards are named <shard_prefix>-SSSSS-of-NNNNN<shard_suffix>; all N exist
  even when some get no record. The output is one (records, samples) pair:
  the totals written.
  """

  def __init__(self, shard_prefix: str, shard_suffix: str, num_shards: int,
               compression: str = 'none'):
    """Configures the sink.

    Args:
      shard_prefix: path prefix of the shards.
      shard_suffix: e.g. '.tfrecord' or '.tfrecord.gz'.
      num_shards: number of shards (>= 1).
      compression: 'none' or 'gzip'.
    """
    super().__init__()
    self._shard_prefix = shard_prefix
    self._shard_suffix = shard_suffix
    self._num_shards = num_shards
    self._compression = compression

  def expand(self, records):
    num_shards = self._num_shards
    keyed_records = records | 'KeyByShard' >> beam.Map(
        lambda record: (shard_of(record[0], num_shards), record))
    empty_shards = (
        records.pipeline
        | 'ListShards' >> beam.Create(list(range(num_shards)))
        | 'EmptyShard' >> beam.Map(lambda shard_index: (shard_index, None)))
    return (
        (keyed_records, empty_shards)
        | 'AllShards' >> beam.Flatten()
        | 'GroupByShard' >> beam.GroupByKey()
        | 'WriteShards' >> beam.ParDo(WriteShardFn(
            self._shard_prefix, self._shard_suffix, num_shards,
            self._compression))
        | 'SumWritten' >> beam.CombineGlobally(sum_pairs))
