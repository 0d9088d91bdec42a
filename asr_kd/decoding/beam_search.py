"""Batched RNN-T beam search ("modified beam search") in TF ops.

Each hypothesis emits at most one symbol per encoder frame: at frame t every
hypothesis of the beam is extended by blank (same prefix) or by one token,
giving beam_size * V candidates, and the best beam_size survive. Two
candidates with the same label prefix (blank-extension of hypothesis "a b"
and token-extension of "a" by "b") are merged by log-add of their scores
before the selection, so a hypothesis' score is the log-probability of its
label prefix summed over all its alignments in this one-symbol-per-frame
lattice. This is the "modified beam search" of stateless transducers
(k2/icefall); it needs one joint and one prediction step per frame for the
whole beam, so it runs as a single `tf.while_loop` over frames with fixed
shapes and compiles with XLA.

Length handling: scores are raw log-probabilities, which favour short
outputs; `length_normalization=True` picks the final hypothesis by
score / max(1, length) instead (the returned score stays the raw one).
"""

from typing import NamedTuple, Optional, Tuple

import tensorflow as tf

from asr_kd.configs import rnnt_config
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


def _merge_identical_prefixes(candidate_scores: tf.Tensor, tokens: tf.Tensor,
                              lengths: tf.Tensor,
                              scores: tf.Tensor) -> tf.Tensor:
  """Log-adds candidates that end with the same label prefix.

  Within a beam of distinct prefixes, the only collision is blank-extension
  of hypothesis i with token-extension of its "parent" j, where prefix(i) =
  prefix(j) + [last token of i]. That token-extension's score is moved into
  candidate (i, blank) and the token-extension itself is removed.

  Args:
    candidate_scores: [B, K, V] score of extending hypothesis k by token v
      (v = 0: blank).
    tokens: int32 [B, K, L] current prefixes (0-padded).
    lengths: int32 [B, K] current prefix lengths.
    scores: [B, K] current scores (-inf for empty slots).

  Returns:
    [B, K, V] candidate scores after merging.
  """
  vocab_size = tf.shape(candidate_scores)[2]
  max_length = tf.shape(tokens)[2]
  last_tokens = tf.gather(tokens, tf.maximum(lengths - 1, 0), axis=2,
                          batch_dims=2)
  last_tokens = tf.where(lengths > 0, last_tokens, 0)  # [B, K]
  # Token ids are > 0, so prefixes are equal iff their 0-padded rows are.
  without_last = tokens * tf.cast(
      tf.sequence_mask(lengths - 1, max_length), tf.int32)
  same_prefix = tf.reduce_all(
      tf.equal(without_last[:, :, tf.newaxis, :], tokens[:, tf.newaxis, :, :]),
      axis=-1)  # [B, K(i), K(j)]
  is_live = tf.math.is_finite(scores)
  is_parent = (same_prefix &
               tf.equal(lengths[:, :, tf.newaxis], lengths[:, tf.newaxis] + 1) &
               is_live[:, :, tf.newaxis] & is_live[:, tf.newaxis, :])
  # parent_extension[b, j, i] = candidate_scores[b, j, last_tokens[b, i]].
  parent_extension = tf.gather(candidate_scores, last_tokens, axis=2,
                               batch_dims=1)
  merged_in = tf.reduce_logsumexp(
      tf.where(is_parent, tf.transpose(parent_extension, [0, 2, 1]), _NEG_INF),
      axis=2)  # [B, K(i)]
  blank_scores = tf.reduce_logsumexp(
      tf.stack([candidate_scores[:, :, 0], merged_in]), axis=0)
  removed = tf.einsum('bij,biv->bjv', tf.cast(is_parent, tf.float32),
                      tf.one_hot(last_tokens, vocab_size)) > 0
  candidate_scores = tf.where(removed, _NEG_INF, candidate_scores)
  return tf.concat([blank_scores[:, :, tf.newaxis], candidate_scores[:, :, 1:]],
                   axis=2)


