"""Random start offset: the waveform preceded by a random run of zeros.

The log-mel frontend cuts frames at fixed hops from the first sample, and a
4x subsampling encoder groups those frames four at a time, so one utterance
started a few milliseconds later is, to the encoder, a different input. The
streaming recognizer meets exactly that: its frontend carries a zero tail
(`modeling.rnnt_stream.tail_samples_for`, 20 ms) before the first sample. A model
trained on one framing only loses accuracy at any other (benchmarks/
offset_sensitivity.py measured it, docs/results.md). Drawing the offset anew
for every example teaches the model every framing phase of the frontend and
the subsampling, so offline evaluation, streaming and real audio (which
starts wherever a recording does) agree.

All randomness is stateless from a seed, so the same seed gives the same
offset.
"""

import tensorflow as tf

from asr_kd.configs import data_config


def prepend_zeros(waveform: tf.Tensor, offset_samples: tf.Tensor) -> tf.Tensor:
  """`waveform` [num_samples] preceded by `offset_samples` zero samples."""
  return tf.concat([tf.zeros([offset_samples], waveform.dtype), waveform],
                   axis=0)


def random_start_offset(waveform: tf.Tensor,
                        config: data_config.StartOffsetConfig,
                        max_samples: int, seed: tf.Tensor) -> tf.Tensor:
  """`prepend_zeros` by an offset drawn uniformly from 0..max_offset_samples.

  Args:
    waveform: float [num_samples] audio.
    config: the largest offset.
    max_samples: the longest result allowed (the last length bucket); the
      offset's range is narrowed so that the result fits.
    seed: int [2] stateless seed.

  Returns:
    float [num_samples + offset] audio.
  """
  room = tf.maximum(max_samples - tf.shape(waveform)[0], 0)
  largest = tf.minimum(config.max_offset_samples, room)
  offset = tf.random.stateless_uniform(
      [], seed=seed, minval=0, maxval=largest + 1, dtype=tf.int32)
  return prepend_zeros(waveform, offset)
