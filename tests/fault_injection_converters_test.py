"""Fault injection for the converters: killed runs, reruns, bad audio and text.

Each test makes the fault for real (a SIGKILLed conversion, the part files
a killed run leaves, float WAVs holding NaN, a transcript line that is not
UTF-8) and checks what a user would see afterwards: what the documented
globs read, the reject reasons with their counts, the exit line.
"""

import contextlib
import glob
import io
import json
import os
import signal
import subprocess
import sys
import time
from unittest import mock

from absl import flags
import numpy as np
import soundfile
import tensorflow as tf

from asr_kd.corpus_io import sharded_sink
from asr_kd.corpus_io import staged_output
from asr_kd.dataloaders import audio_decoding
from asr_kd.dataloaders import tfrecord_schema
from tfrecords_tools import convert
from tfrecords_tools import inspect as inspect_lib

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# In-process pipelines: one worker, no subprocesses, so tests stay fast.
_IN_MEMORY = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
# The glob the shipped training configs read (configs/*.yaml).
_TRAINING_GLOB = 'train-*.tfrecord*'


def _write_librispeech(root, num_utterances, sample_rate=16000, channels=1,
                       seconds=0.25, seed=0):
  """One chapter of noise utterances; returns their ids in order."""
  chapter = os.path.join(root, '19', '198')
  os.makedirs(chapter, exist_ok=True)
  rng = np.random.default_rng(seed)
  num_frames = int(seconds * sample_rate)
  shape = (num_frames,) if channels == 1 else (num_frames, channels)
  ids = [f'19-198-{index:04d}' for index in range(num_utterances)]
  for utterance_id in ids:
    soundfile.write(os.path.join(chapter, utterance_id + '.flac'),
                    (rng.standard_normal(shape) * 3000).astype(np.int16),
                    sample_rate, subtype='PCM_16')
  with open(os.path.join(chapter, '19-198.trans.txt'), 'w') as transcript:
    transcript.writelines(f'{utterance_id} WORDS {index}\n'
                          for index, utterance_id in enumerate(ids))
  return ids


def _record_ids(pattern):
  """Utterance ids of every record in the files `pattern` matches."""
  ids = []
  for path in sorted(tf.io.gfile.glob(pattern)):
    dataset = tf.data.TFRecordDataset(
        path, compression_type=tfrecord_schema.compression_of(path))
    ids.extend(tfrecord_schema.parse_example(record)[
        tfrecord_schema.UTTERANCE_ID].numpy().decode() for record in dataset)
  return ids


def _files_below(directory):
  return sorted(os.path.relpath(os.path.join(folder, name), directory)
                for folder, _, names in os.walk(directory) for name in names)


def _rejects(path):
  """Rejects file as [(path, reason, detail)], after checking the header."""
  with open(path, encoding='utf-8') as rejects_file:
    lines = rejects_file.read().splitlines()
  assert lines[0] == 'path\treason\tdetail', lines[0]
  return sorted(tuple(line.split('\t')) for line in lines[1:])


def _convert(root, output_dir, num_shards=2, compression='none',
             corpus_format='librispeech'):
  return convert.run_conversion(
      root, corpus_format, output_dir, output_prefix='train',
      num_shards=num_shards, compression=compression, max_duration_s=5.0,
      beam_args=_IN_MEMORY)


class InterruptedAndRepeatedRunsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    self.output_dir = os.path.join(self.dir, 'records')

  def assert_one_clean_set(self, ids, num_shards, suffix='.tfrecord'):
    """The training glob reads each utterance once, from one shard set."""
    self.assertCountEqual(
        [os.path.basename(path) for path in
         glob.glob(os.path.join(self.output_dir, _TRAINING_GLOB))],
        [f'train-{index:05d}-of-{num_shards:05d}{suffix}'
         for index in range(num_shards)])
    self.assertCountEqual(
        _record_ids(os.path.join(self.output_dir, _TRAINING_GLOB)), ids)
    leftovers = [name for name in _files_below(self.output_dir)
                 if '.part-' in name or '.incomplete-' in name
                 or 'staging' in name]
    self.assertEqual(leftovers, [])

  def test_sigkilled_conversion_then_rerun(self):
    # 44.1 kHz stereo: resampling keeps the run writing part files long
    # enough for the poll below to see one.
    root = os.path.join(self.dir, 'corpus')
    ids = _write_librispeech(root, 60, sample_rate=44100, channels=2,
                             seconds=1.0)
    process = subprocess.Popen(
        [sys.executable, '-m', 'tfrecords_tools.convert', f'--input={root}',
         '--format=librispeech', f'--output_dir={self.output_dir}',
         '--output_prefix=train', '--num_shards=4', *_IN_MEMORY],
        cwd=_REPO_ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    parts = []
    deadline = time.time() + 240
    while not parts and process.poll() is None and time.time() < deadline:
      if os.path.isdir(self.output_dir):
        parts = [name for name in _files_below(self.output_dir)
                 if '.part-' in name]
      time.sleep(0.002)
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    self.assertNotEmpty(parts, 'the run ended before it wrote a part file')
    self.assertEqual(process.returncode, -signal.SIGKILL)
    # Mid-write, nothing the globs match exists yet: only staged files.
    self.assertNotEmpty(_files_below(self.output_dir))
    self.assertEqual(glob.glob(os.path.join(self.output_dir, '*.tfrecord*')),
                     [])
    self.assertFalse(os.path.exists(
        os.path.join(self.output_dir, 'train.summary.json')))

    summary = _convert(root, self.output_dir, num_shards=2)

    self.assert_one_clean_set(ids, num_shards=2)
    self.assertEqual(summary['written'], len(ids))
    self.assertTrue(set(summary['removed_files']) >= set(parts),
                    summary['removed_files'])

  def test_rerun_removes_parts_a_killed_run_left_beside_the_shards(self):
    # Before runs were staged, a killed run left its part files (and
    # temporary shards) in the output folder itself, where the training
    # glob read them next to the rerun's shards.
    root = os.path.join(self.dir, 'corpus')
    ids = _write_librispeech(root, 12)
    os.makedirs(self.output_dir)
    shard_prefix = os.path.join(self.output_dir, 'train')
    write_parts = sharded_sink.WriteBundlePartsFn(shard_prefix, '.tfrecord',
                                                  2)
    write_parts.start_bundle()
    for utterance_id in ids:
      example = tfrecord_schema.make_example(
          utterance_id, np.zeros(1600, np.int16), transcript='OLD')
      write_parts.process((utterance_id, example.SerializeToString(), 1600))
    list(write_parts.finish_bundle())
    incomplete = (sharded_sink.shard_path(shard_prefix, 0, 2, '.tfrecord')
                  + '.incomplete-0123abcd')
    tf.io.gfile.copy(glob.glob(shard_prefix + '*.part-*')[0], incomplete)
    left = sorted(os.listdir(self.output_dir))
    self.assertLen(left, 3)
    self.assertLen(_record_ids(os.path.join(self.output_dir,
                                            _TRAINING_GLOB)),
                   len(ids) + len(_record_ids(incomplete)))

    summary = _convert(root, self.output_dir, num_shards=2)

    self.assert_one_clean_set(ids, num_shards=2)
    self.assertEqual(summary['removed_files'], left)

  def test_commit_cut_short_then_rerun(self):
    root = os.path.join(self.dir, 'corpus')
    ids = _write_librispeech(root, 12)
    _convert(root, self.output_dir, num_shards=3)
    rename, commit = tf.io.gfile.rename, staged_output.StagedOutput.commit
    renames = []

    def rename_then_die(*args, **kwargs):
      if renames:  # The commit's second move never happens.
        raise OSError('killed')
      renames.append(args)
      rename(*args, **kwargs)

    def commit_cut_short(output, summary):
      with mock.patch.object(tf.io.gfile, 'rename', rename_then_die):
        return commit(output, summary)

    with mock.patch.object(staged_output.StagedOutput, 'commit',
                           commit_cut_short), self.assertRaises(OSError):
      _convert(root, self.output_dir, num_shards=2)
    # The earlier set is gone, one new shard is in place, no summary says
    # the folder holds a finished run.
    self.assertCountEqual(
        os.listdir(self.output_dir),
        ['train-00000-of-00002.tfrecord', '.train.staging'])

    _convert(root, self.output_dir, num_shards=2)

    self.assert_one_clean_set(ids, num_shards=2)
    self.assertTrue(os.path.exists(
        os.path.join(self.output_dir, 'train.summary.json')))

  def test_rerun_with_another_shard_count_and_compression(self):
    root = os.path.join(self.dir, 'corpus')
    ids = _write_librispeech(root, 12)
    other_split = os.path.join(self.output_dir, 'dev-00000-of-00001.tfrecord')
    first = _convert(root, self.output_dir, num_shards=3)
    tf.io.gfile.copy(os.path.join(self.output_dir,
                                  'train-00000-of-00003.tfrecord'),
                     other_split)
    self.assertEqual(first['removed_files'], [])

    summary = _convert(root, self.output_dir, num_shards=2,
                       compression='gzip')

    self.assert_one_clean_set(ids, num_shards=2, suffix='.tfrecord.gz')
    self.assertEqual(summary['output_files'], [
        'train-00000-of-00002.tfrecord.gz', 'train-00001-of-00002.tfrecord.gz',
        'train.rejects.tsv'])
    self.assertEqual(summary['removed_files'], [
        f'train-0000{index}-of-00003.tfrecord' for index in range(3)])
    self.assertTrue(os.path.exists(other_split))  # Another prefix: kept.
    with open(os.path.join(self.output_dir, 'train.summary.json')) as file:
      self.assertEqual(json.load(file), summary)
    self.assertCountEqual(
        os.listdir(self.output_dir),
        summary['output_files'] + ['train.summary.json',
                                   os.path.basename(other_split)])


class InspectDuplicatesTest(tf.test.TestCase):

  def run_inspect(self, pattern):
    flag_values = flags.FlagValues()
    inspect_lib.define_flags(flag_values)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
      exit_code = inspect_lib.main(
          flag_values(['inspect', '--num_examples=0', pattern]), flag_values)
    return exit_code, stderr.getvalue()

  def test_two_shard_sets_under_one_glob_are_named(self):
    directory = self.get_temp_dir()
    examples = [tfrecord_schema.make_example(
        f'utt{index}', np.zeros(1600, np.int16), transcript='A')
                for index in range(3)]
    # Two runs' shard sets of the same utterances, as an unstaged rerun
    # with another --num_shards left them.
    for name, chosen in (('train-00000-of-00001.tfrecord', examples),
                         ('train-00000-of-00002.tfrecord', examples[:2]),
                         ('train-00001-of-00002.tfrecord', examples[2:])):
      with tf.io.TFRecordWriter(os.path.join(directory, name)) as writer:
        for example in chosen:
          writer.write(example.SerializeToString())

    exit_code, stderr = self.run_inspect(os.path.join(directory, 'train-*'))

    self.assertEqual(exit_code, 0)
    self.assertStartsWith(stderr, 'inspect: warning: 3 records repeat an '
                          "earlier record's utterance id (e.g. 'utt0' in "
                          'train-00000-of-00001.tfrecord, '
                          'train-00000-of-00002.tfrecord;')
    self.assertLen(stderr.strip().splitlines(), 1)
    exit_code, stderr = self.run_inspect(
        os.path.join(directory, 'train-*-of-00002.tfrecord'))
    self.assertEqual((exit_code, stderr), (0, ''))


class BadAudioTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    self.root = os.path.join(self.dir, 'corpus')
    self.chapter = os.path.join(self.root, '19', '198')
    os.makedirs(self.chapter)

  def write_float_wav(self, utterance_id, samples, subtype='FLOAT'):
    path = os.path.join(self.chapter, utterance_id + '.wav')
    soundfile.write(path, samples, 16000, subtype=subtype)
    return path

  def test_non_finite_and_beyond_full_scale_floats_are_rejected(self):
    rng = np.random.default_rng(4)
    quiet = (rng.standard_normal(8000) * 0.1).clip(-1, 1)
    full_scale = np.resize([1.0, -1.0], 8000)  # Exactly full scale: kept.
    with_nan, with_inf, int16_scaled = quiet.copy(), quiet.copy(), quiet * 3e4
    with_nan[100] = np.nan
    with_inf[[5, 6]] = [np.inf, -np.inf]
    paths = {
        '19-198-0000': self.write_float_wav('19-198-0000', quiet),
        '19-198-0001': self.write_float_wav('19-198-0001', full_scale,
                                            'DOUBLE'),
        '19-198-0002': self.write_float_wav('19-198-0002', with_nan),
        '19-198-0003': self.write_float_wav('19-198-0003', with_inf, 'DOUBLE'),
        '19-198-0004': self.write_float_wav('19-198-0004', int16_scaled),
    }
    with open(os.path.join(self.chapter, '19-198.trans.txt'), 'w') as file:
      file.writelines(f'{utterance_id} TEXT\n' for utterance_id in paths)
    output_dir = os.path.join(self.dir, 'records')

    summary = _convert(self.root, output_dir, num_shards=1)

    self.assertEqual(summary['rejected_by_reason'],
                     {'non_finite_audio': 2, 'beyond_full_scale': 1})
    self.assertEqual((summary['written'], summary['rejected']), (2, 3))
    self.assertTrue(summary['reconciled'])
    rejects = _rejects(os.path.join(output_dir, 'train.rejects.tsv'))
    self.assertEqual([(path, reason) for path, reason, _ in rejects], [
        (paths['19-198-0002'], 'non_finite_audio'),
        (paths['19-198-0003'], 'non_finite_audio'),
        (paths['19-198-0004'], 'beyond_full_scale')])
    self.assertEqual(rejects[0][2], '1 of 8000 samples are NaN or infinite')
    self.assertEqual(rejects[1][2], '2 of 8000 samples are NaN or infinite')
    self.assertStartsWith(rejects[2][2], 'FLOAT samples peak at ')
    written = {}
    for record in tf.data.TFRecordDataset(
        glob.glob(os.path.join(output_dir, _TRAINING_GLOB))):
      parsed = tfrecord_schema.parse_example(record)
      written[parsed[tfrecord_schema.UTTERANCE_ID].numpy().decode()] = (
          parsed['audio'].numpy())
    self.assertAllEqual(
        written['19-198-0000'],
        np.round(quiet.astype(np.float32) * 32768).astype(np.int16))
    self.assertAllEqual(written['19-198-0001'][:4], [32767, -32768] * 2)

  def test_lossy_codec_overshoot_is_clipped_not_rejected(self):
    # Vorbis rings past full scale on a full-scale square wave; every
    # decoder clips that, so it is no reason to reject the file.
    path = os.path.join(self.dir, 'square.ogg')
    soundfile.write(path, np.resize([0.999] * 20 + [-0.999] * 20, 16000),
                    16000, format='OGG', subtype='VORBIS')
    samples, _ = audio_decoding.read_audio(path)
    self.assertGreater(np.max(np.abs(samples)), 1.0)
    self.assertEqual(audio_decoding.load_mono_16k(path).shape, (16000,))


class InvalidUtf8Test(tf.test.TestCase):

  def test_only_the_bad_transcript_line_is_rejected(self):
    root = os.path.join(self.get_temp_dir(), 'corpus')
    ids = _write_librispeech(root, 4)
    transcript_path = os.path.join(root, '19', '198', '19-198.trans.txt')
    with open(transcript_path, 'rb') as transcript:
      lines = transcript.read().splitlines(keepends=True)
    lines[2] = b'19-198-0002 CAF\xc3 AU LAIT\n'  # Cut UTF-8 sequence.
    with open(transcript_path, 'wb') as transcript:
      transcript.writelines(lines)
    output_dir = os.path.join(self.get_temp_dir(), 'records')

    summary = _convert(root, output_dir)

    self.assertEqual(summary['rejected_by_reason'], {'invalid_utf8': 1})
    self.assertEqual((summary['inputs'], summary['written']), (4, 3))
    self.assertEqual(_rejects(os.path.join(output_dir, 'train.rejects.tsv')), [
        (f'{transcript_path}:3', 'invalid_utf8',
         'line for 19-198-0002: invalid UTF-8 (byte 0xc3 at column 16)')])
    self.assertCountEqual(
        _record_ids(os.path.join(output_dir, _TRAINING_GLOB)),
        [ids[0], ids[1], ids[3]])

  def test_only_the_bad_manifest_line_is_rejected(self):
    root = os.path.join(self.get_temp_dir(), 'corpus')
    ids = _write_librispeech(root, 3)
    entries = [json.dumps({'audio_filepath': f'19/198/{utterance_id}.flac',
                           'text': 'WORDS'}).encode() for utterance_id in ids]
    entries.insert(1, b'{"audio_filepath": "x.flac", "text": "\xff"}')
    manifest = os.path.join(root, 'train.jsonl')
    with open(manifest, 'wb') as manifest_file:
      manifest_file.write(b'\n'.join(entries) + b'\n')
    output_dir = os.path.join(self.get_temp_dir(), 'records')

    summary = _convert(manifest, output_dir, corpus_format='manifest')

    self.assertEqual((summary['inputs'], summary['written']), (4, 3))
    self.assertEqual(_rejects(os.path.join(output_dir, 'train.rejects.tsv')), [
        (f'{manifest}:2', 'invalid_utf8',
         'invalid UTF-8 (byte 0xff at column 39)')])


class FlagsThatCannotBeRightTest(tf.test.TestCase):

  def test_each_gets_one_line_and_writes_nothing(self):
    output_dir = os.path.join(self.get_temp_dir(), 'never')
    cases = [
        ('--max_duration_s=0', '--max_duration_s=0 must be > 0'),
        ('--max_duration_s=-3', '--max_duration_s=-3 must be > 0'),
        ('--max_duration_s=nan', '--max_duration_s=nan must be > 0'),
        ('--min_duration_s=-1', '--min_duration_s=-1 must be >= 0 and below '
         '--max_duration_s=35'),
        ('--min_duration_s=40', '--min_duration_s=40 must be >= 0 and below '
         '--max_duration_s=35'),
        ('--output_prefix=a/b', "--output_prefix='a/b' must be a non-empty "
         'file name'),
        ('--output_prefix=', "--output_prefix='' must be a non-empty"),
        ('--num_shards=0', 'flag --num_shards=0: 0 is not a positive integer'),
    ]
    for flag, message in cases:
      flag_values = flags.FlagValues()
      convert.define_flags(flag_values)
      stderr = io.StringIO()
      with contextlib.redirect_stderr(stderr), \
          contextlib.redirect_stdout(io.StringIO()), \
          self.assertRaises(SystemExit) as exit_request:
        argv = convert.parse_flags(
            ['convert', f'--input={self.get_temp_dir()}',
             '--format=audio_dir', f'--output_dir={output_dir}', flag],
            flag_values)
        convert.main(argv, flag_values)
      self.assertEqual(exit_request.exception.code, 1, flag)
      self.assertStartsWith(stderr.getvalue(), 'convert: error: ' + message)
      self.assertLen(stderr.getvalue().strip().splitlines(), 1, flag)
    self.assertFalse(os.path.exists(output_dir))


if __name__ == '__main__':
  tf.test.main()
