"""Batched RNN-T greedy decoding in TF ops (tf.function / XLA friendly).

At each encoder frame the decoder takes the joint network's argmax; a non-blank
token is emitted and fed to the prediction network, and the same frame is
tried again, up to `max_symbols_per_frame` tokens; blank (id 0) moves on to the
next frame. Sequences are decoded together: a per-sequence mask decides who
emits, so all loop variables keep fixed shapes.
"""

from typing import Any, NamedTuple, Optional, Tuple

import tensorflow as tf

from asr_kd.configs import rnnt_config


class GreedyLoopResult(NamedTuple):
  """What `greedy_search_frames` returns.

  Attributes:
    tokens: int32 [B, L] emitted tokens, 0-padded.
    token_counts: int32 [B] number of valid entries of `tokens`.
    prediction_projections: [B, J] projected prediction output after the last
      emitted token (what the next frame's joint uses).
    prediction_state: Prediction-network state after the last emitted token.
    last_tokens: int32 [B] last emitted token (0 if none yet).
  """
  tokens: tf.Tensor
  token_counts: tf.Tensor
  prediction_projections: tf.Tensor
  prediction_state: Any
  last_tokens: tf.Tensor


def select_rows(mask: tf.Tensor, new_values: Any, old_values: Any) -> Any:
  """Per-row `tf.where` over a nested structure of [B, ...] tensors.

  Args:
    mask: bool [B]; True takes the row from `new_values`.
    new_values: Nested structure of tensors with leading dimension B.
    old_values: Same structure and shapes as `new_values`.

  Returns:
    The merged structure.
  """

  def select(new, old):
    row_mask = tf.reshape(mask, [-1] + [1] * (new.shape.rank - 1))
    return tf.where(row_mask, new, old)

  return tf.nest.map_structure(select, new_values, old_values)


def greedy_search_frames(encoder_projections: tf.Tensor,
                         encoder_lengths: tf.Tensor,
                         prediction_projections: tf.Tensor,
                         prediction_state: Any,
                         last_tokens: tf.Tensor,
                         prediction_network,
                         joint_network,
                         max_symbols_per_frame: int,
                         max_output_length) -> GreedyLoopResult:
  """Greedy search over frames, starting from a given decoder state.

  This is the loop shared by `greedy_decode` and the streaming decoder.

  Args:
    encoder_projections: [B, T, J], `joint_network.project_encoder` outputs.
    encoder_lengths: int32 [B]; frames at or past a length emit nothing.
    prediction_projections: [B, J] projected prediction output for the
      current label history.
    prediction_state: Prediction-network state matching that history.
    last_tokens: int32 [B] last emitted token (carried for the caller).
    prediction_network: A `PredictionNetwork` (already built).
    joint_network: A `JointNetwork` (prediction projection already built).
    max_symbols_per_frame: Python int >= 1.
    max_output_length: Size L of the token buffer (int or scalar tensor);
      tokens past it are dropped.

  Returns:
    A `GreedyLoopResult`.
  """
  if max_symbols_per_frame < 1:
    raise ValueError('max_symbols_per_frame must be >= 1, got '
                     f'{max_symbols_per_frame}.')
  batch_size = tf.shape(encoder_projections)[0]
  num_frames = tf.shape(encoder_projections)[1]
  encoder_lengths = tf.cast(encoder_lengths, tf.int32)
  tokens = tf.zeros([batch_size, max_output_length], tf.int32)
  token_counts = tf.zeros([batch_size], tf.int32)

  def frame_body(frame, tokens, token_counts, prediction_projections,
                 prediction_state, last_tokens):
    frame_projection = tf.gather(encoder_projections, frame, axis=1)

    def symbol_body(symbol, active, tokens, token_counts,
                    prediction_projections, prediction_state, last_tokens):
      logits = joint_network.joint_from_projections(frame_projection,
                                                    prediction_projections)
      best = tf.argmax(logits, axis=-1, output_type=tf.int32)
      emit = tf.logical_and(active, tf.not_equal(best, rnnt_config.BLANK_ID))
      emitted = tf.where(emit, best, 0)
      # one_hot of a count >= L is all zeros, so overflowing tokens drop out.
      tokens += tf.one_hot(token_counts, max_output_length,
                           dtype=tf.int32) * emitted[:, tf.newaxis]
      token_counts += tf.cast(emit, tf.int32)
      step_outputs, step_state = prediction_network.step(best,
                                                         prediction_state)
      prediction_projections, prediction_state, last_tokens = select_rows(
          emit,
          (joint_network.project_prediction(step_outputs), step_state, best),
          (prediction_projections, prediction_state, last_tokens))
      return (symbol + 1, emit, tokens, token_counts, prediction_projections,
              prediction_state, last_tokens)

    def symbol_cond(symbol, active, *unused_state):
      return tf.logical_and(symbol < max_symbols_per_frame,
                            tf.reduce_any(active))

    (_, _, tokens, token_counts, prediction_projections, prediction_state,
     last_tokens) = tf.while_loop(
         symbol_cond, symbol_body,
         (tf.constant(0), frame < encoder_lengths, tokens, token_counts,
          prediction_projections, prediction_state, last_tokens))
    return (frame + 1, tokens, token_counts, prediction_projections,
            prediction_state, last_tokens)

  (_, tokens, token_counts, prediction_projections, prediction_state,
   last_tokens) = tf.while_loop(
       lambda frame, *unused_state: frame < num_frames, frame_body,
       (tf.constant(0), tokens, token_counts, prediction_projections,
        prediction_state, last_tokens))
  return GreedyLoopResult(tokens, token_counts, prediction_projections,
                          prediction_state, last_tokens)


