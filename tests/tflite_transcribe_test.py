"""Tests for the on-device harness binary asr_kd.bin.tflite_transcribe."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile
import tensorflow as tf

from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.export import streaming
from asr_kd.export import streaming_reference
from asr_kd.export import tflite_export
from tests import export_tflite_test
from tests import testing_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_harness(*args):
  return subprocess.run(
      [sys.executable, '-m', 'asr_kd.bin.tflite_transcribe', *args],
      cwd=REPO, capture_output=True, text=True, check=False)


class TfliteTranscribeTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    corpus = testing_utils.write_tiny_corpus(os.path.join(cls.dir, 'corpus'),
                                             num_utterances=4)
    cls.tokenizer_path = corpus['tokenizer']
    tokenizer = tokenizer_lib.Tokenizer(corpus['tokenizer'])
    cls.model = export_tflite_test.build_streaming_model(
        corpus, tokenizer.vocab_size)
    cls.recognizer = streaming.StreamingRecognizer(
        cls.model, max_symbols_per_frame=export_tflite_test.MAX_SYMBOLS)
    cls.model_path = os.path.join(cls.dir, 'student.tflite')
    with open(cls.model_path, 'wb') as model_file:
      model_file.write(tflite_export.convert(cls.recognizer, 'none'))
    tflite_export.write_vocab(tflite_export.vocab_path_for(cls.model_path),
                              tokenizer.id_to_piece)
    cls.waveforms = tflite_export.read_record_waveforms(
        corpus['tfrecords'], 2)
    cls.wav_paths = []
    for index, samples in enumerate(cls.waveforms):
      path = os.path.join(cls.dir, f'utt{index}.wav')
      soundfile.write(path, samples, 16000, subtype='PCM_16')
      cls.wav_paths.append(path)

  def test_prints_reference_transcript_rtf_and_latency(self):
    result = run_harness(f'--model={self.model_path}', '--threads=1',
                         *self.wav_paths)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    lines = result.stdout.strip().split('\n')
    self.assertLen(lines, 2)
    pieces = tokenizer_lib.Tokenizer(self.tokenizer_path).id_to_piece
    for line, path, samples in zip(lines, self.wav_paths, self.waveforms):
      expected = streaming_reference.streaming_greedy_reference(
          self.model, samples, self.recognizer.chunk_samples,
          self.recognizer.tail_samples, export_tflite_test.MAX_SYMBOLS)
      file_name, text, stats = line.split('\t')
      self.assertEqual(file_name, path)
      self.assertEqual(text, tflite_export.detokenize(expected.tokens,
                                                      pieces))
      chunks = streaming_reference.num_chunks(len(samples),
                                              self.recognizer.chunk_samples)
      self.assertIn(f'{chunks} chunks', stats)
      self.assertRegex(stats, r'RTF \d+\.\d+, .*p50 \d+\.\d+ ms p95')
      self.assertIn(f'audio {len(samples) / 16000:.2f} s', stats)

  def test_user_errors_are_one_line(self):
    missing_model = run_harness(
        f'--model={os.path.join(self.dir, "none.tflite")}', self.wav_paths[0])
    self.assertNotEqual(missing_model.returncode, 0)
    self.assertIn('TFLite model not found', missing_model.stderr)
    self.assertNotIn('Traceback', missing_model.stderr)
    missing_audio = run_harness(f'--model={self.model_path}',
                                os.path.join(self.dir, 'missing.wav'))
    self.assertNotEqual(missing_audio.returncode, 0)
    self.assertIn('could not be read', missing_audio.stderr)
    self.assertNotIn('Traceback', missing_audio.stderr)

  def test_truncated_or_foreign_model_is_one_line_not_a_crash(self):
    # tf.lite.Interpreter would die with SIGSEGV on these.
    with open(self.model_path, 'rb') as model_file:
      model = model_file.read()
    with open(self.wav_paths[0], 'rb') as wav_file:
      bad_models = {'half': model[:len(model) // 2], 'wav': wav_file.read()}
    for name, content in bad_models.items():
      path = os.path.join(self.dir, f'bad_{name}.tflite')
      with open(path, 'wb') as bad_file:
        bad_file.write(content)
      tflite_export.write_vocab(tflite_export.vocab_path_for(path),
                                ['<blank>'])
      result = run_harness(f'--model={path}', self.wav_paths[0])
      self.assertEqual(result.returncode, 1, (name, result.stderr[-2000:]))
      errors = [line for line in result.stderr.splitlines()
                if line.startswith('tflite_transcribe:')]
      self.assertLen(errors, 1, result.stderr[-2000:])
      self.assertIn(path, errors[0])
      self.assertIn('truncated or damaged' if name != 'wav'
                    else 'not a TFLite model', errors[0])
      self.assertNotIn('Traceback', result.stderr)

  def test_resampled_and_downmixed_input_gets_note_lines(self):
    stereo_8k = os.path.join(self.dir, 'stereo_8k.wav')
    samples = self.waveforms[0][::2]
    soundfile.write(stereo_8k, np.stack([samples, samples], axis=1), 8000,
                    subtype='PCM_16')
    result = run_harness(f'--model={self.model_path}', stereo_8k)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    notes = [line for line in result.stderr.splitlines() if '\tNOTE: ' in line]
    self.assertEqual(notes, [
        f'{stereo_8k}\tNOTE: resampled 8000 Hz to 16000 Hz',
        f'{stereo_8k}\tNOTE: downmixed 2 channels to mono'])
    self.assertTrue(result.stdout.startswith(f'{stereo_8k}\t'))

  def test_frontend_tail_is_whole_hops(self):
    # The zero prefix must be whole hops covering window - hop samples.
    hop = features_lib.frame_step_samples(
        features_lib.data_config.FeatureConfig())
    tail = self.recognizer.tail_samples
    self.assertEqual(tail % hop, 0)
    self.assertGreaterEqual(tail, 400 - hop)
    self.assertLess(tail, 400)


if __name__ == '__main__':
  tf.test.main()
