"""Tests for tfrecords_tools.demo_text."""

import os
import re

import numpy as np
import tensorflow as tf
import wonderwords

from tfrecords_tools import demo_text

_SENTENCE = re.compile(r'^[a-z]+( [a-z]+)*[.?]$')


def _sentences(seed, count, generator=None):
  generator = generator or demo_text.SentenceGenerator()
  rng = np.random.default_rng(seed)
  return [generator.sentence(rng) for _ in range(count)]


class DemoTextTest(tf.test.TestCase):

  def test_sentences_are_lowercase_words_within_length(self):
    seed = int(np.random.default_rng().integers(1 << 30))
    for sentence in _sentences(seed, 1000):
      self.assertRegex(sentence, _SENTENCE)
      self.assertBetween(len(sentence[:-1].split()), 3, 15)

  def test_custom_length_range(self):
    generator = demo_text.SentenceGenerator(min_words=5, max_words=6)
    for sentence in _sentences(3, 200, generator):
      self.assertBetween(len(sentence[:-1].split()), 5, 6)
    with self.assertRaises(ValueError):
      demo_text.SentenceGenerator(min_words=4, max_words=3)

  def test_deterministic_for_a_seed(self):
    self.assertEqual(_sentences(7, 50), _sentences(7, 50))
    self.assertNotEqual(_sentences(7, 50), _sentences(8, 50))

  def test_sentences_are_varied(self):
    sentences = _sentences(11, 2000)
    self.assertGreater(len(set(sentences)), 1990)
    self.assertGreater(sum(s.endswith('?') for s in sentences), 100)
    lengths = {len(s.split()) for s in sentences}
    self.assertEqual(lengths, set(range(3, 16)))

  def test_vocabulary_is_large(self):
    generator = demo_text.SentenceGenerator()
    self.assertGreaterEqual(len(generator.content_vocabulary), 1500)
    used_words = {word.rstrip('.?') for sentence in _sentences(5, 2000)
                  for word in sentence.split()}
    self.assertGreaterEqual(len(used_words), 1500)

  def test_no_profanity(self):
    path = os.path.join(os.path.dirname(wonderwords.__file__), 'assets',
                        'profanitylist.txt')
    with open(path, encoding='utf-8') as f:
      profanity = {line.strip().lower() for line in f if line.strip()}
    generator = demo_text.SentenceGenerator()
    self.assertEmpty(generator.content_vocabulary & profanity)

  def test_inflection(self):
    cases = {
        demo_text.third_person: {'watch': 'watches', 'carry': 'carries',
                                 'play': 'plays', 'go': 'goes'},
        demo_text.past_tense: {'stop': 'stopped', 'carry': 'carried',
                               'bake': 'baked', 'visit': 'visited',
                               'prefer': 'preferred', 'go': 'went',
                               'play': 'played'},
        demo_text.past_participle: {'write': 'written', 'jump': 'jumped'},
        demo_text.present_participle: {'make': 'making', 'run': 'running',
                                       'lie': 'lying', 'see': 'seeing',
                                       'open': 'opening'},
        demo_text.plural: {'box': 'boxes', 'city': 'cities', 'day': 'days',
                           'child': 'children', 'cat': 'cats'},
    }
    for function, examples in cases.items():
      for word, expected in examples.items():
        self.assertEqual(function(word), expected, f'{function.__name__}')

  def test_lexicon_probabilities(self):
    for pos, (words, probabilities) in demo_text.load_lexicon().items():
      self.assertLen(words, len(probabilities), pos)
      self.assertEqual(list(words), sorted(set(words)), pos)
      self.assertAllClose(np.sum(probabilities), 1.0)
      self.assertTrue(np.all(probabilities > 0), pos)


if __name__ == '__main__':
  tf.test.main()
