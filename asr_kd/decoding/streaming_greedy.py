"""Streaming RNN-T greedy decoding, one encoder chunk at a time.

The decoder state carries the prediction network's state, its projected
output and the last emitted token between chunks, so decoding chunk by chunk
gives exactly the tokens of `greedy.greedy_decode` on the whole utterance.
`decode_chunk(..., unrolled=True)` runs the same search without a WHILE op
(for TFLite's int8 calibrator, see `_decode_chunk_unrolled`).
"""

from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

from asr_kd.configs import rnnt_config
from asr_kd.decoding import greedy


class StreamingGreedyDecoder:
  """Greedy decoder whose state survives between encoder chunks."""

  def __init__(self, prediction_network, joint_network,
               max_symbols_per_frame: int = 3):
    """Initializes the decoder.

    Args:
      prediction_network: A `PredictionNetwork`.
      joint_network: A `JointNetwork`.
      max_symbols_per_frame: Most non-blank tokens emitted per frame.
    """
    self._prediction_network = prediction_network
    self._joint_network = joint_network
    self._max_symbols_per_frame = max_symbols_per_frame

  def initial_decoder_state(self, batch_size) -> Dict[str, Any]:
    """Returns the state before any audio: only the start symbol was fed.

    Args:
      batch_size: Python int or scalar int32 tensor.

    Returns:
      A dict of fixed-shape tensors: 'prediction_state' (nested),
      'prediction_projection' [B, J] and 'last_token' int32 [B] (0 = none).
    """
    projections, state = greedy.start_decoder(
        batch_size, self._prediction_network, self._joint_network)
    return {
        'prediction_state': state,
        'prediction_projection': projections,
        'last_token': tf.zeros([batch_size], tf.int32),
    }

  def decode_chunk(self,
                   encoder_chunk: tf.Tensor,
                   decoder_state: Dict[str, Any],
                   chunk_lengths: Optional[tf.Tensor] = None,
                   unrolled: bool = False
                  ) -> Tuple[tf.Tensor, tf.Tensor, Dict[str, Any]]:
    """Decodes one chunk of encoder frames.

    Args:
      encoder_chunk: float [B, C, D] encoder outputs of this chunk.
      decoder_state: From `initial_decoder_state` or the previous chunk.
      chunk_lengths: Optional int [B] valid frames in this chunk (for the
        last, partial chunk); default C for every sequence.
      unrolled: search without a `tf.while_loop` (static C only; same
        tokens, see `_decode_chunk_unrolled`).

    Returns:
      (new_tokens int32 [B, C * max_symbols_per_frame] 0-padded,
       new_token_counts int32 [B], new_decoder_state).
    """
    batch_size = tf.shape(encoder_chunk)[0]
    num_frames = tf.shape(encoder_chunk)[1]
    if chunk_lengths is None:
      chunk_lengths = tf.fill([batch_size], num_frames)
    if unrolled:
      return self._decode_chunk_unrolled(encoder_chunk, decoder_state,
                                         chunk_lengths)
    result = greedy.greedy_search_frames(
        self._joint_network.project_encoder(encoder_chunk), chunk_lengths,
        decoder_state['prediction_projection'],
        decoder_state['prediction_state'], decoder_state['last_token'],
        self._prediction_network, self._joint_network,
        self._max_symbols_per_frame,
        num_frames * self._max_symbols_per_frame)
    new_state = {
        'prediction_state': result.prediction_state,
        'prediction_projection': result.prediction_projections,
        'last_token': result.last_tokens,
    }
    return result.tokens, result.token_counts, new_state

  def _decode_chunk_unrolled(self, encoder_chunk, decoder_state,
                             chunk_lengths):
    """`decode_chunk` without a `tf.while_loop`.

    Same results and tokens, for a static chunk length C: the frame and
    symbol loops are Python loops, so the graph has C * K joint and
    prediction steps (K = max_symbols_per_frame) and no WHILE op. A row that
    emits blank (or a frame past `chunk_lengths`) turns inactive and its
    remaining symbol steps leave the state unchanged, as the early exit of
    the loop in `greedy.greedy_search_frames` does.

    Why: TF 2.17's TFLite calibrator (full int8) reads the outputs of every
    op after it runs; a WHILE whose body passes a loop variable through
    unchanged (the captured encoder projections do) frees that output, and
    the calibrator's min/max logging reads freed memory and segfaults
    (github.com/tensorflow/tensorflow/issues/75140). The cost is the C * K
    steps being always computed, instead of 1 + emitted tokens per frame.
    """
    joint_network = self._joint_network
    prediction_network = self._prediction_network
    max_symbols = self._max_symbols_per_frame
    encoder_projections = joint_network.project_encoder(encoder_chunk)
    batch_size = tf.shape(encoder_chunk)[0]
    num_frames = encoder_chunk.shape[1]
    buffer_size = num_frames * max_symbols
    projections = decoder_state['prediction_projection']
    prediction_state = decoder_state['prediction_state']
    last_tokens = decoder_state['last_token']
    tokens = tf.zeros([batch_size, buffer_size], tf.int32)
    counts = tf.zeros([batch_size], tf.int32)
    for frame in range(num_frames):
      active = frame < tf.cast(chunk_lengths, tf.int32)
      for _ in range(max_symbols):
        logits = joint_network.joint_from_projections(
            encoder_projections[:, frame], projections)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        active = tf.logical_and(active,
                                tf.not_equal(best, rnnt_config.BLANK_ID))
        tokens += tf.one_hot(counts, buffer_size, dtype=tf.int32) * tf.where(
            active, best, 0)[:, tf.newaxis]
        counts += tf.cast(active, tf.int32)
        step_outputs, step_state = prediction_network.step(best,
                                                           prediction_state)
        projections, prediction_state, last_tokens = greedy.select_rows(
            active,
            (joint_network.project_prediction(step_outputs), step_state,
             best),
            (projections, prediction_state, last_tokens))
    return tokens, counts, {'prediction_state': prediction_state,
                            'prediction_projection': projections,
                            'last_token': last_tokens}