def beam_search(encoder_outputs: tf.Tensor,
                encoder_lengths: tf.Tensor,
                prediction_network,
                joint_network,
                beam_size: int = 8,
                max_symbols_per_frame: int = 1,
                max_output_length: Optional[int] = None) -> BeamSearchResult:
  """Runs modified beam search and returns the whole final beam.

  Args:
    encoder_outputs: float [B, T, D].
    encoder_lengths: int [B]; frames at or past a length leave the beam as is.
    prediction_network: A `PredictionNetwork`.
    joint_network: A `JointNetwork`.
    beam_size: Number K of hypotheses kept (4-8 is typical).
    max_symbols_per_frame: Must be 1: this search emits at most one symbol
      per hypothesis and frame (the argument exists to make that explicit).
    max_output_length: Token buffer size L; None means T (never overflows).
      With a smaller L, longer hypotheses are cut and may be wrongly merged.

  Returns:
    A `BeamSearchResult`, hypotheses sorted best first.

  Raises:
    ValueError: If `max_symbols_per_frame` is not 1 or `beam_size` < 1.
  """
  if max_symbols_per_frame != 1:
    raise ValueError('Modified beam search emits one symbol per frame; got '
                     f'max_symbols_per_frame={max_symbols_per_frame}.')
  if beam_size < 1:
    raise ValueError(f'beam_size must be >= 1, got {beam_size}.')
  batch_size = tf.shape(encoder_outputs)[0]
  num_frames = tf.shape(encoder_outputs)[1]
  if max_output_length is None:
    max_output_length = num_frames
  encoder_lengths = tf.cast(encoder_lengths, tf.int32)
  encoder_projections = joint_network.project_encoder(encoder_outputs)
  vocab_size = joint_network.config.vocab_size
  flat_size = batch_size * beam_size

  # The prediction network state is kept flat, [B * K, ...].
  prediction_projections, prediction_state = greedy.start_decoder(
      flat_size, prediction_network, joint_network)
  tokens = tf.zeros([batch_size, beam_size, max_output_length], tf.int32)
  lengths = tf.zeros([batch_size, beam_size], tf.int32)
  # One live empty hypothesis; the other slots are empty (-inf).
  scores = tf.tile(
      tf.concat([[0.0], tf.fill([beam_size - 1], _NEG_INF)], 0)[tf.newaxis],
      [batch_size, 1])

  def frame_body(frame, tokens, lengths, scores, prediction_projections,
                 prediction_state):
    frame_projection = tf.gather(encoder_projections, frame, axis=1)
    logits = joint_network.joint_from_projections(
        frame_projection[:, tf.newaxis, :],
        tf.reshape(prediction_projections, [batch_size, beam_size, -1]))
    candidate_scores = scores[:, :, tf.newaxis] + tf.nn.log_softmax(logits)
    candidate_scores = _merge_identical_prefixes(candidate_scores, tokens,
                                                 lengths, scores)
    # Past its length a sequence only "extends" by blank at no cost, so the
    # selection below reproduces its beam unchanged.
    unchanged = tf.where(
        tf.equal(tf.range(vocab_size), rnnt_config.BLANK_ID),
        scores[:, :, tf.newaxis], _NEG_INF)
    frame_is_valid = frame < encoder_lengths
    candidate_scores = tf.where(frame_is_valid[:, tf.newaxis, tf.newaxis],
                                candidate_scores, unchanged)

    scores, best = tf.math.top_k(
        tf.reshape(candidate_scores, [batch_size, beam_size * vocab_size]),
        k=beam_size)
    parents = best // vocab_size
    new_labels = best % vocab_size
    emit = tf.logical_and(new_labels != rnnt_config.BLANK_ID,
                          tf.math.is_finite(scores))
    tokens = tf.gather(tokens, parents, batch_dims=1)
    lengths = tf.gather(lengths, parents, batch_dims=1)
    tokens += tf.one_hot(lengths, max_output_length, dtype=tf.int32) * (
        tf.where(emit, new_labels, 0)[:, :, tf.newaxis])
    lengths += tf.cast(emit, tf.int32)

    flat_parents = tf.reshape(
        parents + tf.range(batch_size)[:, tf.newaxis] * beam_size, [-1])
    prediction_projections, prediction_state = tf.nest.map_structure(
        lambda values: tf.gather(values, flat_parents),
        (prediction_projections, prediction_state))
    step_outputs, step_state = prediction_network.step(
        tf.reshape(new_labels, [-1]), prediction_state)
    prediction_projections, prediction_state = greedy.select_rows(
        tf.reshape(emit, [-1]),
        (joint_network.project_prediction(step_outputs), step_state),
        (prediction_projections, prediction_state))
    return (frame + 1, tokens, lengths, scores, prediction_projections,
            prediction_state)

  _, tokens, lengths, scores, _, _ = tf.while_loop(
      lambda frame, *unused_state: frame < num_frames, frame_body,
      (tf.constant(0), tokens, lengths, scores, prediction_projections,
       prediction_state))
  return BeamSearchResult(tokens, tf.minimum(lengths, max_output_length),
                          scores)


def beam_search_decode(encoder_outputs: tf.Tensor,
                       encoder_lengths: tf.Tensor,
                       prediction_network,
                       joint_network,
                       beam_size: int = 8,
                       max_symbols_per_frame: int = 1,
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
    max_symbols_per_frame: Must be 1 (see `beam_search`).
    max_output_length: Token buffer size L; None means T.
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
