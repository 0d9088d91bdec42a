"""The labeled subset / unlabeled pool split of `make experiments`."""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from asr_kd.experiments import data_split
from asr_kd.dataloaders import tfrecord_schema

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_records(directory, ids, num_files, compress=False):
  """`ids` dealt round-robin over `num_files` shards; returns the glob."""
  os.makedirs(directory, exist_ok=True)
  suffix = '.tfrecord.gz' if compress else '.tfrecord'
  writers = [tf.io.TFRecordWriter(
      os.path.join(directory, f'train-{index:05d}-of-{num_files:05d}{suffix}'),
      options='GZIP' if compress else '') for index in range(num_files)]
  rng = np.random.default_rng(len(ids))
  expected = {}
  for index, utterance_id in enumerate(ids):
    serialized = tfrecord_schema.make_example(
        utterance_id, rng.integers(-999, 999, 160 + index, dtype=np.int16),
        transcript=f'words {index}').SerializeToString()
    expected[utterance_id] = serialized
    writers[index % num_files].write(serialized)
  for writer in writers:
    writer.close()
  return os.path.join(directory, 'train-*'), expected


def read_split(output_dir, prefix):
  records = {}
  for path in sorted(tf.io.gfile.glob(os.path.join(output_dir,
                                                   f'{prefix}-*'))):
    compression = 'GZIP' if path.endswith('.gz') else ''
    for record in tf.data.TFRecordDataset(path, compression):
      example = tf.train.Example.FromString(record.numpy())
      utterance_id = example.features.feature[
          tfrecord_schema.UTTERANCE_ID].bytes_list.value[0].decode()
      records[utterance_id] = record.numpy()
  return records


class DataSplitTest(tf.test.TestCase):

  def test_labeled_ids_are_the_lowest_hashes_and_the_pool_is_4x(self):
    rng = np.random.default_rng(0)
    for count in (1, 4, 5, 9, 10, 24, 101, 1000):
      ids = [f'spk{rng.integers(1000)}-utt{index}' for index in range(count)]
      labeled = data_split.labeled_ids(ids, 0.2)
      self.assertLen(labeled, count // 5)
      self.assertGreaterEqual(count - len(labeled), 4 * len(labeled))
      # Independent of the order the ids come in.
      self.assertEqual(data_split.labeled_ids(ids[::-1], 0.2), labeled)
      digests = sorted(int(hashlib.sha256(key.encode()).hexdigest(), 16)
                       for key in ids)
      for key in labeled:
        self.assertIn(int(hashlib.sha256(key.encode()).hexdigest(), 16),
                      digests[:len(labeled)])

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'labeled_fraction'):
      data_split.labeled_ids(['a', 'b'], 1.0)
    with self.assertRaisesRegex(ValueError, 'repeat'):
      data_split.labeled_ids(['a', 'a'], 0.5)

  def test_split_copies_every_record_once_whatever_the_sharding(self):
    ids = [f'utt{index:03d}' for index in range(40)]
    labeled_sets = []
    for num_files, compress in ((1, False), (3, True)):
      directory = tempfile.mkdtemp()
      pattern, expected = write_records(os.path.join(directory, 'in'), ids,
                                        num_files, compress)
      output_dir = os.path.join(directory, 'out')
      summary = data_split.split_records(pattern, output_dir, 0.2)
      labeled = read_split(output_dir, data_split.LABELED_PREFIX)
      pool = read_split(output_dir, data_split.POOL_PREFIX)
      self.assertEqual((summary['labeled'], summary['pool']), (8, 32))
      self.assertEmpty(set(labeled) & set(pool))
      # Byte-identical copies: the schema (and transcript) are kept.
      self.assertEqual({**labeled, **pool}, expected)
      self.assertLen(tf.io.gfile.glob(os.path.join(output_dir, 'pool-*')),
                     num_files)
      with open(os.path.join(output_dir, data_split.SUMMARY_FILE)) as f:
        self.assertEqual(json.load(f), summary)
      labeled_sets.append(set(labeled))
    self.assertEqual(labeled_sets[0], labeled_sets[1])
    self.assertEqual(labeled_sets[0], data_split.labeled_ids(ids, 0.2))

  def test_binary(self):
    directory = tempfile.mkdtemp()
    pattern, _ = write_records(directory, [f'u{i}' for i in range(10)], 2)
    output_dir = os.path.join(directory, 'out')
    result = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.split_labeled',
         f'--input={pattern}', f'--output_dir={output_dir}',
         '--labeled_fraction=0.3'], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    summary = json.loads(result.stdout[result.stdout.index('{'):])
    self.assertEqual((summary['labeled'], summary['pool']), (3, 7))


if __name__ == '__main__':
  tf.test.main()
