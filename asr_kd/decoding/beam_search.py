"""Batched RNN-T beam search in TF ops, several symbols per frame.

Time-synchronous search in the RNN-T lattice (the "time synchronous decoding"
of Saon et al., ICASSP 2020): at encoder frame t every hypothesis may emit up
to `max_symbols_per_frame` tokens and then blank, which moves it to frame
t + 1. Each frame runs `max_symbols_per_frame + 1` expansions of the "open"
hypotheses (still at frame t): their blank-extensions join the "closed" set
(done with frame t), their token-extensions become the next open set (the
best `beam_size` of them). Closed hypotheses with the same label prefix are
merged by log-add of their scores, so a hypothesis' score is the
log-probability of its label prefix summed over all its alignments (each
frame ending in blank) that survived pruning; with a beam wide enough to keep
every prefix the scores are exact. The best `beam_size` closed hypotheses are
the beam for the next frame.

Several symbols per frame matter for fine output units: a character
vocabulary at 40 ms encoder frames needs about 0.8 symbols per frame on
average and more than one in places, which a one-symbol-per-frame search
cannot emit. The frame loop is one `tf.while_loop` with fixed shapes (the
expansions inside a frame are unrolled), so the search compiles with XLA.

Length handling: scores are raw log-probabilities, which favour short
outputs; `length_normalization=True` picks the final hypothesis by
score / max(1, length) instead (the returned score stays the raw one).
"""

from typing import Any, NamedTuple, Optional, Tuple

import tensorflow as tf

from asr_kd.decoding import greedy

_NEG_INF = float('-inf')


class BeamSearchResult(NamedTuple):
  """The whole final beam, best first (by raw score).

  Attributes:
    tokens: int32 [B, K, L] label sequences, 0-padded.
    lengths: int32 [B, K] valid tokens per hypothesis.
    scores: float32 [B, K] log-probabilities; -inf marks empty beam slots
      (when fewer than K distinct prefixes exist).
  """
  tokens: tf.Tensor
  lengths: tf.Tensor
  scores: tf.Tensor


class _Hypotheses(NamedTuple):
  """K hypotheses per sequence; the prediction network side is flat [B*K]."""
  tokens: tf.Tensor  # int32 [B, K, L], 0-padded.
  lengths: tf.Tensor  # int32 [B, K].
  prefix_hashes: tf.Tensor  # int64 [B, K], see _append_to_hash.
  scores: tf.Tensor  # float32 [B, K]; -inf = empty slot.
  prediction_projections: tf.Tensor  # [B * K, J].
  prediction_state: Any  # Nest of [B * K, ...].


def _gather(hypotheses: _Hypotheses, indices: tf.Tensor,
            scores: tf.Tensor) -> _Hypotheses:
  """Rows `indices` [B, K'] of each sequence's hypotheses, with new scores."""
  num_rows = tf.shape(hypotheses.scores)[1]
  flat_indices = tf.reshape(
      indices + tf.range(tf.shape(indices)[0])[:, tf.newaxis] * num_rows, [-1])
  projections, state = tf.nest.map_structure(
      lambda values: tf.gather(values, flat_indices),
      (hypotheses.prediction_projections, hypotheses.prediction_state))
  return _Hypotheses(tf.gather(hypotheses.tokens, indices, batch_dims=1),
                     tf.gather(hypotheses.lengths, indices, batch_dims=1),
                     tf.gather(hypotheses.prefix_hashes, indices, batch_dims=1),
                     scores, projections, state)


def _concat(first: _Hypotheses, second: _Hypotheses) -> _Hypotheses:
  """Both sets side by side: [B, K1 + K2] (flat rows interleaved per b)."""
  batch_size = tf.shape(first.scores)[0]

  def concat_flat(a, b):
    a = tf.reshape(a, tf.concat([[batch_size, -1], tf.shape(a)[1:]], 0))
    b = tf.reshape(b, tf.concat([[batch_size, -1], tf.shape(b)[1:]], 0))
    both = tf.concat([a, b], axis=1)
    return tf.reshape(both, tf.concat([[-1], tf.shape(both)[2:]], 0))

  projections, state = tf.nest.map_structure(
      concat_flat,
      (first.prediction_projections, first.prediction_state),
      (second.prediction_projections, second.prediction_state))
  return _Hypotheses(
      *[tf.concat([a, b], 1) for a, b in zip(first[:4], second[:4])],
      projections, state)


