"""RNN-T joint network split into reusable pieces.

logits = W_out * act(W_enc * enc + W_pred * pred + b) + b_out. The two
projections are linear, so they are applied once per frame and once per label
position; the (expensive) broadcasting add, activation and output layer are
`joint_from_projections`, which a memory-saving loss can call per time chunk
and a decoder per step.
"""

from typing import Optional

import tensorflow as tf
import tf_keras

from asr_kd.configs import rnnt_config


@tf_keras.utils.register_keras_serializable(package='asr_kd')
class JointNetwork(tf_keras.layers.Layer):
  """Projects encoder and prediction outputs, adds them, outputs logits."""

  def __init__(self, config: rnnt_config.JointNetworkConfig, **kwargs):
    """Creates the sub-layers.

    Args:
      config: A `JointNetworkConfig` (or a dict with its fields).
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if isinstance(config, dict):
      config = rnnt_config.JointNetworkConfig(config)
    self._config = config
    self._encoder_projection = tf_keras.layers.Dense(
        config.joint_dim, name='encoder_projection')
    # The encoder projection's bias already shifts the sum; a second bias
    # would be redundant.
    self._prediction_projection = tf_keras.layers.Dense(
        config.joint_dim, use_bias=False, name='prediction_projection')
    self._activation = tf_keras.activations.get(config.activation)
    self._output_dense = tf_keras.layers.Dense(
        config.vocab_size, name='output')
    # Built now (its input size is known) so that its first use may be inside
    # a decoder's tf.while_loop, where variables cannot be created.
    with tf.name_scope(self.name), tf.name_scope(self._output_dense.name):
      self._output_dense.build([None, config.joint_dim])

  @property
  def config(self) -> rnnt_config.JointNetworkConfig:
    return self._config

  def project_encoder(self, encoder_outputs: tf.Tensor) -> tf.Tensor:
    """Maps encoder outputs [..., D] to [..., J]."""
    return self._encoder_projection(encoder_outputs)

  def project_prediction(self, prediction_outputs: tf.Tensor) -> tf.Tensor:
    """Maps prediction network outputs [..., P] to [..., J]."""
    return self._prediction_projection(prediction_outputs)

  def joint_from_projections(self, encoder_projections: tf.Tensor,
                             prediction_projections: tf.Tensor) -> tf.Tensor:
    """Adds projections (with broadcasting), applies activation and output.

    Args:
      encoder_projections: [..., J] from `project_encoder`, e.g.
        [B, T, 1, J] for a full lattice or [B, J] for one decoding step.
      prediction_projections: [..., J] from `project_prediction`,
        broadcast-compatible with `encoder_projections`, e.g. [B, 1, U+1, J].

    Returns:
      Logits [broadcast shape..., V].
    """
    hidden = self._activation(encoder_projections + prediction_projections)
    return self._output_dense(hidden)

  def call(self, encoder_outputs: tf.Tensor, prediction_outputs: tf.Tensor,
           training: Optional[bool] = None) -> tf.Tensor:
    """Computes the full RNN-T lattice of logits.

    Args:
      encoder_outputs: [B, T, D].
      prediction_outputs: [B, U + 1, P].
      training: Unused (no dropout); kept for the Keras signature.

    Returns:
      Logits [B, T, U + 1, V].
    """
    del training
    encoder_projections = self.project_encoder(encoder_outputs)
    prediction_projections = self.project_prediction(prediction_outputs)
    return self.joint_from_projections(
        encoder_projections[:, :, tf.newaxis, :],
        prediction_projections[:, tf.newaxis, :, :])

  def get_config(self):
    base = super().get_config()
    base['config'] = self._config.as_dict()
    return base
