"""Splits labeled TFRecords into a labeled subset and an unlabeled pool.

The comparison (`make experiments`) needs audio with transcripts and a
larger pool of audio without: it takes them from one labeled corpus. Every
utterance is ranked by a hash of its id (SHA-256, so the split depends on
nothing but the ids: not on shard order, file names or a random state) and
the floor(N * labeled_fraction) lowest go to the labeled subset, the rest to
the pool; the pool is thus at least (1 - f) / f times the subset (4x for
f = 1/5). Records are copied byte for byte, so both keep the corpus schema;
the pool's transcripts stay in its records (for measuring pseudo-label
error), and the comparison never trains on them.

Outputs, in `output_dir`: `labeled-SSSSS-of-NNNNN.tfrecord[.gz]` and
`pool-SSSSS-of-NNNNN.tfrecord[.gz]` (one shard per input file, same
compression), then `split.summary.json` (written last: it marks the split
done).
"""

import hashlib
import json
import os
from typing import Dict, List

import tensorflow as tf

from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tfrecord_schema

LABELED_PREFIX = 'labeled'
POOL_PREFIX = 'pool'
SUMMARY_FILE = 'split.summary.json'


def utterance_rank_key(utterance_id: str) -> bytes:
  """The value utterances are ranked by (ties broken by the id)."""
  return hashlib.sha256(utterance_id.encode('utf-8')).digest()


def labeled_ids(utterance_ids: List[str], labeled_fraction: float) -> set:
  """The floor(N * labeled_fraction) ids of lowest hash.

  Raises:
    ValueError: unless 0 < labeled_fraction < 1, or on repeated ids.
  """
  if not 0.0 < labeled_fraction < 1.0:
    raise ValueError(f'labeled_fraction must be in (0, 1), got '
                     f'{labeled_fraction}.')
  if len(set(utterance_ids)) != len(utterance_ids):
    raise ValueError('utterance ids repeat: the split needs unique ids.')
  count = int(len(utterance_ids) * labeled_fraction)
  ranked = sorted(utterance_ids,
                  key=lambda key: (utterance_rank_key(key), key))
  return set(ranked[:count])


def _records(path: str):
  compression = tfrecord_schema.compression_of(path)
  for record in tf.data.TFRecordDataset(path, compression_type=compression):
    serialized = record.numpy()
    example = tf.train.Example.FromString(serialized)
    utterance_id = example.features.feature[
        tfrecord_schema.UTTERANCE_ID].bytes_list.value[0].decode('utf-8')
    yield utterance_id, serialized


def _output_path(output_dir: str, prefix: str, index: int, count: int,
                 input_path: str) -> str:
  suffix = '.tfrecord'
  if tfrecord_schema.compression_of(input_path):
    suffix += tfrecord_schema.GZIP_SUFFIX
  return os.path.join(output_dir,
                      f'{prefix}-{index:05d}-of-{count:05d}{suffix}')


def split_records(input_path: str, output_dir: str,
                  labeled_fraction: float) -> Dict[str, object]:
  """Writes the labeled subset and the pool; returns the summary.

  Args:
    input_path: comma-separated TFRecord globs (corpus schema).
    output_dir: where the shards and the summary go.
    labeled_fraction: share of the utterances that keep their transcripts.

  Returns:
    The summary also written to `output_dir/split.summary.json`.
  """
  files = input_pipeline.expand_input_path(input_path)
  ids = [utterance_id for path in files for utterance_id, _ in
         _records(path)]
  labeled = labeled_ids(ids, labeled_fraction)
  os.makedirs(output_dir, exist_ok=True)
  counts = {LABELED_PREFIX: 0, POOL_PREFIX: 0}
  for index, path in enumerate(files):
    writers = {
        prefix: tf.io.TFRecordWriter(
            _output_path(output_dir, prefix, index, len(files), path),
            options=tfrecord_schema.compression_of(path))
        for prefix in counts}
    with writers[LABELED_PREFIX], writers[POOL_PREFIX]:
      for utterance_id, serialized in _records(path):
        prefix = LABELED_PREFIX if utterance_id in labeled else POOL_PREFIX
        writers[prefix].write(serialized)
        counts[prefix] += 1
  summary = {
      'inputs': files,
      'utterances': len(ids),
      'labeled_fraction': labeled_fraction,
      LABELED_PREFIX: counts[LABELED_PREFIX],
      POOL_PREFIX: counts[POOL_PREFIX],
  }
  summary_path = os.path.join(output_dir, SUMMARY_FILE)
  with open(summary_path + '.tmp', 'w') as summary_file:
    json.dump(summary, summary_file, indent=2)
  os.replace(summary_path + '.tmp', summary_path)
  return summary
