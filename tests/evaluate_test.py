"""Tests for asr_kd.bin.evaluate on a tiny model trained for 2 steps."""

import contextlib
import io
import json
import os
import shutil
import tempfile

from absl import flags
import jiwer
import numpy as np
import soundfile
import tensorflow as tf

from asr_kd.bin import evaluate
from asr_kd.configs import rnnt_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.decoding import decoder
from asr_kd.inference import model_loader
from asr_kd.inference import recognizer as recognizer_lib
from asr_kd.text import normalization
from tests import model_loader_test


def _direct_hypothesis(loaded, feature_stats, samples, decoding_config):
  """One unpadded utterance through features, model and decoder by hand."""
  features = features_lib.log_mel(
      features_lib.waveform_to_float(samples[np.newaxis]))
  features = features_lib.normalize_features(features, *feature_stats)
  # The encoder itself: the model's frontend is what is under test.
  encoder_outputs, encoder_lengths = loaded.model.encoder(
      features, tf.constant([features.shape[1]], tf.int32), training=False)
  tokens, lengths = decoder.decode(
      encoder_outputs, encoder_lengths,
      loaded.model.prediction_network, loaded.model.joint_network,
      decoding_config)
  # A fresh Tokenizer: its TF detokenize op is independent of the
  # recognizer's Python SentencePiece call (and of stale kernel resources).
  tokenizer = tokenizer_lib.Tokenizer(model_bytes=loaded.tokenizer.model_bytes)
  return tokenizer.detokenize(tokens[0, :lengths[0]]).numpy().decode('utf-8')


class EvaluateTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work_dir = tempfile.mkdtemp()
    cls.run_info = model_loader_test.train_tiny_model_dir(cls.work_dir)
    cls.corpus = cls.run_info['corpus']
    cls.loaded = model_loader.load_model(cls.run_info['model_dir'])
    cls.utterances = evaluate.read_tfrecords(cls.corpus['tfrecords'])
    cls.greedy = cls.loaded.config.task.decoding.replace(method='greedy')
    cls.recognizer = recognizer_lib.from_loaded_model(
        cls.loaded, cls.greedy, batch_size=3)
    cls.records, cls.summary = evaluate.evaluate(cls.recognizer,
                                                 cls.utterances)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.work_dir, ignore_errors=True)
    super().tearDownClass()

  def test_reads_every_record_with_normalized_references(self):
    self.assertLen(self.utterances, len(self.corpus['texts']))
    expected = sorted(normalization.normalize_text(t)
                      for t in self.corpus['texts'])
    self.assertEqual(sorted(u.reference for u in self.utterances), expected)
    self.assertLen(evaluate.read_tfrecords(self.corpus['tfrecords'], limit=3),
                   3)

  def test_wer_and_cer_equal_jiwer(self):
    references = [r['reference'] for r in self.records]
    hypotheses = [r['hypothesis'] for r in self.records]
    self.assertAllClose(self.summary['wer'],
                        jiwer.wer(references, hypotheses))
    # wer.py counts characters after collapsing whitespace runs.
    self.assertAllClose(self.summary['cer'], jiwer.cer(
        references, [' '.join(h.split()) for h in hypotheses]))
    for record in self.records:
      alignment = jiwer.process_words(record['reference'],
                                      record['hypothesis'] or '')
      self.assertEqual(record['word_errors'],
                       alignment.substitutions + alignment.deletions +
                       alignment.insertions)
      self.assertEqual(record['reference_words'],
                       len(record['reference'].split()))
    self.assertEqual(self.summary['word_errors'],
                     self.summary['substitutions'] +
                     self.summary['insertions'] + self.summary['deletions'])

  def test_hypotheses_equal_a_direct_model_and_decoder_call(self):
    stats = features_lib.load_feature_stats(self.corpus['feature_stats'])
    by_id = {u.utterance_id: u for u in self.utterances}
    for record in self.records:
      self.assertEqual(
          record['hypothesis'],
          _direct_hypothesis(self.loaded, stats,
                             by_id[record['utterance_id']].samples,
                             self.greedy),
          msg=record['utterance_id'])

  def test_beam_hypotheses_equal_a_direct_call(self):
    beam = rnnt_config.DecodingConfig(method='beam', beam_size=2)
    beam_recognizer = recognizer_lib.from_loaded_model(self.loaded, beam,
                                                       batch_size=2)
    stats = features_lib.load_feature_stats(self.corpus['feature_stats'])
    some = self.utterances[:3]
    hypotheses = beam_recognizer.recognize([u.samples for u in some])
    for utterance, hypothesis in zip(some, hypotheses):
      self.assertEqual(hypothesis, _direct_hypothesis(
          self.loaded, stats, utterance.samples, beam))

  def test_one_trace_for_every_batch_shape(self):
    self.assertEqual(self.recognizer.trace_count, 1)

  def test_real_time_factor(self):
    audio_seconds = sum(u.samples.shape[0] for u in self.utterances) / 16000
    self.assertAllClose(self.summary['audio_seconds'], audio_seconds)
    self.assertAllClose(self.summary['real_time_factor'],
                        self.summary['decode_seconds'] / audio_seconds)

  def test_manifest_gives_the_same_hypotheses_and_skips_bad_entries(self):
    manifest_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    lines = []
    for index, utterance in enumerate(self.utterances[:2]):
      name = f'clip{index}.flac' if index else f'clip{index}.wav'
      soundfile.write(os.path.join(manifest_dir, name), utterance.samples,
                      16000)
      lines.append({'audio_filepath': name, 'text': utterance.reference.upper(),
                    'id': utterance.utterance_id})
    lines.append({'audio_filepath': 'missing.wav', 'text': 'x', 'id': 'gone'})
    manifest = os.path.join(manifest_dir, 'test.jsonl')
    with open(manifest, 'w') as manifest_file:
      manifest_file.write('\n'.join(json.dumps(line) for line in lines))
    utterances, skipped = evaluate.read_manifest(manifest)
    self.assertEqual([s.utterance_id for s in skipped], ['gone'])
    self.assertIn('missing_file', skipped[0].reason)
    records, _ = evaluate.evaluate(self.recognizer, utterances)
    expected = {r['utterance_id']: r for r in self.records}
    for record in records:
      self.assertEqual(record, expected[record['utterance_id']])

  def _run_binary(self, *args):
    flag_values = flags.FlagValues()
    evaluate.define_flags(flag_values)
    flag_values(['evaluate', f'--model_dir={self.run_info["model_dir"]}',
                 *args])
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(
        io.StringIO()):
      exit_code = evaluate.run(flag_values)
    return exit_code, stdout.getvalue()

  def test_binary_writes_hypotheses_and_prints_the_wer_line(self):
    output_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    output = os.path.join(output_dir, 'hyps.jsonl')
    summary_path = os.path.join(output_dir, 'summary.json')
    exit_code, stdout = self._run_binary(
        f'--tfrecords={self.corpus["tfrecords"]}', f'--output={output}',
        f'--summary_output={summary_path}', '--batch_size=4', '--limit=5')
    self.assertEqual(exit_code, 0)
    with open(output) as output_file:
      records = [json.loads(line) for line in output_file]
    self.assertEqual(records, self.records[:5])
    with open(summary_path) as summary_file:
      summary = json.load(summary_file)
    words = sum(r['reference_words'] for r in records)
    errors = sum(r['word_errors'] for r in records)
    self.assertEqual(stdout.strip().splitlines()[-1],
                     f'WER {100.0 * errors / words:.2f}% (5 utterances, '
                     f'{words} words)')
    self.assertEqual(summary['reference_words'], words)

  def test_binary_user_errors_are_one_line(self):
    with self.assertRaisesRegex(SystemExit, 'exactly one of'):
      self._run_binary()
    with self.assertRaisesRegex(SystemExit, 'No files match'):
      self._run_binary('--tfrecords=/nonexistent/test-*')
    flag_values = flags.FlagValues()
    evaluate.define_flags(flag_values)
    flag_values(['evaluate', '--model_dir=/nonexistent',
                 '--tfrecords=x'])
    with self.assertRaisesRegex(SystemExit, 'params.yaml not found'):
      evaluate.run(flag_values)


if __name__ == '__main__':
  tf.test.main()
