"""Tests for asr_kd.corpus_io.corpus_readers and tfrecords_tools.convert."""

import contextlib
import glob
import io
import json
import os
import subprocess
import sys

from absl import flags
import numpy as np
import soundfile
import tensorflow as tf

from asr_kd.corpus_io import beam_pipeline
from asr_kd.corpus_io import corpus_readers
from asr_kd.corpus_io import sharded_sink
from asr_kd.dataloaders import tfrecord_schema
from tfrecords_tools import convert

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# In-process pipelines: one worker, no subprocesses, so tests stay fast.
_IN_MEMORY = ['--direct_running_mode=in_memory', '--direct_num_workers=1']


def _write_audio(path, samples, sample_rate, subtype='PCM_16'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, samples, sample_rate, subtype=subtype)
  return path


def _write_bytes(path, data):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as output:
    output.write(data)
  return path


def _noise(rng, num_frames, channels=1):
  shape = (num_frames,) if channels == 1 else (num_frames, channels)
  return (rng.standard_normal(shape) * 3000).astype(np.int16)


def _read_records(pattern, compression_type=''):
  """All records under `pattern` as {utterance_id: parsed numpy dict}."""
  records = {}
  for path in sorted(glob.glob(pattern)):
    dataset = tf.data.TFRecordDataset(path, compression_type=compression_type)
    for serialized in dataset:
      parsed = tfrecord_schema.parse_example(serialized)
      parsed = {key: value.numpy() for key, value in parsed.items()}
      records[parsed[tfrecord_schema.UTTERANCE_ID].decode()] = parsed
  return records


def _read_rejects(path):
  """Rejects TSV as {path: reason}, after checking the header."""
  with open(path, encoding='utf-8') as rejects_file:
    lines = rejects_file.read().splitlines()
  assert lines[0] == 'path\treason\tdetail', lines[0]
  return {line.split('\t')[0]: line.split('\t')[1] for line in lines[1:]}


