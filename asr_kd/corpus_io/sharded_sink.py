"""A sharded TFRecord sink for Beam (the converter and the pseudo-labeler).

Records are keyed by a stable hash of their utterance id and every shard is
made to exist (also when it gets no record). Records never pass through a
GroupByKey: local runners hold a GroupByKey's whole input in memory (48,000
demo utterances went past 22 GB). Instead each bundle streams its records
into one part file per shard (`WriteBundlePartsFn`); only the part paths are
grouped, and `WriteShardFromPartsFn` writes each shard from its parts in a
fixed pseudo-random order (`record_order_key`), so a shard's bytes do not
depend on the runner or the run (one shard's records are held in memory
while it is written).

Beam's own WriteToTFRecord needs a crc32c package (google-crc32c, crcmod or
python-snappy) that this environment does not ship; TensorFlow's writer has
native crc32c and GZIP, and tf.io.gfile reaches the same remote filesystems.
"""

import hashlib
import uuid
import zlib
from typing import Iterable, List, Optional, Tuple

import apache_beam as beam
from apache_beam.transforms import window
import tensorflow as tf

# (part path, utterance ids in the part's order, samples) of one bundle's
# records for one shard.
Part = Tuple[str, List[str], int]


def record_order_key(utterance_id: str) -> Tuple[bytes, str]:
  """Sort key of a record inside its shard: a hash of the utterance id.

  Not the id itself: ids of one speaker (and, in the demo corpus, of one
  accent) are adjacent, and a training pipeline's bounded shuffle buffer
  would then see one accent at a time. The id breaks (unlikely) ties.
  """
  return hashlib.sha1(utterance_id.encode('utf-8')).digest(), utterance_id


def shard_path(shard_prefix: str, shard_index: int, num_shards: int,
               shard_suffix: str) -> str:
  return (f'{shard_prefix}-{shard_index:05d}-of-{num_shards:05d}'
          f'{shard_suffix}')


class WriteBundlePartsFn(beam.DoFn):
  """Streams (utterance_id, serialized, samples) records into part files.

  One uncompressed part per shard that the bundle has records for, named
  after the shard with a unique suffix. Output, at the end of the bundle:
  (shard index, Part) per part. A retried bundle writes new parts; only
  those of the bundle whose output Beam commits are used.
  """

  def __init__(self, shard_prefix: str, shard_suffix: str, num_shards: int):
    super().__init__()
    self._shard_prefix = shard_prefix
    self._shard_suffix = shard_suffix
    self._num_shards = num_shards
    self._parts = {}

  def start_bundle(self):
    self._parts = {}  # shard index -> [path, writer, ids, samples]

  def process(self, record):  # (utterance_id, serialized, samples)
    utterance_id, serialized, num_samples = record
    shard_index = shard_of(utterance_id, self._num_shards)
    if shard_index not in self._parts:
      path = (shard_path(self._shard_prefix, shard_index, self._num_shards,
                         self._shard_suffix) + f'.part-{uuid.uuid4().hex}')
      self._parts[shard_index] = [path, tf.io.TFRecordWriter(path), [], 0]
    part = self._parts[shard_index]
    part[1].write(serialized)
    part[2].append(utterance_id)
    part[3] += num_samples

  def finish_bundle(self):
    for shard_index, (path, writer, ids, samples) in self._parts.items():
      writer.close()
      yield window.GlobalWindows.windowed_value(
          (shard_index, (path, ids, samples)))
    self._parts = {}


class WriteShardFromPartsFn(beam.DoFn):
  """Writes one shard from its parts in `record_order_key` order; deletes them.

  The shard is written to a temporary name and renamed, so a retried bundle
  never leaves a half-written shard behind. Records with the same id keep
  the order of their parts' paths. Output: (records_written,
  samples_written) for the summary.
  """

  def __init__(self, shard_prefix: str, shard_suffix: str, num_shards: int,
               compression: str):
    super().__init__()
    self._shard_prefix = shard_prefix
    self._shard_suffix = shard_suffix
    self._num_shards = num_shards
    self._options = 'GZIP' if compression == 'gzip' else None

  def process(self, keyed_parts: Tuple[int, Iterable[Optional[Part]]]
             ) -> Iterable[Tuple[int, int]]:
    shard_index, parts = keyed_parts
    # None: the placeholder that makes empty shards exist too.
    parts = sorted(part for part in parts if part is not None)
    path = shard_path(self._shard_prefix, shard_index, self._num_shards,
                      self._shard_suffix)
    temporary_path = f'{path}.incomplete-{uuid.uuid4().hex}'
    keyed_records = []
    for part_path, ids, _ in parts:
      records = tf.data.TFRecordDataset(part_path).as_numpy_iterator()
      keyed_records.extend(zip(ids, records))
    # Stable: records with equal ids stay in part order.
    keyed_records.sort(key=lambda keyed_record: record_order_key(
        keyed_record[0]))
    with tf.io.TFRecordWriter(temporary_path, options=self._options) as writer:
      for _, serialized in keyed_records:
        writer.write(serialized)
    tf.io.gfile.rename(temporary_path, path, overwrite=True)
    for part_path, _, _ in parts:
      tf.io.gfile.remove(part_path)
    yield len(keyed_records), sum(part[2] for part in parts)


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
    parts = records | 'WriteParts' >> beam.ParDo(WriteBundlePartsFn(
        self._shard_prefix, self._shard_suffix, num_shards))
    empty_shards = (
        records.pipeline
        | 'ListShards' >> beam.Create(list(range(num_shards)))
        | 'EmptyShard' >> beam.Map(lambda shard_index: (shard_index, None)))
    return (
        (parts, empty_shards)
        | 'AllShards' >> beam.Flatten()
        | 'GroupByShard' >> beam.GroupByKey()
        | 'WriteShards' >> beam.ParDo(WriteShardFromPartsFn(
            self._shard_prefix, self._shard_suffix, num_shards,
            self._compression))
        | 'SumWritten' >> beam.CombineGlobally(sum_pairs))
