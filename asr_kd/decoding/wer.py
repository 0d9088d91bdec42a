"""Word and character error counts in TF, plus a corpus-level Python helper.

Errors are Levenshtein distances (substitutions + deletions + insertions)
from `tf.edit_distance(..., normalize=False)` on word (or character)
sequences. Text is split on whitespace, so runs of spaces and leading or
trailing spaces do not count; characters are counted after collapsing
whitespace runs to one space (spaces between words count as characters, as
in jiwer's CER).
"""

from typing import Sequence, Tuple

import tensorflow as tf


def _error_counts(hypothesis_units: tf.RaggedTensor,
                  reference_units: tf.RaggedTensor) -> Tuple[tf.Tensor,
                                                             tf.Tensor]:
  """Edit distance and reference length of ragged [B, (units)] strings."""
  errors = tf.edit_distance(hypothesis_units.to_sparse(),
                            reference_units.to_sparse(), normalize=False)
  return (tf.cast(errors, tf.int64),
          tf.cast(reference_units.row_lengths(), tf.int64))


def word_error_counts(hyp_texts: tf.Tensor,
                      ref_texts: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Word-level edit distances.

  Args:
    hyp_texts: string [B] hypotheses.
    ref_texts: string [B] references.

  Returns:
    (errors int64 [B], ref_words int64 [B]).
  """
  return _error_counts(tf.strings.split(hyp_texts),
                       tf.strings.split(ref_texts))


def _characters(texts: tf.Tensor) -> tf.RaggedTensor:
  words = tf.strings.split(texts)
  return tf.strings.unicode_split(
      tf.strings.reduce_join(words, axis=-1, separator=' '), 'UTF-8')


def char_error_counts(hyp_texts: tf.Tensor,
                      ref_texts: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Character-level (UTF-8 code point) edit distances.

  Args:
    hyp_texts: string [B] hypotheses.
    ref_texts: string [B] references.

  Returns:
    (errors int64 [B], ref_chars int64 [B]).
  """
  return _error_counts(_characters(hyp_texts), _characters(ref_texts))


def corpus_error_rate(hyp_texts: Sequence[str], ref_texts: Sequence[str],
                      unit: str = 'word') -> float:
  """Total errors / total reference units over a corpus.

  Args:
    hyp_texts: Hypotheses.
    ref_texts: References, as many as `hyp_texts`.
    unit: 'word' (WER) or 'char' (CER).

  Returns:
    The error rate as a Python float (can exceed 1 with insertions).

  Raises:
    ValueError: On mismatched lengths, an unknown unit, or references with
      no words at all (the rate is undefined).
  """
  if len(hyp_texts) != len(ref_texts):
    raise ValueError(f'Got {len(hyp_texts)} hypotheses for {len(ref_texts)} '
                     'references.')
  counters = {'word': word_error_counts, 'char': char_error_counts}
  if unit not in counters:
    raise ValueError(f'Unknown unit {unit!r}; expected one of '
                     f'{sorted(counters)}.')
  errors, ref_units = counters[unit](
      tf.constant(list(hyp_texts), tf.string),
      tf.constant(list(ref_texts), tf.string))
  total_ref_units = int(tf.reduce_sum(ref_units))
  if not total_ref_units:
    raise ValueError(f'The references contain no {unit}s; the error rate is '
                     'undefined.')
  return int(tf.reduce_sum(errors)) / total_ref_units


def corpus_wer(hyp_texts: Sequence[str], ref_texts: Sequence[str]) -> float:
  """Corpus word error rate; see `corpus_error_rate`."""
  return corpus_error_rate(hyp_texts, ref_texts, unit='word')


def corpus_cer(hyp_texts: Sequence[str], ref_texts: Sequence[str]) -> float:
  """Corpus character error rate; see `corpus_error_rate`."""
  return corpus_error_rate(hyp_texts, ref_texts, unit='char')
