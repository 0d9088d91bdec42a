"""Tests for tfrecords_tools.inspect."""

import contextlib
import io
import os

from absl import flags
import numpy as np
import tensorflow as tf

from asr_kd.dataloaders import tfrecord_schema
from tfrecords_tools import inspect as inspect_lib


def _write_records(path, examples, compression=None):
  with tf.io.TFRecordWriter(path, options=compression) as writer:
    for example in examples:
      writer.write(example if isinstance(example, bytes)
                   else example.SerializeToString())


class InspectRecordsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    rng = np.random.default_rng(11)
    self.lengths = rng.integers(1600, 48000, size=9)
    self.examples = []
    for index, length in enumerate(self.lengths):
      samples = rng.integers(-1000, 1000, size=length).astype(np.int16)
      kind = index % 3
      self.examples.append(tfrecord_schema.make_example(
          f'utt{index}', samples,
          transcript=f'hello {index}!' if kind == 0 else '',
          speaker=f'spk{index % 2}',
          pseudo_label=({'hypothesis': 'ÉCOLE', 'confidence': 0.9,
                         'source_model': 'teacher'} if kind == 1 else None)))
    # Split over a plain and a gzip file: auto-detection must read both.
    _write_records(os.path.join(self.dir, 'data-00000-of-00002.tfrecord'),
                   self.examples[:4])
    _write_records(os.path.join(self.dir, 'data-00001-of-00002.tfrecord.gz'),
                   self.examples[4:], compression='GZIP')
    self.pattern = os.path.join(self.dir, 'data-*')

  def test_summary_matches_numpy_reference(self):
    summary = inspect_lib.inspect_records(self.pattern, num_examples=2)

    seconds = self.lengths.astype(np.float64) / 16000
    self.assertEqual(summary['files'], 2)
    self.assertEqual(summary['records'], 9)
    self.assertEqual(summary['labeled'], 3)
    self.assertEqual(summary['unlabeled'], 6)
    self.assertEqual(summary['pseudo_labeled'], 3)
    self.assertEqual(summary['duplicate_ids'], 0)
    self.assertAllClose(summary['total_hours'], seconds.sum() / 3600)
    self.assertAllClose(
        [summary['duration_s'][key] for key in ('min', 'mean', 'max')],
        [seconds.min(), seconds.mean(), seconds.max()])
    histogram = summary['histogram']
    self.assertEqual(sum(count for _, _, count in histogram), 9)
    self.assertAllClose([histogram[0][0], histogram[-1][1]],
                        [seconds.min(), seconds.max()])
    for low, high, count in histogram[:-1]:  # Last bin includes its edge.
      self.assertEqual(count, np.sum((seconds >= low) & (seconds < high)))
    expected_characters = sorted(set(''.join(
        f'hello {index}!' for index in range(0, 9, 3))))
    self.assertEqual(summary['transcript_characters'],
                     ''.join(expected_characters))
    self.assertEqual([example['utterance_id'] for example
                      in summary['examples']], ['utt0', 'utt1'])
    self.assertEqual(summary['examples'][1]['hypothesis'], 'ÉCOLE')
    self.assertAllClose(summary['examples'][0]['seconds'], seconds[0])

    text = inspect_lib.format_summary(summary)
    self.assertIn('records:         9 (labeled 3, unlabeled 6, '
                  'pseudo-labeled 3)', text)
    self.assertIn('utt1', text)

  def test_duplicate_ids_are_counted(self):
    path = os.path.join(self.dir, 'dup.tfrecord')
    _write_records(path, [self.examples[0], self.examples[0],
                          self.examples[0]])
    self.assertEqual(inspect_lib.inspect_records(path)['duplicate_ids'], 2)

  def test_inconsistent_num_samples_names_file_and_index(self):
    broken = tf.train.Example()
    broken.CopyFrom(self.examples[1])
    broken.features.feature[tfrecord_schema.NUM_SAMPLES].int64_list.value[
        0] += 1
    path = os.path.join(self.dir, 'broken.tfrecord')
    _write_records(path, [self.examples[0], broken])
    with self.assertRaisesRegex(inspect_lib.InspectError,
                                f'{path}: record 1: num_samples='):
      inspect_lib.inspect_records(path)

  def test_unparseable_record_names_file_and_index(self):
    path = os.path.join(self.dir, 'junk.tfrecord')
    _write_records(path, [self.examples[0], self.examples[1],
                          b'\xff\x00 not a tf.train.Example'])
    with self.assertRaisesRegex(inspect_lib.InspectError,
                                f'{path}: record 2 cannot be read or parsed'):
      inspect_lib.inspect_records(path)

  def test_truncated_gzip_file_fails(self):
    path = os.path.join(self.dir, 'data-00001-of-00002.tfrecord.gz')
    with open(path, 'rb') as gzip_file:
      data = gzip_file.read()
    cut_path = os.path.join(self.dir, 'cut.tfrecord.gz')
    with open(cut_path, 'wb') as cut_file:
      cut_file.write(data[:len(data) // 2])
    with self.assertRaisesRegex(inspect_lib.InspectError,
                                f'{cut_path}: record \\d+ cannot be read'):
      inspect_lib.inspect_records(cut_path)

  def test_forced_compression_overrides_extension(self):
    with self.assertRaises(inspect_lib.InspectError):
      inspect_lib.inspect_records(
          os.path.join(self.dir, 'data-00001-of-00002.tfrecord.gz'),
          compression='none')

  def test_main_exit_codes(self):
    flag_values = flags.FlagValues()
    inspect_lib.define_flags(flag_values)
    argv = flag_values(['inspect', '--num_examples=1', self.pattern])
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
      self.assertEqual(inspect_lib.main(argv, flag_values), 0)
      self.assertEqual(inspect_lib.main(
          ['inspect', os.path.join(self.dir, 'none-*')], flag_values), 1)
    self.assertIn('files:           2', stdout.getvalue())
    self.assertIn('utt0', stdout.getvalue())
    self.assertNotIn('utt1', stdout.getvalue())  # --num_examples=1.
    self.assertIn('inspect: error: no files match', stderr.getvalue())


if __name__ == '__main__':
  tf.test.main()
