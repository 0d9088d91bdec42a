r"""Summarizes TFRecord shards and verifies that every record parses.

  python -m tfrecords_tools.inspect "/data/tfrecords/dev-clean/data-*" \
      --num_examples=3

Prints file and record counts, labeled / unlabeled / pseudo-labeled counts,
total hours, duration statistics with an ASCII histogram, the transcript
character set and a few examples. Warns (on stderr, exit code 0) when an
utterance id occurs more than once: training would see those utterances
more than once, and the usual cause is a pattern that matches two shard sets or a
killed run's leftovers. Exits non-zero, naming the file and record index,
if a record does not parse or its num_samples disagrees with its audio.
"""

import collections
import os
import re
import sys
from typing import Dict, List, Optional

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from asr_kd.dataloaders import tfrecord_schema

_HISTOGRAM_BINS = 10
_HISTOGRAM_WIDTH = 40
_DUPLICATES_SHOWN = 3  # Repeated ids the warning names.


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (only when run as one, so importing this
  module never collides with other binaries' flags)."""
  flags.DEFINE_integer('num_examples', 3,
                       'Number of example records to print.', lower_bound=0,
                       flag_values=flag_values)
  flags.DEFINE_enum(
      'compression', 'auto', ['auto', 'none', 'gzip'],
      "TFRecord compression; 'auto' means gzip for names ending in .gz.",
      flag_values=flag_values)


class InspectError(Exception):
  """The records cannot be read or are inconsistent."""


def _compression_type(path: str, compression: str) -> str:
  if compression == 'auto':
    return tfrecord_schema.compression_of(path)
  return 'GZIP' if compression == 'gzip' else ''


def _short_message(error: Exception) -> str:
  """The error's message without TF's function-node and op decorations."""
  if isinstance(error, UnicodeDecodeError):
    return 'not a valid tf.train.Example'
  message = re.sub(r'\{\{[^}]*\}\}', '', error.message)
  message = re.sub(r'\[Op:[^\]]*\].*', '', message, flags=re.DOTALL)
  return ' '.join(message.split())


def _summary_fields(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Parses one record, keeping only what the summary needs (not audio)."""
  parsed = tfrecord_schema.parse_example(serialized)
  parsed['audio_length'] = tf.size(parsed.pop('audio'), out_type=tf.int64)
  return parsed


def _read_file(path: str, compression: str) -> List[Dict[str, object]]:
  """Parses every record of one file into plain Python values.

  Args:
    path: TFRecord file.
    compression: 'auto', 'none' or 'gzip'.

  Returns:
    One dict per record.

  Raises:
    InspectError: a record is corrupt, does not parse or is inconsistent.
  """
  dataset = tf.data.TFRecordDataset(
      path, compression_type=_compression_type(path, compression))
  # Order is kept, so the number of records seen so far is the index of the
  # one that failed.
  dataset = dataset.map(_summary_fields, num_parallel_calls=tf.data.AUTOTUNE)
  records = []
  try:
    for parsed in dataset.as_numpy_iterator():
      records.append(parsed)
  # TF raises UnicodeDecodeError instead of an OpError when its message
  # quotes the record's non-UTF-8 bytes.
  except (tf.errors.OpError, UnicodeDecodeError) as error:
    raise InspectError(f'{path}: record {len(records)} cannot be read or '
                       f'parsed: {_short_message(error)}') from None
  result = []
  for index, parsed in enumerate(records):
    num_samples = int(parsed[tfrecord_schema.NUM_SAMPLES])
    if num_samples != int(parsed['audio_length']):
      raise InspectError(
          f'{path}: record {index}: num_samples={num_samples} but the audio '
          f'holds {int(parsed["audio_length"])} samples')
    sample_rate = int(parsed[tfrecord_schema.AUDIO_SAMPLE_RATE])
    if sample_rate != tfrecord_schema.SAMPLE_RATE:
      raise InspectError(f'{path}: record {index}: sample rate {sample_rate},'
                         f' expected {tfrecord_schema.SAMPLE_RATE}')
    result.append({
        'utterance_id': parsed[tfrecord_schema.UTTERANCE_ID].decode('utf-8'),
        'speaker': parsed[tfrecord_schema.SPEAKER].decode('utf-8'),
        'seconds': num_samples / sample_rate,
        'transcript': parsed[tfrecord_schema.TRANSCRIPT].decode('utf-8'),
        'hypothesis':
            parsed[tfrecord_schema.PSEUDO_HYPOTHESIS].decode('utf-8'),
    })
  return result


def inspect_records(pattern: str, compression: str = 'auto',
                    num_examples: int = 3) -> dict:
  """Reads all records matching `pattern` and summarizes them.

  Args:
    pattern: file glob (anything tf.io.gfile.glob accepts).
    compression: 'auto' (gzip when the name ends in .gz), 'none' or 'gzip'.
    num_examples: how many records to return under 'examples'.

  Returns:
    Dict with files, records, labeled, unlabeled, pseudo_labeled,
    duplicate_ids (records whose id an earlier record already has),
    repeated_ids (the first few such ids, each with the names of the files
    holding it, once per record), total_hours, duration_s (min/mean/max),
    histogram (list of (low_s, high_s, count)), transcript_characters
    (sorted string) and examples (dicts with utterance_id, speaker, seconds,
    transcript, hypothesis).

  Raises:
    InspectError: no file matches, or a record is unreadable/inconsistent.
  """
  files = sorted(tf.io.gfile.glob(pattern))
  if not files:
    raise InspectError(f'no files match {pattern!r}')
  records = []
  files_by_id = collections.defaultdict(list)
  for path in files:
    for record in _read_file(path, compression):
      records.append(record)
      files_by_id[record['utterance_id']].append(os.path.basename(path))
  durations = np.array([record['seconds'] for record in records], np.float64)
  repeated = [{'utterance_id': utterance_id, 'files': id_files}
              for utterance_id, id_files in files_by_id.items()
              if len(id_files) > 1]
  characters = set()
  for record in records:
    characters.update(record['transcript'])
  summary = {
      'files': len(files),
      'records': len(records),
      'labeled': sum(1 for r in records if r['transcript']),
      'unlabeled': sum(1 for r in records if not r['transcript']),
      'pseudo_labeled': sum(1 for r in records if r['hypothesis']),
      'duplicate_ids': len(records) - len(files_by_id),
      'repeated_ids': repeated[:_DUPLICATES_SHOWN],
      'total_hours': float(durations.sum()) / 3600,
      'duration_s': None,
      'histogram': [],
      'transcript_characters': ''.join(sorted(characters)),
      'examples': records[:num_examples],
  }
  if records:
    summary['duration_s'] = {'min': float(durations.min()),
                             'mean': float(durations.mean()),
                             'max': float(durations.max())}
    counts, edges = np.histogram(durations, bins=_HISTOGRAM_BINS)
    summary['histogram'] = [(float(low), float(high), int(count)) for
                            low, high, count in zip(edges, edges[1:], counts)]
  return summary


def format_summary(summary: dict) -> str:
  """Human-readable report of `inspect_records` output."""
  lines = [
      f'files:           {summary["files"]}',
      f'records:         {summary["records"]} (labeled {summary["labeled"]}, '
      f'unlabeled {summary["unlabeled"]}, pseudo-labeled '
      f'{summary["pseudo_labeled"]})',
      f'duplicate ids:   {summary["duplicate_ids"]}',
      f'total hours:     {summary["total_hours"]:.4f}',
  ]
  if summary['duration_s']:
    durations = summary['duration_s']
    lines.append(f'duration (s):    min {durations["min"]:.2f}  mean '
                 f'{durations["mean"]:.2f}  max {durations["max"]:.2f}')
    largest = max(count for _, _, count in summary['histogram'])
    for low, high, count in summary['histogram']:
      bar = '#' * round(_HISTOGRAM_WIDTH * count / largest) if largest else ''
      lines.append(f'  {low:7.2f}-{high:7.2f} s {count:8d} {bar}')
  lines.append(f'characters:      {summary["transcript_characters"]!r}')
  for example in summary['examples']:
    text = example['transcript'] or f'[pseudo] {example["hypothesis"]}'
    lines.append(f'  {example["utterance_id"]} speaker={example["speaker"]!r}'
                 f' {example["seconds"]:.2f} s: {text}')
  return '\n'.join(lines)


def duplicate_warning(summary: dict) -> Optional[str]:
  """The warning line for repeated utterance ids, or None if there are none."""
  if not summary['duplicate_ids']:
    return None
  examples = '; '.join(
      f'{repeated["utterance_id"]!r} in {", ".join(repeated["files"])}'
      for repeated in summary['repeated_ids'])
  return (f'warning: {summary["duplicate_ids"]} records repeat an earlier '
          f'record\'s utterance id (e.g. {examples}); training would see '
          'them more than once. Does the pattern match two shard sets, or '
          'the leftovers of a killed run?')


def main(argv: List[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> Optional[int]:
  """Prints the summary of the records matching argv[1]; returns exit code."""
  if len(argv) != 2:
    print('usage: python -m tfrecords_tools.inspect PATTERN [--num_examples=N]'
          ' [--compression=auto|none|gzip]', file=sys.stderr)
    return 1
  try:
    summary = inspect_records(argv[1], flag_values.compression,
                              flag_values.num_examples)
  except InspectError as error:
    print(f'inspect: error: {error}', file=sys.stderr)
    return 1
  print(format_summary(summary))
  warning = duplicate_warning(summary)
  if warning:
    print(f'inspect: {warning}', file=sys.stderr)
  return 0


if __name__ == '__main__':
  define_flags()
  app.run(main)
