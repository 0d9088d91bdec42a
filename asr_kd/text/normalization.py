"""The one text normalization used for training, pseudo-labels, scoring.

Rule (applied in this order):
  1. lowercase (`tf.strings.lower`; ASCII letters, which is what LibriSpeech
     transcripts use);
  2. every character that is not `[a-z']` becomes a space: punctuation,
     digits and non-ASCII letters are removed. Digits are NOT verbalized
     ("3" does not become "three"); corpora in this project spell numbers out;
  3. runs of apostrophes collapse to one, and an apostrophe is kept only
     inside a word (letters on both sides): "don't" stays, "'tis" -> "tis",
     "dogs'" -> "dogs";
  4. runs of spaces collapse to one space, leading/trailing spaces are
     stripped.

The rule is written once, in TF string ops, so it runs inside tf.data and
inside exported graphs; `normalize_text` runs the same function eagerly for
Python callers.
"""

import string

import tensorflow as tf

# Every character a normalized text can hold besides the space; a tokenizer
# must cover all of them (tfrecords_tools.train_tokenizer).
ALPHABET = string.ascii_lowercase + "'"


def normalize(text: tf.Tensor) -> tf.Tensor:
  """Normalizes a string tensor of any shape, element-wise.

  Args:
    text: tf.string tensor (scalar, [B] or any shape), UTF-8.

  Returns:
    tf.string tensor of the same shape holding normalized text.
  """
  text = tf.strings.lower(text)
  text = tf.strings.regex_replace(text, r"[^a-z']", ' ')
  text = tf.strings.regex_replace(text, r"'+", "'")
  # RE2 has no look-around, so word-boundary apostrophes are found by the
  # space (or string edge, made a space by padding) next to them.
  text = tf.strings.join([' ', text, ' '])
  text = tf.strings.regex_replace(text, r" '", ' ')
  text = tf.strings.regex_replace(text, r"' ", ' ')
  text = tf.strings.regex_replace(text, r' +', ' ')
  return tf.strings.strip(text)


def normalize_text(text: str) -> str:
  """Normalizes one Python string with the same TF function as `normalize`.

  Args:
    text: a Python string.

  Returns:
    The normalized string.
  """
  return normalize(tf.constant(text, tf.string)).numpy().decode('utf-8')
