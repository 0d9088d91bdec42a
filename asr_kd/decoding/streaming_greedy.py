"""Streaming RNN-T greedy decoding, one encoder chunk at a time.

The decoder state carries the prediction network's state, its projected
output and the last emitted token between chunks, so decoding chunk by chunk
gives exactly the tokens of `greedy.greedy_decode` on the whole utterance.
"""

from typing import Any, Dict, Optional, Tuple

import tensorflow as tf

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
                   chunk_lengths: Optional[tf.Tensor] = None
                  ) -> Tuple[tf.Tensor, tf.Tensor, Dict[str, Any]]:
    """Decodes one chunk of encoder frames.

    Args:
      encoder_chunk: float [B, C, D] encoder outputs of this chunk.
      decoder_state: From `initial_decoder_state` or the previous chunk.
      chunk_lengths: Optional int [B] valid frames in this chunk (for the
        last, partial chunk); default C for every sequence.

    Returns:
      (new_tokens int32 [B, C * max_symbols_per_frame] 0-padded,
       new_token_counts int32 [B], new_decoder_state).
    """
    batch_size = tf.shape(encoder_chunk)[0]
    num_frames = tf.shape(encoder_chunk)[1]
    if chunk_lengths is None:
      chunk_lengths = tf.fill([batch_size], num_frames)
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
