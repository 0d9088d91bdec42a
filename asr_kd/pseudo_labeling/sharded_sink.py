"""A sharded TFRecord sink for Beam, built on the converter's shard writer.

Beam's WriteToTFRecord needs crc32c packages this environment lacks, so
`tfrecords_tools.convert.WriteShardFn` writes each shard with TensorFlow's
writer. The converter wires it inline in its pipeline; this PTransform is
the same wiring as a reusable piece (keying by a stable hash of the
utterance id, making empty shards exist too, grouping, writing).
"""

import zlib
from typing import Iterable, Tuple

import apache_beam as beam

from tfrecords_tools import convert


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
        | 'WriteShards' >> beam.ParDo(convert.WriteShardFn(
            self._shard_prefix, self._shard_suffix, num_shards,
            self._compression))
        | 'SumWritten' >> beam.CombineGlobally(sum_pairs))
