"""Tests for asr_kd.decoding.beam_search."""

import collections
import itertools

import numpy as np
import tensorflow as tf

from asr_kd.decoding import beam_search
from asr_kd.decoding import greedy
from tests import greedy_decoding_test

ENCODER_DIM = greedy_decoding_test.ENCODER_DIM
VOCAB_SIZE = greedy_decoding_test.VOCAB_SIZE


class _ReferenceModel:
  """float64 joint log-probs with the prediction output cached per prefix."""

  def __init__(self, prediction, joint):
    self._prediction = prediction
    self._joint_weights = greedy_decoding_test.numpy_joint_weights(joint)
    self._outputs = {}

  def log_probs(self, encoder_frame, prefix):
    if prefix not in self._outputs:
      outputs = self._prediction(np.array([prefix], np.int32).reshape(1, -1))
      self._outputs[prefix] = outputs.numpy()[0, -1].astype(np.float64)
    return greedy_decoding_test.numpy_joint_log_probs(
        self._joint_weights, encoder_frame, self._outputs[prefix])


def brute_force_prefix_scores(reference, encoder_outputs, length):
  """log P(labels) summed over all one-symbol-per-frame alignments.

  Enumerates every alignment (one symbol, blank included, per frame).

  Returns:
    dict label tuple -> float64 log-probability.
  """
  path_scores = collections.defaultdict(list)
  for alignment in itertools.product(range(VOCAB_SIZE), repeat=length):
    prefix, path_score = (), 0.0
    for frame, symbol in enumerate(alignment):
      path_score += reference.log_probs(encoder_outputs[frame], prefix)[symbol]
      if symbol:
        prefix += (symbol,)
    path_scores[prefix].append(path_score)
  return {prefix: np.logaddexp.reduce(scores)
          for prefix, scores in path_scores.items()}


def greedy_path_score(reference, encoder_outputs, length):
  """Tokens and log-prob of the one-symbol-per-frame greedy path."""
  prefix, path_score = (), 0.0
  for frame in range(length):
    log_probs = reference.log_probs(encoder_outputs[frame], prefix)
    symbol = int(np.argmax(log_probs))
    path_score += log_probs[symbol]
    if symbol:
      prefix += (symbol,)
  return prefix, path_score


class BeamSearchTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(11)
    self._encoder_outputs = rng.normal(size=[3, 3, ENCODER_DIM]).astype(
        np.float32)
    self._encoder_lengths = np.array([3, 2, 0], np.int32)

  def test_exhaustive_beam_matches_brute_force(self):
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm')
    reference = _ReferenceModel(prediction, joint)
    # 31 = number of label prefixes after 2 frames with 5 tokens, so no
    # hypothesis is ever pruned and the beam must be exact.
    beam = beam_search.beam_search(self._encoder_outputs,
                                   self._encoder_lengths, prediction, joint,
                                   beam_size=31)
    for index, length in enumerate(self._encoder_lengths):
      expected = sorted(
          brute_force_prefix_scores(reference, self._encoder_outputs[index],
                                    length).items(),
          key=lambda item: -item[1])[:31]
      found = [
          (tuple(row[:row_length]), score)
          for row, row_length, score in zip(beam.tokens[index].numpy(),
                                            beam.lengths[index].numpy(),
                                            beam.scores[index].numpy())
          if np.isfinite(score)
      ]
      self.assertLen(found, len(expected))
      self.assertEqual(dict(found).keys(), dict(expected).keys())
      for prefix, score in expected:
        self.assertAllClose(dict(found)[prefix], score, atol=1e-4)
      self.assertAllClose([score for _, score in found],
                          [score for _, score in expected], atol=1e-4)
      # The best prefix beats (or equals) the greedy path's probability.
      _, greedy_score = greedy_path_score(reference,
                                          self._encoder_outputs[index], length)
      self.assertGreaterEqual(found[0][1], greedy_score - 1e-5)

  def test_beam_one_equals_greedy(self):
    prediction, joint = greedy_decoding_test.build_tiny_model('stateless')
    reference = _ReferenceModel(prediction, joint)
    tokens, lengths, scores = beam_search.beam_search_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint,
        beam_size=1)
    greedy_tokens, greedy_lengths = greedy.greedy_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint,
        max_symbols_per_frame=1)
    self.assertAllEqual(tokens, greedy_tokens[:, :tokens.shape[1]])
    self.assertAllEqual(lengths, greedy_lengths)
    for index, length in enumerate(self._encoder_lengths):
      _, greedy_score = greedy_path_score(reference,
                                          self._encoder_outputs[index], length)
      self.assertAllClose(scores[index], greedy_score, atol=1e-4)

  def test_small_beam_compiles_and_beats_greedy_path(self):
    rng = np.random.default_rng(4)
    encoder_outputs = rng.normal(size=[2, 9, ENCODER_DIM]).astype(np.float32)
    encoder_lengths = np.array([9, 6], np.int32)
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm', seed=2)
    reference = _ReferenceModel(prediction, joint)

    @tf.function(jit_compile=True)
    def decode(encoder_outputs, encoder_lengths):
      return beam_search.beam_search_decode(
          encoder_outputs, encoder_lengths, prediction, joint, beam_size=4)

    tokens, lengths, scores = decode(encoder_outputs, encoder_lengths)
    eager = beam_search.beam_search_decode(
        encoder_outputs, encoder_lengths, prediction, joint, beam_size=4)
    self.assertAllEqual(tokens, eager[0])
    self.assertAllEqual(lengths, eager[1])
    self.assertAllClose(scores, eager[2], atol=1e-5)
    for index, length in enumerate(encoder_lengths):
      greedy_prefix, greedy_score = greedy_path_score(
          reference, encoder_outputs[index], length)
      self.assertGreaterEqual(float(scores[index]), greedy_score - 1e-5)
      self.assertNotEmpty(greedy_prefix)

  def test_length_normalization_prefers_per_token_score(self):
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm')
    beam = beam_search.beam_search(self._encoder_outputs,
                                   self._encoder_lengths, prediction, joint,
                                   beam_size=6)
    _, lengths, scores = beam_search.beam_search_decode(
        self._encoder_outputs, self._encoder_lengths, prediction, joint,
        beam_size=6, length_normalization=True)
    normalized = beam.scores.numpy() / np.maximum(beam.lengths.numpy(), 1)
    best = np.argmax(normalized, axis=1)
    self.assertAllEqual(lengths, beam.lengths.numpy()[np.arange(3), best])
    self.assertAllClose(scores, beam.scores.numpy()[np.arange(3), best])

  def test_rejects_multiple_symbols_per_frame(self):
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm')
    with self.assertRaisesRegex(ValueError, 'one symbol per frame'):
      beam_search.beam_search_decode(self._encoder_outputs,
                                     self._encoder_lengths, prediction, joint,
                                     max_symbols_per_frame=2)


if __name__ == '__main__':
  tf.test.main()
