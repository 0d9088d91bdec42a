"""The log-mel front end shared by training, evaluation and TFLite export.

Features are log mel-filterbank POWER: |STFT|^2 of 25 ms periodic-Hann
frames every 10 ms (fft_length 512), projected on HTK-mel triangular filters
(`tf.signal.linear_to_mel_weight_matrix`), then log(max(mel, log_floor)).

There is no centering or end padding: an utterance of N samples has
`1 + (N - frame_length) // frame_step` frames (0 if N < frame_length). A
stream cut into chunks therefore gives exactly the full-utterance frames when
each chunk is prefixed with the samples the previous call's frames did not
consume (input[num_frames * frame_step:], i.e. the last
`frame_length - frame_step` samples when chunks are whole hops); the
streaming export relies on this.

Feature normalization uses global per-mel-bin mean and stddev (streaming
friendly, unlike per-utterance CMVN), computed by `compute_feature_stats` and
stored as JSON.
"""

import json
from typing import Tuple

import numpy as np
import tensorflow as tf

from asr_kd.configs import data_config

_INT16_SCALE = 32768.0


def frame_length_samples(config: data_config.FeatureConfig) -> int:
  """Window length in samples (400 at 16 kHz / 25 ms)."""
  return int(round(config.sample_rate * config.frame_length_ms / 1000.0))


def frame_step_samples(config: data_config.FeatureConfig) -> int:
  """Hop length in samples (160 at 16 kHz / 10 ms)."""
  return int(round(config.sample_rate * config.frame_step_ms / 1000.0))


