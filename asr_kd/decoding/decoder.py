"""Picks the decoder named by a DecodingConfig (validation, evaluation, export)."""

from typing import Tuple

import tensorflow as tf

from asr_kd.configs import rnnt_config
from asr_kd.decoding import beam_search
from asr_kd.decoding import greedy

METHODS = ('greedy', 'beam')


def decode(encoder_outputs: tf.Tensor, encoder_lengths: tf.Tensor,
           prediction_network, joint_network,
           config: rnnt_config.DecodingConfig) -> Tuple[tf.Tensor, tf.Tensor]:
  """Returns (tokens int32 [B, L] 0-padded, token_lengths int32 [B])."""
  if config.method == 'greedy':
    return greedy.greedy_decode(
        encoder_outputs, encoder_lengths, prediction_network, joint_network,
        max_symbols_per_frame=config.max_symbols_per_frame,
        max_output_length=config.max_output_length)
  if config.method == 'beam':
    tokens, lengths, _ = beam_search.beam_search_decode(
        encoder_outputs, encoder_lengths, prediction_network, joint_network,
        beam_size=config.beam_size,
        max_symbols_per_frame=config.max_symbols_per_frame,
        max_output_length=config.max_output_length,
        length_normalization=config.length_normalization)
    return tokens, lengths
  raise ValueError(f'decoding method must be one of {METHODS}, got '
                   f'{config.method!r}')
