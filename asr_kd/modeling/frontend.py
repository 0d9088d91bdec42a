"""The model's frontend: waveform -> log-mel -> normalized features.

One owner for what every path into the encoder computes (training, the
online teacher, evaluation, transcription, pseudo-labeling, SavedModel and
TFLite export). It reads the model's FeatureConfig and the normalizer's
statistics, which are the model's weights (`feature_mean`,
`feature_stddev`): checkpoints and exports carry the whole frontend.

It is a plain object over the model's variables, not a Keras layer of its
own, so checkpoints keep the variables where earlier ones have them.
"""

from typing import Optional

import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import features as features_lib


class Frontend:
  """Log-mel features of waveforms, and their normalization."""

  def __init__(self, config: data_config.FeatureConfig,
               mean: tf.Variable, stddev: tf.Variable):
    self.config = config
    self._mean = mean
    self._stddev = stddev

  def log_mel(self, waveforms: tf.Tensor,
              mel_as_matmul: bool = True) -> tf.Tensor:
    """float [B, S] waveforms in [-1, 1) -> log-mel [B, T, F].

    `mel_as_matmul=False` keeps the mel filterbank a tensordot for TFLite
    (features_lib.log_mel).
    """
    return features_lib.log_mel(waveforms, self.config,
                                mel_as_matmul=mel_as_matmul)

  def num_frames(self, num_samples: tf.Tensor) -> tf.Tensor:
    """int32 frames of the features of `num_samples` samples."""
    return tf.cast(features_lib.num_frames(tf.cast(num_samples, tf.int32),
                                           self.config), tf.int32)

  def normalize(self, log_mel: tf.Tensor,
                mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Log-mel [..., F] -> normalized features.

    Args:
      log_mel: float [..., F].
      mask: optional bool of the same shape, True where SpecAugment masks a
        cell; masked cells become 0, the normalized mean.

    Returns:
      The normalized features.
    """
    normalized = features_lib.normalize_features(log_mel, self._mean,
                                                 self._stddev)
    if mask is not None:
      normalized = tf.where(mask, tf.zeros_like(normalized), normalized)
    return normalized

  def same_features_as(self, other: 'Frontend') -> bool:
    """Whether `other` computes the same log-mel (dither aside: training
    noise)."""
    mine = self.config.as_dict()
    theirs = other.config.as_dict()
    mine.pop('dither')
    theirs.pop('dither')
    return mine == theirs
