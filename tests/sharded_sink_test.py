"""Tests for asr_kd.corpus_io.sharded_sink: parts per bundle, then shards."""

import glob
import os
import tempfile

import numpy as np
import tensorflow as tf

from asr_kd.corpus_io import sharded_sink


def _records(path, compression=None):
  return [record.numpy() for record in
          tf.data.TFRecordDataset(path, compression_type=compression)]


def _write_bundle(prefix, num_shards, records):
  """Runs WriteBundlePartsFn over one bundle; returns {shard: Part}."""
  write_parts = sharded_sink.WriteBundlePartsFn(prefix, '.tfrecord',
                                                num_shards)
  write_parts.start_bundle()
  for record in records:
    write_parts.process(record)
  return dict(value.value for value in write_parts.finish_bundle())


class ShardedSinkTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.prefix = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()),
                               'train')

  def test_bundle_parts_make_shards_in_key_order(self):
    num_shards = 3
    # Ids in no particular order across and within the bundles.
    ids = [f'utt-{index:02d}' for index in np.random.default_rng(0)
           .permutation(40)]
    records = [(utterance_id, utterance_id.encode() * 3, index)
               for index, utterance_id in enumerate(ids)]
    bundle_records = [records[:25], records[25:]]
    bundles = [_write_bundle(self.prefix, num_shards, bundle)
               for bundle in bundle_records]
    write_shard = sharded_sink.WriteShardFromPartsFn(self.prefix, '.tfrecord',
                                                     num_shards, 'gzip')
    totals = []
    for shard in range(num_shards):
      parts = [bundle[shard] for bundle in bundles if shard in bundle]
      # With the placeholder None, and parts in no particular order.
      totals.extend(write_shard.process(
          (shard, [None] + parts[::-1])))
      # Expected: the shard's records in key order, whatever the parts.
      expected = [serialized for utterance_id, serialized, _ in sorted(
          records, key=lambda record: sharded_sink.record_order_key(record[0]))
                  if sharded_sink.shard_of(utterance_id, num_shards) == shard]
      self.assertNotEmpty(expected)
      self.assertEqual(_records(sharded_sink.shard_path(
          self.prefix, shard, num_shards, '.tfrecord'), 'GZIP'), expected)
    self.assertEqual(sharded_sink.sum_pairs(totals),
                     (len(records), sum(range(40))))
    # Only the shards are left.
    self.assertCountEqual(
        glob.glob(self.prefix + '*'),
        [sharded_sink.shard_path(self.prefix, shard, num_shards, '.tfrecord')
         for shard in range(num_shards)])

  def test_order_key_scatters_adjacent_ids(self):
    ids = [f'100-1-{index:04d}' for index in range(200)]
    order = sorted(range(200),
                   key=lambda index: sharded_sink.record_order_key(ids[index]))
    # Ids adjacent in key order are far apart as ids (in order: all 1).
    self.assertGreater(np.median(np.abs(np.diff(order))), 30)

  def test_shard_without_records_is_written_empty(self):
    write_shard = sharded_sink.WriteShardFromPartsFn(self.prefix, '.tfrecord',
                                                     2, 'none')
    self.assertEqual(list(write_shard.process((1, [None]))), [(0, 0)])
    self.assertEqual(_records(sharded_sink.shard_path(
        self.prefix, 1, 2, '.tfrecord')), [])


if __name__ == '__main__':
  tf.test.main()
