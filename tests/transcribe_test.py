"""Tests for asr_kd.bin.transcribe and Recognizer.transcribe_files."""

import io
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from scipy import signal
import soundfile
import tensorflow as tf

from asr_kd.bin import transcribe
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.inference import model_loader
from asr_kd.inference import recognizer as recognizer_lib
from tests import model_loader_test

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _first_record_samples(pattern: str, count: int):
  dataset = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)).map(
      tfrecord_schema.parse_example).take(count)
  return [example['audio'] for example in dataset.as_numpy_iterator()]


class TranscribeTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work_dir = tempfile.mkdtemp()
    cls.run_info = model_loader_test.train_tiny_model_dir(cls.work_dir,
                                                          num_utterances=4)
    loaded = model_loader.load_model(cls.run_info['model_dir'])
    cls.recognizer = recognizer_lib.from_loaded_model(
        loaded, loaded.config.task.decoding, batch_size=3)
    first, second = _first_record_samples(
        cls.run_info['corpus']['tfrecords'], 2)
    audio_dir = os.path.join(cls.work_dir, 'audio')
    os.makedirs(audio_dir)
    cls.paths = {name: os.path.join(audio_dir, name) for name in (
        'a.wav', 'b.flac', 'narrowband.wav', 'stereo.flac', 'empty.wav',
        'corrupt.flac', 'missing.wav')}
    soundfile.write(cls.paths['a.wav'], first, 16000)
    soundfile.write(cls.paths['b.flac'], second, 16000)
    narrowband = signal.resample_poly(first.astype(np.float64) / 32768, 1, 2)
    soundfile.write(cls.paths['narrowband.wav'], narrowband, 8000,
                    subtype='PCM_16')
    # Left = first utterance, right = silence: the downmix halves the level.
    stereo = np.stack([first, np.zeros_like(first)], axis=1)
    soundfile.write(cls.paths['stereo.flac'], stereo, 16000)
    open(cls.paths['empty.wav'], 'wb').close()
    with open(cls.paths['corrupt.flac'], 'wb') as corrupt:
      corrupt.write(b'fLaC' + bytes(range(256)) * 4)
    cls.expected = {
        'a.wav': cls.recognizer.recognize([first])[0],
        'b.flac': cls.recognizer.recognize([second])[0],
        'stereo.flac': cls.recognizer.recognize(
            [np.round(first.astype(np.float64) / 2).astype(np.int16)])[0],
    }
    cls.order = ['a.wav', 'empty.wav', 'b.flac', 'missing.wav',
                 'narrowband.wav', 'corrupt.flac', 'stereo.flac']
    cls.results = cls.recognizer.transcribe_files(
        [cls.paths[name] for name in cls.order])

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.work_dir, ignore_errors=True)
    super().tearDownClass()

  def _result(self, name):
    return self.results[self.order.index(name)]

  def test_results_in_input_order(self):
    self.assertEqual([r.path for r in self.results],
                     [self.paths[name] for name in self.order])

  def test_wav_and_flac_match_direct_recognition(self):
    for name in ('a.wav', 'b.flac'):
      self.assertEqual(self._result(name).error, '')
      self.assertEqual(self._result(name).notes, [])
      self.assertEqual(self._result(name).transcript, self.expected[name])

  def test_stereo_is_downmixed(self):
    result = self._result('stereo.flac')
    self.assertEqual(result.error, '')
    self.assertEqual(result.notes, ['downmixed 2 channels to mono'])
    self.assertEqual(result.transcript, self.expected['stereo.flac'])

  def test_8khz_is_resampled(self):
    result = self._result('narrowband.wav')
    self.assertEqual(result.error, '')
    self.assertEqual(result.notes, ['resampled 8000 Hz to 16000 Hz'])
    samples, _ = soundfile.read(self.paths['narrowband.wav'])
    # Files reach the model as 16-bit samples: quantize the reference too,
    # or a near-tie of the untrained tiny model can flip a character.
    upsampled = np.clip(np.round(signal.resample_poly(samples, 2, 1) * 32768),
                        -32768, 32767).astype(np.int16)
    self.assertEqual(result.transcript,
                     self.recognizer.recognize([upsampled])[0])

  def test_long_file_is_transcribed_in_segments_the_model_trained_on(self):
    train_data = model_loader.load_model(
        self.run_info['model_dir']).config.task.train_data
    max_samples = self.recognizer.max_segment_samples
    self.assertEqual(max_samples, (train_data.bucket_boundaries[-1] - 1) * 160
                     + 400)
    first, second = _first_record_samples(
        self.run_info['corpus']['tfrecords'], 2)
    pause = np.zeros([4000], np.int16)
    long_audio = np.concatenate([first, pause, second, pause] * 8)
    self.assertGreater(len(long_audio), 2 * max_samples)
    path = os.path.join(self.work_dir, 'long.wav')
    soundfile.write(path, long_audio, 16000, subtype='PCM_16')
    segments = self.recognizer.segments(long_audio)
    self.assertGreater(len(segments), 2)
    self.assertLessEqual(max(len(segment) for segment in segments),
                         max_samples)
    self.assertEqual(sum(len(segment) for segment in segments),
                     len(long_audio))
    [result] = self.recognizer.transcribe_files([path])
    self.assertEqual(result.transcript, ' '.join(
        text for text in self.recognizer.recognize(segments) if text))

  def test_bad_files_get_clear_errors(self):
    self.assertStartsWith(self._result('empty.wav').error, 'empty_file')
    self.assertStartsWith(self._result('corrupt.flac').error,
                          'corrupt_audio')
    self.assertStartsWith(self._result('missing.wav').error, 'missing_file')
    for name in ('empty.wav', 'corrupt.flac', 'missing.wav'):
      self.assertEqual(self._result(name).transcript, '')

  def test_write_transcriptions_lines_and_failure_count(self):
    stdout, stderr = io.StringIO(), io.StringIO()
    failures = transcribe.write_transcriptions(
        self.recognizer, [self.paths[n] for n in self.order], stdout, stderr)
    self.assertEqual(failures, 3)
    self.assertEqual(stdout.getvalue().splitlines(), [
        f'{self.paths[r]}\t{self._result(r).transcript}'
        for r in ('a.wav', 'b.flac', 'narrowband.wav', 'stereo.flac')])
    errors = [line for line in stderr.getvalue().splitlines()
              if '\tERROR: ' in line]
    self.assertEqual([line.split('\t')[0] for line in errors],
                     [self.paths[n] for n in ('empty.wav', 'missing.wav',
                                              'corrupt.flac')])

  def test_binary_exit_code_and_no_traceback(self):
    process = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.transcribe',
         f'--model_dir={self.run_info["model_dir"]}', '--batch_size=2',
         self.paths['a.wav'], self.paths['empty.wav'],
         self.paths['stereo.flac']],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=300,
        check=False)
    self.assertEqual(process.returncode, 1, process.stderr[-2000:])
    self.assertNotIn('Traceback', process.stderr)
    self.assertEqual(process.stdout.splitlines(), [
        f'{self.paths["a.wav"]}\t{self.expected["a.wav"]}',
        f'{self.paths["stereo.flac"]}\t{self.expected["stereo.flac"]}'])
    self.assertIn(f'{self.paths["empty.wav"]}\tERROR: empty_file',
                  process.stderr)


if __name__ == '__main__':
  tf.test.main()
