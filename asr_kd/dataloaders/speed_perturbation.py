"""Speed perturbation: the waveform resampled by a random factor [1].

A factor f > 1 plays the utterance f times faster (shorter, higher pitched),
f < 1 slower, as `sox speed` does; it changes the speaking rate and the voice's
pitch together, the two axes along which unseen speakers differ most.
Resampling is linear interpolation between neighbouring samples, with no
low-pass filter: at f <= 1.1 only content above 7.3 kHz can fold back, and
16 kHz speech holds little there.

All randomness is stateless from a seed, so the same seed gives the same
factor.

[1] Ko, Peddinti, Povey, Khudanpur, "Audio augmentation for speech
    recognition", Interspeech 2015.
"""

import tensorflow as tf

from asr_kd.configs import data_config


def change_speed(waveform: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
  """Plays `waveform` `factor` times faster.

  Args:
    waveform: float [num_samples] audio, num_samples >= 1.
    factor: positive float scalar.

  Returns:
    float [1 + floor((num_samples - 1) / factor)]: sample k is the linear
    interpolation of `waveform` at position k * factor.
  """
  num_samples = tf.shape(waveform)[0]
  # A Python float straight to float64: through float32 it would lose the
  # digits that place the last samples.
  factor = tf.cast(tf.convert_to_tensor(factor, dtype_hint=tf.float64),
                   tf.float64)
  last = tf.cast(num_samples - 1, tf.float64)
  new_length = tf.cast(tf.floor(last / factor), tf.int32) + 1
  # Positions in float64: float32 would round them to 1/128 of a sample at
  # 8 s of 16 kHz audio.
  positions = tf.range(new_length, dtype=tf.float64) * factor
  left = tf.cast(tf.floor(positions), tf.int32)
  right = tf.minimum(left + 1, num_samples - 1)
  weight = tf.cast(positions - tf.floor(positions), waveform.dtype)
  return (tf.gather(waveform, left) * (1 - weight) +
          tf.gather(waveform, right) * weight)


def random_speed(waveform: tf.Tensor,
                 config: data_config.SpeedPerturbationConfig,
                 max_samples: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """`change_speed` by a factor drawn uniformly from the config's range.

  Args:
    waveform: float [num_samples] audio.
    config: the factor range.
    max_samples: the longest result allowed (the last length bucket); a
      factor that would give more samples is raised to fit.
    seed: int [2] stateless seed.

  Returns:
    The resampled waveform.
  """
  factor = tf.random.stateless_uniform(
      [], seed=seed, minval=config.min_factor, maxval=config.max_factor,
      dtype=tf.float64)
  num_samples = tf.cast(tf.shape(waveform)[0], tf.float64)
  fitting = (num_samples - 1) / tf.cast(max_samples - 1, tf.float64)
  return change_speed(waveform, tf.maximum(factor, fitting))
