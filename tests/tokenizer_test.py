"""Tests for the tokenizer and tfrecords_tools.train_tokenizer."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from asr_kd.dataloaders import tfrecord_schema
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.text import normalization
from tfrecords_tools import train_tokenizer

_WORDS = ('the quick brown fox jumps over lazy dog she sells sea shells by '
          "shore it's a far cry from home don't stop believing").split()


def _random_sentences(count, seed):
  rng = np.random.RandomState(seed)
  return [' '.join(rng.choice(_WORDS, rng.randint(3, 9)).tolist()).upper() +
          rng.choice(['.', '!', '?', ','])
          for _ in range(count)]


class TokenizerTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model_dir = tf.compat.v1.test.get_temp_dir()
    sentences = sorted({normalization.normalize_text(s)
                        for s in _random_sentences(60, seed=1)})
    cls.model_path = train_tokenizer.train_sentencepiece(
        sentences, os.path.join(cls.model_dir, 'spm_test'), vocab_size=48)

  def setUp(self):
    super().setUp()
    # Per test: tf.test.TestCase clears the eager resources between tests.
    self.tokenizer = tokenizer_lib.Tokenizer(self.model_path)

  def test_special_ids(self):
    self.assertEqual(self.tokenizer.blank_id, 0)
    self.assertEqual(self.tokenizer.id_to_piece[0], '<blank>')
    self.assertEqual(self.tokenizer.id_to_piece[1], '<unk>')
    self.assertEqual(self.tokenizer.vocab_size, 48)
    self.assertLen(self.tokenizer.id_to_piece, 48)

  def test_round_trip_equals_normalized_text_and_no_blank_ids(self):
    texts = _random_sentences(10, seed=7) + ["SHE'S BY THE SHORE, DOG."]
    ids = self.tokenizer.tokenize(tf.constant(texts))
    self.assertIsInstance(ids, tf.RaggedTensor)
    self.assertEqual(ids.dtype, tf.int32)
    self.assertGreater(tf.reduce_min(ids.flat_values).numpy(), 0)
    decoded = [t.decode() for t in self.tokenizer.detokenize(ids).numpy()]
    self.assertEqual(decoded,
                     [normalization.normalize_text(t) for t in texts])

  def test_scalar_and_zero_padded_dense_ids(self):
    text = 'the lazy dog'
    ids = self.tokenizer.tokenize(tf.constant(text))
    self.assertEqual(ids.shape.rank, 1)
    self.assertEqual(self.tokenizer.detokenize(ids).numpy().decode(), text)
    padded = tf.pad(ids, [[2, 3]])[tf.newaxis]  # Blanks anywhere are skipped.
    self.assertEqual(self.tokenizer.detokenize(padded).numpy()[0].decode(),
                     text)

  def test_from_model_bytes_in_tf_function(self):
    tokenizer = tokenizer_lib.Tokenizer(
        model_bytes=self.tokenizer.model_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(texts):
      return tokenizer.detokenize(tokenizer.tokenize(texts).to_tensor())

    self.assertEqual(round_trip(tf.constant(['FOX, HOME'])).numpy()[0],
                     b'fox home')

  def test_cli_reads_tfrecords_and_is_deterministic(self):
    record_path = os.path.join(self.get_temp_dir(), 'shard-0.tfrecord')
    with tf.io.TFRecordWriter(record_path) as writer:
      for index, text in enumerate(_random_sentences(40, seed=3) + ['']):
        writer.write(tfrecord_schema.make_example(
            f'utt{index}', np.zeros(10, np.int16), text).SerializeToString())
    vocabularies, model_bytes = [], []
    for run in range(2):
      prefix = os.path.join(self.get_temp_dir(), f'cli{run}', 'spm')
      result = subprocess.run(
          [sys.executable, '-m', 'tfrecords_tools.train_tokenizer',
           f'--input={record_path}', f'--output_prefix={prefix}',
           '--vocab_size=40', '--model_type=bpe'],
          capture_output=True, text=True, check=False, timeout=120)
      self.assertEqual(result.returncode, 0, result.stderr[-2000:])
      with open(prefix + '.vocab') as vocab_file:
        vocabularies.append(vocab_file.read())
      with open(prefix + '.model', 'rb') as model_file:
        model_bytes.append(model_file.read())
    # Pieces and scores match (the model proto also embeds the prefix).
    self.assertEqual(vocabularies[0], vocabularies[1])
    self.assertEqual(tokenizer_lib.Tokenizer(
        model_bytes=model_bytes[0]).vocab_size, 40)

  def test_cli_bad_input_is_one_line_error(self):
    result = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.train_tokenizer',
         '--input=/nonexistent/*.tfrecord', '--output_prefix=/tmp/x'],
        capture_output=True, text=True, check=False, timeout=120)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn('error: No files match', result.stderr)
    self.assertNotIn('Traceback', result.stderr)


class CharacterTokenizerTest(tf.test.TestCase):

  def test_one_id_per_character_and_round_trip(self):
    sentences = sorted({normalization.normalize_text(s)
                        for s in _random_sentences(30, seed=2)})
    model_path = train_tokenizer.train_sentencepiece(
        sentences, os.path.join(self.get_temp_dir(), 'chars'),
        vocab_size=100, model_type='char')
    tokenizer = tokenizer_lib.Tokenizer(model_path)
    # blank, unk, the word boundary and each character the normalizer keeps
    # once: 100 is a bound.
    self.assertEqual(tokenizer.vocab_size, len(normalization.ALPHABET) + 3)
    self.assertEqual(set(tokenizer.id_to_piece[3:]) | {'\u2581'},
                     set(normalization.ALPHABET) | {'\u2581'})
    text = 'she sells sea shells'
    ids = tokenizer.tokenize(tf.constant(text)).numpy()
    self.assertLen(ids, len(text) + 1)  # Leading '▁' and one id per letter.
    self.assertEqual(tokenizer.detokenize(ids).numpy().decode(), text)

  def test_characters_missing_from_the_training_text_have_ids(self):
    # No q, j, z, x, v or apostrophe in the training text.
    sentences = ['the cat sat on the mat', 'a dog ran home fast',
                 'she sells sea shells by the shore']
    absent = set(normalization.ALPHABET) - set(''.join(sentences))
    self.assertContainsSubset({'q', 'j', 'z', 'x', 'v', "'"}, absent)
    for model_type, vocab_size in (('char', 100), ('unigram', 34)):
      model_path = train_tokenizer.train_sentencepiece(
          sentences * 10, os.path.join(self.get_temp_dir(), model_type),
          vocab_size=vocab_size, model_type=model_type)
      tokenizer = tokenizer_lib.Tokenizer(model_path)
      text = "don't quiz jovial zebras on the mat"
      ids = tokenizer.tokenize(tf.constant(text)).numpy()
      self.assertNotIn(tokenizer_lib.UNK_ID, ids, model_type)
      self.assertEqual(tokenizer.detokenize(ids).numpy().decode(), text)

  def test_unknown_model_type_is_rejected(self):
    with self.assertRaisesRegex(ValueError, 'model_type must be one of'):
      train_tokenizer.train_sentencepiece(['a b'], os.path.join(
          self.get_temp_dir(), 'x'), model_type='word')


if __name__ == '__main__':
  tf.test.main()