def _make_librispeech_tree(root, rng):
  """A LibriSpeech-layout tree with good files and one of each bad case.

  Returns:
    (expected_good, expected_rejects): {utterance_id: (samples or None,
    num_16k_samples, transcript, speaker)} and {path: reason}.
  """
  chapter = os.path.join(root, '19', '198')
  other_chapter = os.path.join(root, '27', '124')
  good = {}
  rejects = {}
  lines = {chapter: [], other_chapter: []}

  mono = _noise(rng, 16000)
  _write_audio(os.path.join(chapter, '19-198-0000.flac'), mono, 16000)
  lines[chapter].append('19-198-0000 HELLO WORLD')
  good['19-198-0000'] = (mono, 16000, 'HELLO WORLD', '19')

  stereo = _noise(rng, 44100, channels=2)
  _write_audio(os.path.join(chapter, '19-198-0001.flac'), stereo, 44100)
  lines[chapter].append("19-198-0001 IT'S STEREO")
  good['19-198-0001'] = (None, 16000, "IT'S STEREO", '19')

  narrowband = _noise(rng, 12000)
  _write_audio(os.path.join(other_chapter, '27-124-0000.flac'), narrowband,
               8000)
  lines[other_chapter].append('27-124-0000 EIGHT KILOHERTZ')
  good['27-124-0000'] = (None, 24000, 'EIGHT KILOHERTZ', '27')

  def bad(utterance_id, reason, data=None, line=True, text='SOME TEXT'):
    path = os.path.join(chapter, utterance_id + '.flac')
    if data is not None:
      _write_bytes(path, data)
    if line:
      lines[chapter].append(f'{utterance_id} {text}'.rstrip())
    rejects[path] = reason

  bad('19-198-0002', 'corrupt_audio', data=b'\x00garbage' * 64)
  whole = os.path.join(root, 'whole.flac')
  _write_audio(whole, _noise(rng, 32000), 16000)
  with open(whole, 'rb') as flac_file:
    flac_bytes = flac_file.read()
  os.remove(whole)
  bad('19-198-0003', 'truncated_audio', data=flac_bytes[:len(flac_bytes) // 2])
  bad('19-198-0004', 'empty_file', data=b'')
  bad('19-198-0005', 'missing_audio')  # Transcript line, no audio file.
  bad('19-198-0006', 'missing_transcript', data=flac_bytes, line=False)
  bad('19-198-0007', 'empty_transcript', data=flac_bytes, text='')
  _write_audio(os.path.join(chapter, '19-198-0008.flac'), _noise(rng, 64000),
               16000)
  bad('19-198-0008', 'too_long')  # 4 s against --max_duration_s=3.
  _write_audio(os.path.join(chapter, '19-198-0009.flac'), _noise(rng, 800),
               16000)
  bad('19-198-0009', 'too_short')  # 0.05 s against --min_duration_s=0.1.

  for directory, chapter_lines in lines.items():
    speaker, chapter_id = directory.split(os.sep)[-2:]
    with open(os.path.join(directory, f'{speaker}-{chapter_id}.trans.txt'),
              'w', encoding='utf-8') as transcript_file:
      transcript_file.write('\n'.join(chapter_lines) + '\n')
  return good, rejects


class CorpusReadersTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    self.rng = np.random.default_rng(42)

  def test_librispeech_reader_reasons(self):
    root = os.path.join(self.dir, 'ls')
    good, rejects = _make_librispeech_tree(root, self.rng)
    reader_reasons = ('missing_audio', 'missing_transcript',
                      'empty_transcript')
    utterances = corpus_readers.read_librispeech(root)
    accepted = {u.utterance_id: (u.transcript, u.speaker)
                for u in utterances if not u.reject_reason}
    # Files only the decoder can judge are passed on by the reader.
    decoder_judged = {
        os.path.basename(path)[:-len('.flac')]: ('SOME TEXT', '19')
        for path, reason in rejects.items() if reason not in reader_reasons}
    self.assertEqual(accepted, {
        **{utterance_id: (text, speaker) for utterance_id,
           (_, _, text, speaker) in good.items()}, **decoder_judged})
    reader_rejects = {u.audio_path: u.reject_reason
                      for u in utterances if u.reject_reason}
    self.assertEqual(reader_rejects, {
        path: reason for path, reason in rejects.items()
        if reason in reader_reasons})

  def test_manifest_reader(self):
    manifest_dir = os.path.join(self.dir, 'manifest')
    outside = os.path.join(self.dir, 'elsewhere', 'abs.wav')
    entries = [
        {'audio_filepath': 'clips/a.wav', 'text': 'alpha', 'speaker': 7},
        {'audio_filepath': outside, 'text': 'beta', 'duration': 1.0},
        {'audio_filepath': 'clips/c.wav', 'text': 'gamma', 'id': 'custom'},
        {'audio_filepath': 'clips/d.wav'},
        {'audio_filepath': 'clips/e.wav', 'text': '   '},
        {'text': 'no audio path'},
        {'audio_filepath': 'clips/a.wav', 'text': 'again'},
    ]
    lines = [json.dumps(entry) for entry in entries] + ['{not json']
    manifest = _write_bytes(os.path.join(manifest_dir, 'm.jsonl'),
                            ('\n'.join(lines) + '\n\n').encode())
    utterances = corpus_readers.read_manifest(manifest)
    summary = [(u.utterance_id, u.audio_path, u.transcript, u.speaker,
                u.reject_reason) for u in utterances]
    clips = os.path.join(manifest_dir, 'clips')
    self.assertEqual(summary, [
        ('clips/a', os.path.join(clips, 'a.wav'), 'alpha', '7', ''),
        (os.path.splitext(outside)[0].lstrip('/'), outside, 'beta', '', ''),
        ('custom', os.path.join(clips, 'c.wav'), 'gamma', '', ''),
        ('clips/d', os.path.join(clips, 'd.wav'), '', '',
         'missing_transcript'),
        ('clips/e', os.path.join(clips, 'e.wav'), '', '', 'empty_transcript'),
        (f'{manifest}:6', f'{manifest}:6', '', '', 'bad_manifest_line'),
        ('clips/a', os.path.join(clips, 'a.wav'), '', '', 'duplicate_id'),
        (f'{manifest}:8', f'{manifest}:8', '', '', 'bad_manifest_line'),
    ])

  def test_audio_dir_reader(self):
    root = os.path.join(self.dir, 'unlabeled')
    for name in ('b/x.wav', 'a.flac', 'b/x.flac', 'notes.txt'):
      _write_bytes(os.path.join(root, name), b'?')
    utterances = corpus_readers.read_audio_dir(root)
    self.assertEqual(
        [(u.utterance_id, os.path.relpath(u.audio_path, root), u.labeled,
          u.reject_reason) for u in utterances],
        [('a', 'a.flac', False, ''), ('b/x', 'b/x.flac', False, ''),
         ('b/x', 'b/x.wav', True, 'duplicate_id')])

  def test_unusable_inputs_raise_corpus_error(self):
    empty_dir = os.path.join(self.dir, 'empty')
    os.makedirs(empty_dir)
    cases = [('librispeech', empty_dir), ('audio_dir', empty_dir),
             ('manifest', empty_dir), ('librispeech', '/no/such/dir'),
             ('rawfile', empty_dir)]
    for corpus_format, path in cases:
      with self.assertRaises(corpus_readers.CorpusError):
        corpus_readers.read_corpus(path, corpus_format)


class ConvertPipelineTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    self.rng = np.random.default_rng(3)

  def test_librispeech_with_every_bad_case(self):
    root = os.path.join(self.dir, 'LibriSpeech', 'dev-tiny')
    good, rejects = _make_librispeech_tree(root, self.rng)
    output_dir = os.path.join(self.dir, 'out')

    summary = convert.run_conversion(
        root, 'librispeech', output_dir, output_prefix='dev', num_shards=3,
        min_duration_s=0.1, max_duration_s=3.0, beam_args=_IN_MEMORY)

    expected_reasons = {}
    for reason in rejects.values():
      expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
    self.assertEqual(summary['inputs'], len(good) + len(rejects))
    self.assertEqual(summary['written'], len(good))
    self.assertEqual(summary['rejected'], len(rejects))
    self.assertEqual(summary['rejected_by_reason'], expected_reasons)
    self.assertTrue(summary['reconciled'])
    total_samples = sum(length for _, length, _, _ in good.values())
    self.assertAllClose(summary['hours_written'], total_samples / 16000 / 3600)
    with open(os.path.join(output_dir, 'dev.summary.json')) as summary_file:
      self.assertEqual(json.load(summary_file)['written'], len(good))
    self.assertEqual(_read_rejects(os.path.join(output_dir,
                                                'dev.rejects.tsv')), rejects)
    self.assertFalse(os.path.exists(os.path.join(output_dir,
                                                 'dev.stats.json')))

    shards = sorted(os.listdir(output_dir))
    self.assertEqual([s for s in shards if s.endswith('.tfrecord')],
                     [f'dev-0000{i}-of-00003.tfrecord' for i in range(3)])
    # The sink's per-bundle part files are gone once their shards exist.
    self.assertEqual([s for s in shards if '.part-' in s], [])
    records = _read_records(os.path.join(output_dir, 'dev-*.tfrecord'))
    self.assertCountEqual(records, good)
    for utterance_id, (samples, length, text, speaker) in good.items():
      record = records[utterance_id]
      self.assertEqual(record[tfrecord_schema.TRANSCRIPT].decode(), text)
      self.assertEqual(record[tfrecord_schema.SPEAKER].decode(), speaker)
      self.assertEqual(record[tfrecord_schema.NUM_SAMPLES], length)
      self.assertEqual(record['audio'].shape, (length,))
      self.assertEqual(record[tfrecord_schema.AUDIO_SAMPLE_RATE], 16000)
      if samples is not None:  # 16 kHz mono FLAC is lossless end to end.
        self.assertAllEqual(record['audio'], samples)

  def test_reruns_write_identical_shards_in_key_order(self):
    root = os.path.join(self.dir, 'LibriSpeech', 'dev-twice')
    good, _ = _make_librispeech_tree(root, self.rng)
    shard_bytes = []
    for run in range(2):
      output_dir = os.path.join(self.dir, f'out-{run}')
      convert.run_conversion(root, 'librispeech', output_dir,
                             output_prefix='dev', num_shards=2,
                             min_duration_s=0.1, max_duration_s=3.0,
                             beam_args=_IN_MEMORY)
      shards = sorted(glob.glob(os.path.join(output_dir, 'dev-*.tfrecord')))
      shard_bytes.append([tf.io.gfile.GFile(path, 'rb').read()
                          for path in shards])
      for path in shards:
        ids = [tf.train.Example.FromString(record.numpy()).features
               .feature[tfrecord_schema.UTTERANCE_ID].bytes_list.value[0]
               .decode() for record in tf.data.TFRecordDataset(path)]
        self.assertEqual(ids, sorted(ids, key=sharded_sink.record_order_key))
        self.assertNotEmpty(ids)
    self.assertEqual(shard_bytes[0], shard_bytes[1])
    self.assertLen(good, sum(len(list(tf.data.TFRecordDataset(path)))
                             for path in shards))

  def test_audio_dir_is_unlabeled(self):
    root = os.path.join(self.dir, 'unlabeled')
    _write_audio(os.path.join(root, 'call', 'one.wav'),
                 _noise(self.rng, 22050, channels=2), 44100)
    _write_audio(os.path.join(root, 'two.flac'), _noise(self.rng, 4000), 8000)
    summary = convert.run_conversion(root, 'audio_dir',
                                     os.path.join(self.dir, 'out'),
                                     beam_args=_IN_MEMORY)
    self.assertEqual((summary['inputs'], summary['written']), (2, 2))
    records = _read_records(os.path.join(self.dir, 'out',
                                         'data-00000-of-00001.tfrecord'))
    self.assertEqual({key: (int(r[tfrecord_schema.NUM_SAMPLES]),
                            r[tfrecord_schema.TRANSCRIPT])
                      for key, r in records.items()},
                     {'call/one': (8000, b''), 'two': (8000, b'')})


class ConvertBinaryTest(tf.test.TestCase):
  """Runs `main` in-process (a subprocess per case would cost ~10 s here)."""

  def run_main(self, *flags_and_args):
    """Parses flags like the binary, runs main; returns (exit code, stderr)."""
    flag_values = flags.FlagValues()
    convert.define_flags(flag_values)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), \
        contextlib.redirect_stdout(io.StringIO()):
      try:
        argv = convert.parse_flags(['convert', *flags_and_args], flag_values)
        convert.main(argv, flag_values)
        exit_code = 0
      except SystemExit as exit_request:
        exit_code = exit_request.code
    return exit_code, stderr.getvalue()

  def test_default_pipeline_options(self):
    options = beam_pipeline.make_pipeline_options([]).get_all_options()
    self.assertEqual(options['runner'], 'DirectRunner')
    self.assertEqual(options['direct_running_mode'], 'multi_processing')
    self.assertEqual(options['direct_num_workers'], os.cpu_count())
    options = beam_pipeline.make_pipeline_options(
        ['--runner=DataflowRunner', '--project=p']).get_all_options()
    self.assertEqual((options['runner'], options['project']),
                     ('DataflowRunner', 'p'))
    self.assertEqual(options['direct_running_mode'], 'in_memory')

  def test_manifest_strict_gzip(self):
    rng = np.random.default_rng(5)
    manifest_dir = os.path.join(self.get_temp_dir(), 'corpus')
    relative = _noise(rng, 8000)
    _write_audio(os.path.join(manifest_dir, 'clips', 'rel.flac'), relative,
                 16000)
    absolute_path = _write_audio(
        os.path.join(self.get_temp_dir(), 'abs', 'abs.wav'),
        _noise(rng, 16000), 16000)
    os.makedirs(os.path.join(manifest_dir, 'clips', 'folder.wav'))
    entries = [
        {'audio_filepath': 'clips/rel.flac', 'text': 'relative one'},
        {'audio_filepath': absolute_path, 'text': 'absolute two',
         'speaker': 'spk'},
        {'audio_filepath': 'clips/missing.wav', 'text': 'gone'},
        {'audio_filepath': 'clips/folder.wav', 'text': 'a directory'},
        {'audio_filepath': 'clips/rel.flac', 'text': ''},
    ]
    manifest = _write_bytes(
        os.path.join(manifest_dir, 'train.jsonl'),
        '\n'.join(json.dumps(entry) for entry in entries).encode())
    output_dir = os.path.join(self.get_temp_dir(), 'records')

    exit_code, stderr = self.run_main(
        f'--input={manifest}', '--format=manifest',
        f'--output_dir={output_dir}', '--num_shards=2', '--compression=gzip',
        '--output_prefix=train', '--strict', *_IN_MEMORY)

    self.assertEqual(exit_code, 1, stderr)
    self.assertIn('convert: error: --strict: 3 of 5 inputs rejected', stderr)
    with open(os.path.join(output_dir, 'train.summary.json')) as summary_file:
      summary = json.load(summary_file)
    self.assertEqual(summary['rejected_by_reason'],
                     {'missing_file': 1, 'not_a_file': 1,
                      'empty_transcript': 1})
    self.assertEqual((summary['inputs'], summary['written']), (5, 2))
    clips = os.path.join(manifest_dir, 'clips')
    self.assertEqual(
        _read_rejects(os.path.join(output_dir, 'train.rejects.tsv')),
        {os.path.join(clips, 'missing.wav'): 'missing_file',
         os.path.join(clips, 'folder.wav'): 'not_a_file',
         os.path.join(clips, 'rel.flac'): 'empty_transcript'})
    self.assertLen(glob.glob(os.path.join(output_dir, 'train-*-of-00002'
                                          '.tfrecord.gz')), 2)
    records = _read_records(os.path.join(output_dir, 'train-*.tfrecord.gz'),
                            compression_type='GZIP')
    self.assertEqual(
        {key: (r[tfrecord_schema.TRANSCRIPT], r[tfrecord_schema.SPEAKER])
         for key, r in records.items()},
        {'clips/rel': (b'relative one', b''),
         os.path.splitext(absolute_path)[0].lstrip('/'):
             (b'absolute two', b'spk')})
    self.assertAllEqual(records['clips/rel']['audio'], relative)

  def test_user_errors_exit_cleanly(self):
    cases = [
        (['--input=/no/such/corpus', '--format=librispeech',
          '--output_dir=/tmp/unused'], 'is not a directory'),
        (['--input=/tmp', '--format=mp3', '--output_dir=/tmp/unused'],
         'value should be one of'),
        (['--format=manifest', '--output_dir=/tmp/unused'],
         '--input is required'),
    ]
    for arguments, message in cases:
      exit_code, stderr = self.run_main(*arguments)
      self.assertEqual(exit_code, 1, stderr)
      self.assertIn(message, stderr)
      self.assertLen(stderr.strip().splitlines(), 1, stderr)

  def test_binary_reports_bad_input_without_traceback(self):
    # One real `python -m` run: absl start-up and the exit path end to end.
    result = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.convert',
         '--input=/no/such/corpus', '--format=audio_dir',
         '--output_dir=/tmp/unused'],
        cwd=_REPO_ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'),
        capture_output=True, text=True, timeout=240, check=False)
    self.assertEqual(result.returncode, 1)
    self.assertNotIn('Traceback', result.stderr)
    self.assertIn("convert: error: --input '/no/such/corpus' is not a "
                  'directory', result.stderr)


if __name__ == '__main__':
  tf.test.main()
