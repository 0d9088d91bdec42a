"""Tests for asr_kd.text.normalization."""

import tensorflow as tf

from asr_kd.text import normalization


class NormalizationTest(tf.test.TestCase):

  def test_librispeech_upper_case(self):
    self.assertEqual(
        normalization.normalize_text('HE HOPED THERE WOULD BE STEW FOR DINNER'),
        'he hoped there would be stew for dinner')

  def test_punctuation_and_digits_become_spaces(self):
    self.assertEqual(
        normalization.normalize_text('Hello, world!  It was 1999... (yes)'),
        'hello world it was yes')
    self.assertEqual(normalization.normalize_text('well-known;fact'),
                     'well known fact')

  def test_apostrophes_kept_only_inside_words(self):
    self.assertEqual(
        normalization.normalize_text("'Tis the dogs' DON'T o''clock ' x"),
        "tis the dogs don't o'clock x")

  def test_whitespace_collapsed_and_stripped(self):
    self.assertEqual(normalization.normalize_text(' \t a \n\n b  '), 'a b')
    self.assertEqual(normalization.normalize_text('...!'), '')

  def test_batched_graph_version_matches_eager_helper(self):
    texts = ['A, B', "IT'S", '  x  ']
    normalize_fn = tf.function(normalization.normalize)
    batched = [t.decode() for t in normalize_fn(tf.constant(texts)).numpy()]
    self.assertEqual(batched,
                     [normalization.normalize_text(t) for t in texts])

  def test_idempotent(self):
    text = "WHAT'S  UP, 'DOC'?"
    once = normalization.normalize_text(text)
    self.assertEqual(normalization.normalize_text(once), once)


if __name__ == '__main__':
  tf.test.main()
