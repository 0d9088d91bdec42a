"""Tests for asr_kd.decoding.beam_search against float64 path enumeration."""

import collections
import itertools

import numpy as np
import tensorflow as tf

from asr_kd.decoding import beam_search
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


def frame_emissions(max_symbols_per_frame):
  """Every token sequence one frame may emit before its blank."""
  tokens = range(1, VOCAB_SIZE)
  return [emission for count in range(max_symbols_per_frame + 1)
          for emission in itertools.product(tokens, repeat=count)]


def brute_force_prefix_scores(reference, encoder_outputs, length,
                              max_symbols_per_frame):
  """log P(labels) summed over every RNN-T alignment of `length` frames.

  An alignment emits 0..max_symbols_per_frame tokens at each frame and then
  blank, which moves it to the next frame.

  Returns:
    dict label tuple -> float64 log-probability.
  """
  path_scores = collections.defaultdict(list)
  emissions = frame_emissions(max_symbols_per_frame)
  for alignment in itertools.product(emissions, repeat=length):
    prefix, path_score = (), 0.0
    for frame, emission in enumerate(alignment):
      for token in emission:
        path_score += reference.log_probs(encoder_outputs[frame], prefix)[token]
        prefix += (token,)
      path_score += reference.log_probs(encoder_outputs[frame], prefix)[0]
    path_scores[prefix].append(path_score)
  return {prefix: np.logaddexp.reduce(scores)
          for prefix, scores in path_scores.items()}


def greedy_path(reference, encoder_outputs, length, max_symbols_per_frame):
  """Tokens and log-prob of the greedy alignment (a blank closes each frame)."""
  prefix, path_score = (), 0.0
  for frame in range(length):
    for _ in range(max_symbols_per_frame):
      log_probs = reference.log_probs(encoder_outputs[frame], prefix)
      token = int(np.argmax(log_probs))
      if not token:
        break
      path_score += log_probs[token]
      prefix += (token,)
    path_score += reference.log_probs(encoder_outputs[frame], prefix)[0]
  return prefix, path_score


def beam_entries(beam, index):
  """[(label tuple, score)] of sequence `index`'s live hypotheses, in order."""
  return [(tuple(row[:row_length]), score)
          for row, row_length, score in zip(beam.tokens[index].numpy(),
                                            beam.lengths[index].numpy(),
                                            beam.scores[index].numpy())
          if np.isfinite(score)]


class BeamSearchTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(11)
    self._encoder_outputs = rng.normal(size=[3, 3, ENCODER_DIM]).astype(
        np.float32)
    self._encoder_lengths = np.array([3, 2, 0], np.int32)

  def _assert_exhaustive_beam_is_exact(self, max_symbols_per_frame,
                                       num_frames):
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm')
    reference = _ReferenceModel(prediction, joint)
    encoder_outputs = self._encoder_outputs[:, :num_frames]
    encoder_lengths = np.minimum(self._encoder_lengths, num_frames)
    # A beam as large as the number of reachable prefixes prunes nothing.
    num_tokens = VOCAB_SIZE - 1
    beam_size = sum(num_tokens**n for n in range(
        num_frames * max_symbols_per_frame + 1))
    beam = beam_search.beam_search(
        encoder_outputs, encoder_lengths, prediction, joint,
        beam_size=beam_size, max_symbols_per_frame=max_symbols_per_frame)
    for index, length in enumerate(encoder_lengths):
      expected = sorted(brute_force_prefix_scores(
          reference, encoder_outputs[index], length,
          max_symbols_per_frame).items(), key=lambda item: -item[1])
      found = beam_entries(beam, index)
      self.assertLen(found, len(expected))
      self.assertEqual(dict(found).keys(), dict(expected).keys())
      for prefix, score in expected:
        self.assertAllClose(dict(found)[prefix], score, atol=1e-4)
      # Best first.
      self.assertAllClose([score for _, score in found],
                          [score for _, score in expected], atol=1e-4)
      # Prefixes longer than the utterance has frames are found too.
      self.assertEqual(max(len(prefix) for prefix, _ in found),
                       length * max_symbols_per_frame)

  def test_exhaustive_beam_matches_brute_force_one_symbol(self):
    self._assert_exhaustive_beam_is_exact(max_symbols_per_frame=1,
                                          num_frames=3)

  def test_exhaustive_beam_matches_brute_force_two_symbols(self):
    self._assert_exhaustive_beam_is_exact(max_symbols_per_frame=2,
                                          num_frames=2)

  def test_small_beam_compiles_and_beats_greedy_path(self):
    rng = np.random.default_rng(4)
    encoder_outputs = rng.normal(size=[2, 9, ENCODER_DIM]).astype(np.float32)
    encoder_lengths = np.array([9, 6], np.int32)
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm', seed=2)
    reference = _ReferenceModel(prediction, joint)

    @tf.function(jit_compile=True)
    def decode(encoder_outputs, encoder_lengths):
      return beam_search.beam_search_decode(
          encoder_outputs, encoder_lengths, prediction, joint, beam_size=4,
          max_symbols_per_frame=2)

    tokens, lengths, scores = decode(encoder_outputs, encoder_lengths)
    eager = beam_search.beam_search_decode(
        encoder_outputs, encoder_lengths, prediction, joint, beam_size=4,
        max_symbols_per_frame=2)
    self.assertAllEqual(tokens, eager[0])
    self.assertAllEqual(lengths, eager[1])
    self.assertAllClose(scores, eager[2], atol=1e-5)
    for index, length in enumerate(encoder_lengths):
      greedy_prefix, greedy_score = greedy_path(
          reference, encoder_outputs[index], length, max_symbols_per_frame=2)
      self.assertNotEmpty(greedy_prefix)
      # The returned score sums over alignments, so it is at least that of
      # the greedy alignment's prefix unless pruning lost that prefix.
      self.assertGreaterEqual(float(scores[index]), greedy_score - 1e-5)

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

  def test_rejects_bad_sizes(self):
    prediction, joint = greedy_decoding_test.build_tiny_model('lstm')
    for kwargs in ({'max_symbols_per_frame': 0}, {'beam_size': 0}):
      with self.subTest(**kwargs):
        with self.assertRaisesRegex(ValueError, 'must be >= 1'):
          beam_search.beam_search_decode(self._encoder_outputs,
                                         self._encoder_lengths, prediction,
                                         joint, **kwargs)


if __name__ == '__main__':
  tf.test.main()