def start_decoder(batch_size, prediction_network, joint_network
                 ) -> Tuple[tf.Tensor, Any]:
  """Feeds the start symbol (blank) to the prediction network.

  Also builds the prediction network and the joint's prediction projection,
  so that no variable is created inside a decoding loop.

  Args:
    batch_size: Python int or scalar int32 tensor.
    prediction_network: A `PredictionNetwork`.
    joint_network: A `JointNetwork`.

  Returns:
    (prediction_projections [B, J], prediction_state).
  """
  start_tokens = tf.fill([batch_size], rnnt_config.BLANK_ID)
  outputs, state = prediction_network.step(
      start_tokens, prediction_network.initial_state(batch_size))
  return joint_network.project_prediction(outputs), state


def greedy_decode(encoder_outputs: tf.Tensor,
                  encoder_lengths: tf.Tensor,
                  prediction_network,
                  joint_network,
                  max_symbols_per_frame: int = 3,
                  max_output_length: Optional[int] = None
                 ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Batched greedy RNN-T decoding.

  Args:
    encoder_outputs: float [B, T, D].
    encoder_lengths: int [B] valid frames per sequence.
    prediction_network: A `PredictionNetwork`.
    joint_network: A `JointNetwork`.
    max_symbols_per_frame: Most non-blank tokens emitted per frame.
    max_output_length: Token buffer size L; None means
      T * max_symbols_per_frame (never overflows). Longer outputs are cut.

  Returns:
    (tokens int32 [B, L] 0-padded, token_lengths int32 [B]).
  """
  encoder_projections = joint_network.project_encoder(encoder_outputs)
  batch_size = tf.shape(encoder_outputs)[0]
  if max_output_length is None:
    max_output_length = tf.shape(encoder_outputs)[1] * max_symbols_per_frame
  prediction_projections, prediction_state = start_decoder(
      batch_size, prediction_network, joint_network)
  result = greedy_search_frames(
      encoder_projections, encoder_lengths, prediction_projections,
      prediction_state, tf.zeros([batch_size], tf.int32), prediction_network,
      joint_network, max_symbols_per_frame, max_output_length)
  return result.tokens, tf.minimum(result.token_counts, max_output_length)