def _append_to_hash(prefix_hashes: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  """Polynomial hash of a label prefix, extended by one label.

  Comparing (hash, length) instead of whole [L] token rows keeps prefix
  merging O(K^2) per expansion; int64 arithmetic wraps around, and two
  different prefixes of one beam share a hash with probability ~K^2 / 2^64.
  """
  return prefix_hashes * 1000003 + tf.cast(labels, tf.int64)


def _merge_identical_prefixes(prefix_hashes: tf.Tensor, lengths: tf.Tensor,
                              scores: tf.Tensor) -> tf.Tensor:
  """Log-adds the scores of hypotheses with equal label prefixes.

  Args:
    prefix_hashes: int64 [B, N] hashes of the prefixes.
    lengths: int32 [B, N] prefix lengths.
    scores: [B, N]; -inf marks empty slots.

  Returns:
    [B, N] scores: the first hypothesis of each group of equal prefixes
    holds the group's log-sum, the others -inf.
  """
  is_live = tf.math.is_finite(scores)
  same = (tf.equal(prefix_hashes[:, :, tf.newaxis],
                   prefix_hashes[:, tf.newaxis, :]) &
          tf.equal(lengths[:, :, tf.newaxis], lengths[:, tf.newaxis, :]) &
          is_live[:, :, tf.newaxis] & is_live[:, tf.newaxis, :])
  # same[b, i, j]; merged[b, j] = log-sum over i of scores[b, i].
  merged = tf.reduce_logsumexp(
      tf.where(same, scores[:, :, tf.newaxis], _NEG_INF), axis=1)
  rows = tf.range(tf.shape(scores)[1])
  earlier = rows[:, tf.newaxis] < rows[tf.newaxis, :]  # [i, j]: i < j.
  is_repeat = tf.reduce_any(same & earlier[tf.newaxis], axis=1)
  return tf.where(is_repeat | ~is_live, _NEG_INF, merged)


def _extend_by_tokens(hypotheses: _Hypotheses, log_probs: tf.Tensor,
                      beam_size: int, prediction_network,
                      joint_network) -> _Hypotheses:
  """The best `beam_size` one-token extensions; blank is not a token here."""
  batch_size = tf.shape(log_probs)[0]
  num_tokens = tf.shape(log_probs)[2] - 1
  max_length = tf.shape(hypotheses.tokens)[2]
  candidate_scores = (hypotheses.scores[:, :, tf.newaxis] +
                      log_probs[:, :, 1:])
  scores, best = tf.math.top_k(
      tf.reshape(candidate_scores, [batch_size, -1]), k=beam_size)
  parents = best // num_tokens
  labels = best % num_tokens + 1
  extended = _gather(hypotheses, parents, scores)
  # A token past the buffer end is dropped (one_hot of L is all zeros).
  tokens = extended.tokens + tf.one_hot(
      extended.lengths, max_length, dtype=tf.int32) * labels[:, :, tf.newaxis]
  outputs, state = prediction_network.step(tf.reshape(labels, [-1]),
                                           extended.prediction_state)
  return _Hypotheses(tokens, extended.lengths + 1,
                     _append_to_hash(extended.prefix_hashes, labels), scores,
                     joint_network.project_prediction(outputs), state)


def _best(hypotheses: _Hypotheses, beam_size: int) -> _Hypotheses:
  scores, best = tf.math.top_k(hypotheses.scores, k=beam_size)
  return _gather(hypotheses, best, scores)


def beam_search(encoder_outputs: tf.Tensor,
                encoder_lengths: tf.Tensor,
                prediction_network,
                joint_network,
                beam_size: int = 8,
                max_symbols_per_frame: int = 3,
                max_output_length: Optional[int] = None) -> BeamSearchResult:
  """Runs the beam search and returns the whole final beam.

  Args:
    encoder_outputs: float [B, T, D].
    encoder_lengths: int [B]; frames at or past a length leave the beam as is.
    prediction_network: A `PredictionNetwork`.
    joint_network: A `JointNetwork`.
    beam_size: Number K of hypotheses kept (4-8 is typical).
    max_symbols_per_frame: Most tokens a hypothesis emits at one frame (S).
      Each frame costs S + 1 joint and S prediction-network evaluations of
      the beam.
    max_output_length: Token buffer size L; None means T * S (never
      overflows). With a smaller L, longer hypotheses are cut to L tokens
      (scores and merging still see the whole prefix).

  Returns:
    A `BeamSearchResult`, hypotheses sorted best first.

  Raises:
    ValueError: If `beam_size` or `max_symbols_per_frame` is < 1.
  """
  if beam_size < 1:
    raise ValueError(f'beam_size must be >= 1, got {beam_size}.')
  if max_symbols_per_frame < 1:
    raise ValueError('max_symbols_per_frame must be >= 1, got '
                     f'{max_symbols_per_frame}.')
  batch_size = tf.shape(encoder_outputs)[0]
  num_frames = tf.shape(encoder_outputs)[1]
  if max_output_length is None:
    max_output_length = num_frames * max_symbols_per_frame
  encoder_lengths = tf.cast(encoder_lengths, tf.int32)
  encoder_projections = joint_network.project_encoder(encoder_outputs)

  prediction_projections, prediction_state = greedy.start_decoder(
      batch_size * beam_size, prediction_network, joint_network)
  # One live empty hypothesis; the other slots are empty (-inf).
  scores = tf.tile(
      tf.concat([[0.0], tf.fill([beam_size - 1], _NEG_INF)], 0)[tf.newaxis],
      [batch_size, 1])
  beam = _Hypotheses(
      tf.zeros([batch_size, beam_size, max_output_length], tf.int32),
      tf.zeros([batch_size, beam_size], tf.int32),
      tf.zeros([batch_size, beam_size], tf.int64), scores,
      prediction_projections, prediction_state)
  empty_scores = tf.fill([batch_size, beam_size], _NEG_INF)

  def frame_body(frame, beam):
    frame_projection = tf.gather(encoder_projections, frame,
                                 axis=1)[:, tf.newaxis, :]
    closed = beam._replace(scores=empty_scores)
    expanding = beam
    for expansion in range(max_symbols_per_frame + 1):
      log_probs = tf.nn.log_softmax(joint_network.joint_from_projections(
          frame_projection,
          tf.reshape(expanding.prediction_projections,
                     [batch_size, beam_size, -1])))
      both = _concat(closed, expanding._replace(
          scores=expanding.scores + log_probs[:, :, 0]))
      closed = _best(both._replace(scores=_merge_identical_prefixes(
          both.prefix_hashes, both.lengths, both.scores)), beam_size)
      if expansion < max_symbols_per_frame:
        expanding = _extend_by_tokens(expanding, log_probs, beam_size,
                                      prediction_network, joint_network)
    # Past its length a sequence keeps its beam.
    frame_is_valid = frame < encoder_lengths
    flat_is_valid = tf.repeat(frame_is_valid, beam_size)
    return frame + 1, _Hypotheses(
        *greedy.select_rows(frame_is_valid, tuple(closed[:4]),
                            tuple(beam[:4])),
        *greedy.select_rows(flat_is_valid, tuple(closed[4:]),
                            tuple(beam[4:])))

  _, beam = tf.while_loop(lambda frame, beam: frame < num_frames, frame_body,
                          (tf.constant(0), beam))
  return BeamSearchResult(beam.tokens,
                          tf.minimum(beam.lengths, max_output_length),
                          beam.scores)


def beam_search_decode(encoder_outputs: tf.Tensor,
                       encoder_lengths: tf.Tensor,
                       prediction_network,
                       joint_network,
                       beam_size: int = 8,
                       max_symbols_per_frame: int = 3,
                       max_output_length: Optional[int] = None,
                       length_normalization: bool = False
                      ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Beam search returning the best hypothesis per sequence.

  Args:
    encoder_outputs: float [B, T, D].
    encoder_lengths: int [B].
    prediction_network: A `PredictionNetwork`.
    joint_network: A `JointNetwork`.
    beam_size: Number of hypotheses kept.
    max_symbols_per_frame: Most tokens per hypothesis and frame.
    max_output_length: Token buffer size L; None means T * S.
    length_normalization: Pick the hypothesis maximizing
      score / max(1, length) instead of the raw score.

  Returns:
    (tokens int32 [B, L] 0-padded, token_lengths int32 [B],
     scores float32 [B] raw log-probability of the returned hypothesis).
  """
  beam = beam_search(encoder_outputs, encoder_lengths, prediction_network,
                     joint_network, beam_size, max_symbols_per_frame,
                     max_output_length)
  ranking = beam.scores
  if length_normalization:
    ranking /= tf.cast(tf.maximum(beam.lengths, 1), ranking.dtype)
  best = tf.argmax(ranking, axis=1, output_type=tf.int32)
  return (tf.gather(beam.tokens, best, batch_dims=1),
          tf.gather(beam.lengths, best, batch_dims=1),
          tf.gather(beam.scores, best, batch_dims=1))
