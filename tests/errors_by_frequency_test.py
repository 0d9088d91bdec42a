"""Tests for asr_kd.bin.errors_by_frequency."""

import io
import json
import os
import tempfile
from contextlib import redirect_stdout
from unittest import mock

import numpy as np
import tensorflow as tf

from asr_kd.bin import errors_by_frequency
from tests import testing_utils


def _all_alignments(reference, hypothesis):
  """(cost, per-reference-word correct tuple) of every alignment, by brute force."""
  if not reference:
    return [(len(hypothesis), ())]
  if not hypothesis:
    return [(len(reference), (False,) * len(reference))]
  results = []
  same = reference[0] == hypothesis[0]
  for cost, rest in _all_alignments(reference[1:], hypothesis[1:]):
    results.append((cost + (not same), (same,) + rest))
  for cost, rest in _all_alignments(reference[1:], hypothesis):  # deletion
    results.append((cost + 1, (False,) + rest))
  for cost, rest in _all_alignments(reference, hypothesis[1:]):  # insertion
    results.append((cost + 1, rest))
  return results


def _write_librispeech(root, lines):
  """A one-chapter LibriSpeech layout: transcript lines and empty .flac files."""
  chapter = os.path.join(root, '1', '2')
  os.makedirs(chapter)
  with open(os.path.join(chapter, '1-2.trans.txt'), 'w') as transcripts:
    for index, text in enumerate(lines):
      utterance_id = f'1-2-{index:04d}'
      transcripts.write(f'{utterance_id} {text}\n')
      open(os.path.join(chapter, utterance_id + '.flac'), 'w').close()


class CorrectReferenceWordsTest(tf.test.TestCase):

  def test_substitution_deletion_insertion(self):
    correct = errors_by_frequency.correct_reference_words
    self.assertEqual(correct('a b c d'.split(), 'a x c d e'.split()),
                     [True, False, True, True])
    self.assertEqual(correct('a b c'.split(), 'a c'.split()),
                     [True, False, True])
    self.assertEqual(correct('a b'.split(), []), [False, False])
    self.assertEqual(correct([], 'a b'.split()), [])
    self.assertEqual(correct('a b c'.split(), 'a b c'.split()), [True] * 3)

  def test_alignment_is_one_of_the_optimal_ones_on_random_cases(self):
    rng = np.random.default_rng(0)
    for _ in range(150):
      reference = list(rng.choice(list('abc'), rng.integers(0, 6)))
      hypothesis = list(rng.choice(list('abc'), rng.integers(0, 6)))
      alignments = _all_alignments(reference, hypothesis)
      best = min(cost for cost, _ in alignments)
      optimal = {correct for cost, correct in alignments if cost == best}
      self.assertIn(tuple(errors_by_frequency.correct_reference_words(
          reference, hypothesis)), optimal, msg=f'{reference} {hypothesis}')


class BinaryTest(tf.test.TestCase):

  def _run(self, *args):
    flag_values = testing_utils.parsed_flags(
        errors_by_frequency.define_flags, 'errors_by_frequency', *args)
    output = io.StringIO()
    with redirect_stdout(output):
      code = errors_by_frequency.run(flag_values)
    return code, output.getvalue()

  def test_table_counts_words_by_training_frequency(self):
    root = tempfile.mkdtemp()
    corpus = os.path.join(root, 'train')
    _write_librispeech(corpus, ['THE CAT SAT'] * 3 + ["A DOG RAN, DIDN'T IT"])
    hypotheses = os.path.join(root, 'hyps.jsonl')
    with open(hypotheses, 'w') as records:
      records.write(json.dumps({'reference': 'the cat ran home',
                                'hypothesis': 'the cat ram'}) + '\n')
    table_path = os.path.join(root, 'table.json')
    code, printed = self._run(f'--hypotheses={hypotheses}',
                              f'--train_corpus={corpus}', '--bins=0,2',
                              f'--output={table_path}')
    self.assertEqual(code, 0)
    with open(table_path) as table_file:
      table = json.load(table_file)[hypotheses]
    # home: never seen; ran: once; the, cat: three times.
    self.assertEqual([(row['train_count'], row['words'], row['wrong'])
                      for row in table],
                     [('0', 1, 1), ('1-2', 1, 1), ('> 2', 2, 0)])
    self.assertAllClose([row['error_share'] for row in table], [0.5, 0.5, 0])
    self.assertIn('1-2', printed)

  def test_bad_inputs_exit_with_a_message(self):
    root = tempfile.mkdtemp()
    corpus = os.path.join(root, 'train')
    _write_librispeech(corpus, ['THE CAT'])
    not_records = os.path.join(root, 'summary.jsonl')
    with open(not_records, 'w') as records:
      records.write(json.dumps({'wer': 0.1}) + '\n')
    cases = [
        ([f'--hypotheses={not_records}', f'--train_corpus={corpus}'],
         'no evaluate --output records'),
        ([f'--hypotheses={not_records}', f'--train_corpus={root}/missing'],
         'not a directory'),
        ([f'--hypotheses={not_records}', f'--train_corpus={corpus}',
          '--bins=5,2'], 'increasing'),
    ]
    for args, message in cases:
      with self.subTest(message=message), mock.patch('sys.stderr'):
        with self.assertRaisesRegex(SystemExit, message):
          self._run(*args)


if __name__ == '__main__':
  tf.test.main()