def num_frames(num_samples, config: data_config.FeatureConfig = None):
  """Number of frames `log_mel` gives for `num_samples` samples.

  Args:
    num_samples: int, NumPy array or integer tensor of sample counts.
    config: feature config (defaults to FeatureConfig()).

  Returns:
    max(0, 1 + (num_samples - frame_length) // frame_step), same type/shape
    as the input (a tensor for tensor input).
  """
  config = config or data_config.FeatureConfig()
  frame_length = frame_length_samples(config)
  frame_step = frame_step_samples(config)
  if isinstance(num_samples, (tf.Tensor, tf.Variable)):
    return tf.maximum(
        tf.zeros_like(num_samples),
        1 + (num_samples - frame_length) // frame_step)
  return np.maximum(0, 1 + (np.asarray(num_samples) - frame_length) //
                    frame_step)


def max_samples_for_frames(frames: int,
                           config: data_config.FeatureConfig) -> int:
  """Samples that `log_mel` turns into exactly `frames` frames, none left
  over (the most, up to a partial hop, whose features fit `frames`)."""
  return (frames - 1) * frame_step_samples(config) + frame_length_samples(
      config)


def waveform_to_float(samples: tf.Tensor) -> tf.Tensor:
  """Scales int16 PCM samples to float32 in [-1, 1)."""
  return tf.cast(samples, tf.float32) / _INT16_SCALE


def mel_weight_matrix(config: data_config.FeatureConfig) -> tf.Tensor:
  """[fft_length // 2 + 1, num_mel_bins] HTK-mel filterbank (float32)."""
  return tf.signal.linear_to_mel_weight_matrix(
      num_mel_bins=config.num_mel_bins,
      num_spectrogram_bins=config.fft_length // 2 + 1,
      sample_rate=config.sample_rate,
      lower_edge_hertz=config.lower_edge_hertz,
      upper_edge_hertz=config.upper_edge_hertz,
      dtype=tf.float32)


def log_mel(waveform: tf.Tensor,
            config: data_config.FeatureConfig = None,
            mel_as_matmul: bool = True) -> tf.Tensor:
  """Log-mel power features with no padding (see module docstring).

  Args:
    waveform: float32 [..., N] samples in [-1, 1).
    config: feature config (defaults to FeatureConfig()).
    mel_as_matmul: project the power spectrum onto the mel bins with a
      matmul (the fast way), else with a broadcast multiply and a sum: the
      same values, but no constant weight matrix that TFLite's dynamic-range
      quantizer turns into an int8 layer which also quantizes its input, the
      power spectrum, to int8 (see tflite_export).

  Returns:
    float32 [..., num_frames(N), num_mel_bins].
  """
  config = config or data_config.FeatureConfig()
  waveform = tf.convert_to_tensor(waveform, tf.float32)
  frame_length = frame_length_samples(config)
  if config.fft_length < frame_length:
    raise ValueError(f'fft_length {config.fft_length} is shorter than the '
                     f'{frame_length}-sample window.')
  frames = tf.signal.frame(waveform, frame_length,
                           frame_step_samples(config), pad_end=False)
  frames *= tf.signal.hann_window(frame_length, periodic=True)
  # This is tf.signal.stft, with the zero padding to fft_length made
  # explicit: stft skips it for an empty frame tensor (waveform shorter than
  # one window) and the RFFT then fails instead of returning 0 frames.
  padding = [[0, 0]] * (frames.shape.rank - 1) + [
      [0, config.fft_length - frame_length]]
  stft = tf.signal.rfft(tf.pad(frames, padding), [config.fft_length])
  power = tf.math.square(tf.math.real(stft)) + tf.math.square(
      tf.math.imag(stft))
  if mel_as_matmul:
    mel = tf.tensordot(power, mel_weight_matrix(config), axes=1)
  else:
    mel = tf.reduce_sum(power[..., tf.newaxis] * mel_weight_matrix(config),
                        axis=-2)
  return tf.math.log(tf.maximum(mel, config.log_floor))


def add_dither(waveform: tf.Tensor, scale: float,
               seed: tf.Tensor) -> tf.Tensor:
  """Adds N(0, scale^2) noise (training only) with a stateless seed [2]."""
  if scale <= 0:
    return waveform
  return waveform + scale * tf.random.stateless_normal(
      tf.shape(waveform), seed=seed, dtype=waveform.dtype)


def normalize_features(features: tf.Tensor, mean, stddev) -> tf.Tensor:
  """(features - mean) / stddev over the last (mel) axis; pure function."""
  mean = tf.cast(tf.convert_to_tensor(mean), features.dtype)
  stddev = tf.cast(tf.convert_to_tensor(stddev), features.dtype)
  return (features - mean) / stddev


def subtract_utterance_mean(features: tf.Tensor,
                            lengths: tf.Tensor) -> tf.Tensor:
  """[B, T, F] features minus each utterance's mean over its valid frames.

  Padding frames (t >= lengths[b]) stay zero, so the result does not depend
  on how much a batch pads.
  """
  mask = tf.sequence_mask(lengths, tf.shape(features)[1],
                          dtype=features.dtype)[:, :, tf.newaxis]
  count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
  mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
  return (features - mean) * mask


def compute_feature_stats(dataset_of_features: tf.data.Dataset,
                          max_utterances: int = 1000,
                          min_stddev: float = 1e-3
                         ) -> Tuple[np.ndarray, np.ndarray]:
  """Global per-mel-bin mean and stddev over all frames of some utterances.

  Args:
    dataset_of_features: dataset whose elements are unpadded [T, F] features.
    max_utterances: use at most this many utterances.
    min_stddev: floor on the stddev so constant bins do not divide by ~0.

  Returns:
    (mean, stddev), float32 NumPy arrays [F] (accumulated in float64).
  """
  total = frame_count = sum_of_squares = None
  for features in dataset_of_features.take(max_utterances).as_numpy_iterator():
    features = np.asarray(features, np.float64).reshape(
        -1, np.shape(features)[-1])
    if total is None:
      total = np.zeros(features.shape[-1])
      sum_of_squares = np.zeros(features.shape[-1])
      frame_count = 0
    total += features.sum(axis=0)
    sum_of_squares += np.square(features).sum(axis=0)
    frame_count += features.shape[0]
  if not frame_count:
    raise ValueError('No feature frames to compute statistics from.')
  mean = total / frame_count
  variance = np.maximum(sum_of_squares / frame_count - np.square(mean), 0.0)
  stddev = np.maximum(np.sqrt(variance), min_stddev)
  return mean.astype(np.float32), stddev.astype(np.float32)


def save_feature_stats(path: str, mean: np.ndarray, stddev: np.ndarray):
  """Writes {'mean': [...], 'stddev': [...]} as JSON."""
  with tf.io.gfile.GFile(path, 'w') as stats_file:
    json.dump({'mean': [float(v) for v in mean],
               'stddev': [float(v) for v in stddev]}, stats_file)


def load_feature_stats(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads (mean, stddev) float32 arrays written by `save_feature_stats`."""
  if not tf.io.gfile.exists(path):
    raise ValueError(f'Feature stats file not found: {path}')
  with tf.io.gfile.GFile(path, 'r') as stats_file:
    stats = json.load(stats_file)
  mean = np.asarray(stats['mean'], np.float32)
  stddev = np.asarray(stats['stddev'], np.float32)
  if mean.shape != stddev.shape or mean.ndim != 1:
    raise ValueError(f'Bad feature stats in {path}: mean {mean.shape}, '
                     f'stddev {stddev.shape}')
  return mean, stddev
