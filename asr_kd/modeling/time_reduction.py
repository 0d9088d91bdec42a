"""Temporal U-Net inside a full-context Conformer (Squeezeformer, Kim et al. 2022).

The middle Conformer blocks run on frames pooled 2x in time, which roughly
halves their cost; afterwards every pooled frame is repeated twice and added
to the full-rate frames that entered the pooling, so the encoder still emits
one frame per `subsampling_factor` feature frames.

Pooling is a depthwise convolution (kernel 3, stride 2) followed by a
pointwise projection. Pooled frame i reads input frames 2i, 2i + 1 and 2i + 2
(zero past the end): the frames are padded on the right only, so a frame's
value never depends on how much batch padding follows the utterance.
"""

from typing import Tuple

import tensorflow as tf
import tf_keras

_KERNEL_SIZE = 3
_STRIDE = 2


def reduced_lengths(lengths: tf.Tensor) -> tf.Tensor:
  """Pooled frames for `lengths` full-rate frames: ceil(lengths / 2)."""
  return (lengths + _STRIDE - 1) // _STRIDE


class TimeReduction(tf_keras.layers.Layer):
  """[B, T, D] -> [B, ceil(T / 2), D], and back with `recover`."""

  def __init__(self, model_dim: int, **kwargs):
    super().__init__(**kwargs)
    self._depthwise = tf_keras.layers.DepthwiseConv1D(
        _KERNEL_SIZE, strides=_STRIDE, padding='valid', name='depthwise')
    self._pointwise = tf_keras.layers.Dense(model_dim, name='pointwise')

  def call(self, hidden: tf.Tensor, lengths: tf.Tensor
           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Pools frames 2x.

    Args:
      hidden: [B, T, D] with zeros on padded frames.
      lengths: [B] int32 valid frames.

    Returns:
      (pooled [B, ceil(T / 2), D] with zeros on padded frames,
       pooled_mask [B, ceil(T / 2)], 1 on the ceil(lengths / 2) valid ones).
    """
    # T + 2 frames give exactly ceil(T / 2) valid-padding outputs.
    padded = tf.pad(hidden, [[0, 0], [0, _KERNEL_SIZE - 1], [0, 0]])
    pooled = self._pointwise(self._depthwise(padded))
    mask = tf.sequence_mask(reduced_lengths(lengths), tf.shape(pooled)[1],
                            dtype=pooled.dtype)
    return pooled * mask[..., tf.newaxis], mask

  @staticmethod
  def recover(pooled: tf.Tensor, skip: tf.Tensor) -> tf.Tensor:
    """Repeats each pooled frame twice and adds the full-rate `skip` [B, T, D].

    Padded frames of the result are not zeroed here: the caller masks.
    """
    repeated = tf.repeat(pooled, _STRIDE, axis=1)
    return repeated[:, :tf.shape(skip)[1]] + skip
