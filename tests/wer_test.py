"""Tests for asr_kd.decoding.wer, cross-checked against jiwer."""

import jiwer
import numpy as np
import tensorflow as tf

from asr_kd.decoding import wer

_WORDS = ('a', 'b', 'cat', 'dog', 'élan', 'zoo')


def _random_texts(rng, count):
  """Random texts over a tiny vocabulary, with empty ones and extra spaces."""
  texts = []
  for _ in range(count):
    words = list(rng.choice(_WORDS, size=rng.integers(0, 6)))
    separators = rng.choice([' ', '  '], size=max(len(words) - 1, 0))
    text = ''.join(w + s for w, s in zip(words, list(separators) + ['']))
    texts.append(rng.choice(['', ' ']) + text + rng.choice(['', ' ']))
  return texts


def _jiwer_counts(hyps, refs, process):
  """(errors, reference units) per pair, from jiwer's alignment."""
  errors, ref_units = [], []
  for hyp, ref in zip(hyps, refs):
    # Same normalization as wer.py: whitespace runs are one separator.
    output = process(' '.join(ref.split()), ' '.join(hyp.split()))
    errors.append(output.substitutions + output.deletions + output.insertions)
    ref_units.append(output.hits + output.substitutions + output.deletions)
  return errors, ref_units


class WerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(7)
    self._hyps = _random_texts(rng, 40) + ['', '', 'a b']
    self._refs = _random_texts(rng, 40) + ['', 'cat dog', '']

  def test_word_errors_match_jiwer(self):
    errors, ref_words = wer.word_error_counts(tf.constant(self._hyps),
                                              tf.constant(self._refs))
    expected_errors, expected_words = _jiwer_counts(
        self._hyps, self._refs, jiwer.process_words)
    self.assertAllEqual(errors, expected_errors)
    self.assertAllEqual(ref_words, expected_words)
    self.assertGreater(sum(expected_errors), 0)

  def test_char_errors_match_jiwer(self):
    errors, ref_chars = wer.char_error_counts(tf.constant(self._hyps),
                                              tf.constant(self._refs))
    expected_errors, expected_chars = _jiwer_counts(
        self._hyps, self._refs, jiwer.process_characters)
    self.assertAllEqual(errors, expected_errors)
    self.assertAllEqual(ref_chars, expected_chars)

  def test_counts_in_tf_function(self):
    counts = tf.function(wer.word_error_counts)(tf.constant(self._hyps),
                                                tf.constant(self._refs))
    eager = wer.word_error_counts(tf.constant(self._hyps),
                                  tf.constant(self._refs))
    self.assertAllEqual(counts, eager)

  def test_corpus_rates_match_jiwer(self):
    pairs = [(h, r) for h, r in zip(self._hyps, self._refs) if r.split()]
    hyps = [h for h, _ in pairs]
    refs = [r for _, r in pairs]
    self.assertAllClose(wer.corpus_wer(hyps, refs),
                        jiwer.wer([' '.join(r.split()) for r in refs],
                                  [' '.join(h.split()) for h in hyps]))
    self.assertAllClose(wer.corpus_cer(hyps, refs),
                        jiwer.cer([' '.join(r.split()) for r in refs],
                                  [' '.join(h.split()) for h in hyps]))

  def test_corpus_wer_rejects_bad_input(self):
    with self.assertRaisesRegex(ValueError, 'no words'):
      wer.corpus_wer(['a'], [' '])
    with self.assertRaisesRegex(ValueError, 'hypotheses'):
      wer.corpus_wer(['a', 'b'], ['a'])


if __name__ == '__main__':
  tf.test.main()
