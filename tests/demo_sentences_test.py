"""Tests for the demo corpus's sentence pools and the tool that builds them."""

import os
import subprocess
import sys
import tempfile

import tensorflow as tf

from asr_kd.text import normalization
from tfrecords_tools import build_demo_sentences
from tfrecords_tools import demo_sentences

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Two synsets in WordNet's data-file layout: the license header lines start
# with spaces; examples are the quoted parts of the gloss after ' | '.
_WORDNET_DATA = '''  1 This software and database is being provided "as is" to you
00001740 03 n 01 entity 0 003 | that which exists; "she said it wasn't there"; "I'll see you at the market"
00002137 04 v 01 go 0 000 | move; "he went to NASA"; "we went there in 1990"; "ok"
'''
_FORTUNES = '''A fool and his money are soon parted. Nobody knows why it is so!
\t\t-- Anonymous
%
You will meet a tall dark stranger
who lives in a "house" near the sea.
%
xyzzy plugh
'''


class CleanSentenceTest(tf.test.TestCase):

  def test_keeps_everyday_sentences_capitalized_with_a_final_mark(self):
    self.assertEqual(build_demo_sentences.clean_sentence(
        'she said it wasn`t there'), "She said it wasn't there.")
    self.assertEqual(build_demo_sentences.clean_sentence(
        '  "Where did   you go?" '), 'Where did you go?')
    self.assertEqual(build_demo_sentences.clean_sentence(
        'a well-known fact, really;'), 'A well-known fact, really.')

  def test_rejects(self):
    for raw in ('we went there in 1990',        # digits
                'he went to NASA today',         # abbreviation
                'press the b key now',           # a lone letter
                'the quokka ate the leaf',       # a rare word
                'the dogs\' owner came home',    # apostrophe at a word's edge
                'go home now',                   # three words
                ' '.join(['we'] * 21),           # 21 words
                'wait -- what was that',         # a dash
                'and so on... and so forth',     # an ellipsis
                'she sang (badly) all day',      # brackets
                'a "house" by the sea',          # inner quotes
                'The cat ate the McGuffin'):     # inner capitals
      self.assertIsNone(build_demo_sentences.clean_sentence(raw), raw)

  def test_transcript_is_the_normalization_in_upper_case(self):
    sentence = "Don't stop; the well-known dog's bowl is empty!"
    self.assertEqual(demo_sentences.transcript_text(sentence),
                     normalization.normalize_text(sentence).upper())
    self.assertEqual(demo_sentences.transcript_text(sentence),
                     "DON'T STOP THE WELL KNOWN DOG'S BOWL IS EMPTY")


class SourcesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.wordnet_dir = tempfile.mkdtemp(prefix='wordnet', dir=self.get_temp_dir())
    for part in build_demo_sentences.WORDNET_PARTS_OF_SPEECH:
      with open(os.path.join(self.wordnet_dir, f'data.{part}'), 'w') as f:
        f.write(_WORDNET_DATA if part == 'noun' else '')
    self.fortunes_dir = tempfile.mkdtemp(prefix='fortunes', dir=self.get_temp_dir())
    for name in build_demo_sentences.FORTUNE_FILES:
      with open(os.path.join(self.fortunes_dir, name), 'w') as f:
        f.write(_FORTUNES if name == 'fortunes' else '')

  def test_wordnet_examples_are_the_quoted_gloss_parts(self):
    self.assertEqual(
        list(build_demo_sentences.wordnet_examples(self.wordnet_dir)),
        ["she said it wasn't there", "I'll see you at the market",
         'he went to NASA', 'we went there in 1990', 'ok'])

  def test_fortune_sentences_split_entries_and_drop_attributions(self):
    sentences = list(build_demo_sentences.fortune_sentences(
        self.fortunes_dir, ['fortunes']))
    self.assertEqual(sentences[:2], ['A fool and his money are soon parted.',
                                     'Nobody knows why it is so!'])
    self.assertNotIn('Anonymous', ' '.join(sentences))
    self.assertIn('You will meet a tall dark stranger who lives in a "house" '
                  'near the sea.', sentences)

  def test_build_pool_dedups_by_transcript_and_excludes(self):
    pool = build_demo_sentences.build_pool(
        ['the cat sat down here', 'The cat sat down, here!',
         'a dog ran away fast', 'we went there in 1990'],
        exclude=['A DOG RAN AWAY FAST'])
    self.assertEqual(pool, ['The cat sat down here.'])

  def test_cli_writes_both_pools_without_shared_sentences(self):
    output_dir = tempfile.mkdtemp(prefix='out', dir=self.get_temp_dir())
    result = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.build_demo_sentences',
         f'--wordnet_dir={self.wordnet_dir}',
         f'--fortunes_dir={self.fortunes_dir}', f'--output_dir={output_dir}'],
        cwd=_REPO_ROOT, capture_output=True, text=True, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output_dir, 'wordnet_examples.txt')) as f:
      self.assertEqual(f.read().splitlines(),
                       ["I'll see you at the market.",
                        "She said it wasn't there."])
    with open(os.path.join(output_dir, 'fortunes.txt')) as f:
      self.assertEqual(f.read().splitlines(), [
          'A fool and his money are soon parted.',
          'Nobody knows why it is so!'])  # Not the one with inner quotes.
    self.assertIn('2 sentences', result.stdout)

  def test_cli_missing_source_is_one_line(self):
    result = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.build_demo_sentences',
         '--wordnet_dir=/nonexistent', f'--output_dir={tempfile.mkdtemp(dir=self.get_temp_dir())}'],
        cwd=_REPO_ROOT, capture_output=True, text=True, check=False)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn('build_demo_sentences: error:', result.stderr)
    self.assertNotIn('Traceback', result.stderr)


class ShippedPoolsTest(tf.test.TestCase):

  def test_every_shipped_sentence_follows_the_rule(self):
    for source in demo_sentences.SOURCE_FILES:
      pool = demo_sentences.load_pool(source)
      self.assertEqual(list(pool), sorted(set(pool)), source)
      for sentence in pool:
        self.assertEqual(build_demo_sentences.clean_sentence(sentence),
                         sentence)

  def test_transcripts_equal_the_normalizer_and_pools_share_none(self):
    transcripts = {}
    for source in demo_sentences.SOURCE_FILES:
      pool = list(demo_sentences.load_pool(source))
      normalized = normalization.normalize(tf.constant(pool)).numpy()
      transcripts[source] = [demo_sentences.transcript_text(s) for s in pool]
      self.assertEqual(transcripts[source],
                       [n.decode().upper() for n in normalized])
      self.assertLen(set(transcripts[source]), len(pool))
    self.assertEmpty(set(transcripts['wordnet']) &
                     set(transcripts['fortunes']))

  def test_sizes_vocabulary_and_apostrophes(self):
    # The figures docs/demo_corpus.md gives.
    expected = {'wordnet': (21386, 13961), 'fortunes': (7794, 7945)}
    for source, (num_sentences, num_words) in expected.items():
      pool = demo_sentences.load_pool(source)
      vocabulary = {w for s in pool for w in demo_sentences.words(s)}
      self.assertLen(pool, num_sentences)
      self.assertLen(vocabulary, num_words)
      self.assertGreater(sum("'" in w for w in vocabulary), 100)

  def test_unknown_source_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'unknown sentence source'):
      demo_sentences.load_pool('brown')


if __name__ == '__main__':
  tf.test.main()
