"""The RNN-T model: Conformer encoder + prediction network + joint network."""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf
import tf_keras

from asr_kd.configs import rnnt_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.modeling import conformer
from asr_kd.modeling import frontend as frontend_lib
from asr_kd.modeling import joint_network as joint_lib
from asr_kd.modeling import prediction_network as prediction_lib
from asr_kd.modeling import rnnt_stream


class RnntModel(tf_keras.Model):
  """RNN-T transducer: frontend, encoder, prediction and joint networks.

  `call` returns the encoder and prediction-network outputs, not the logits:
  the loss evaluates the joint itself (in time chunks when fused), and
  decoders call the joint one step at a time.

  With `ctc_head=True` the model also holds a linear CTC head over the
  encoder outputs (`ctc_logits`), trained by the auxiliary CTC loss
  (`task.loss.ctc_weight`); with `intermediate_ctc_layer` > 0 `call` also
  returns that encoder block's output, which the same head maps to the
  intermediate CTC loss's logits (`task.loss.intermediate_ctc_weight`). With
  `prediction_lm_head=True` it holds a linear
  next-label head over the prediction network's outputs
  (`prediction_lm_logits`, `task.loss.prediction_lm_weight`). Decoding and
  export use neither; models restored for inference are built without them
  (their checkpoint entries are then skipped). Nor do they use the two
  linear heads of `simple_joint_heads=True` (`simple_joint_logits`), which
  the pruned RNN-T loss trains (`task.loss.pruned_range`).

  The frontend (`frontend`, asr_kd/modeling/frontend.py) reads the model
  config's FeatureConfig and normalizes with the global feature statistics,
  kept as non-trainable weights (`feature_mean`, `feature_stddev`), so
  checkpoints and exports carry the whole frontend. `call` takes waveforms
  or log-mel features and normalizes them itself.
  """

  def __init__(self, config: rnnt_config.RnntModelConfig,
               vocab_size: int, ctc_head: bool = False,
               prediction_lm_head: bool = False,
               intermediate_ctc_layer: int = 0,
               simple_joint_heads: bool = False, **kwargs):
    super().__init__(**kwargs)
    config.validate()
    if intermediate_ctc_layer and not ctc_head:
      raise ValueError('RnntModel: intermediate_ctc_layer needs ctc_head=True '
                       '(its logits come from the CTC head).')
    self._intermediate_ctc_layer = intermediate_ctc_layer
    self._config = config.replace(
        prediction={'vocab_size': vocab_size},
        joint={'vocab_size': vocab_size})
    self.vocab_size = vocab_size
    self.encoder = conformer.ConformerEncoder(self._config.encoder,
                                              name='encoder')
    self.prediction_network = prediction_lib.PredictionNetwork(
        self._config.prediction, name='prediction_network')
    self.joint_network = joint_lib.JointNetwork(self._config.joint,
                                                name='joint_network')
    self.ctc_head = tf_keras.layers.Dense(
        vocab_size, name='ctc_head') if ctc_head else None
    self.prediction_lm_head = tf_keras.layers.Dense(
        vocab_size, name='prediction_lm_head') if prediction_lm_head else None
    self.simple_am_head, self.simple_lm_head = (
        tf_keras.layers.Dense(vocab_size, name='simple_am_head'),
        tf_keras.layers.Dense(vocab_size, use_bias=False,
                              name='simple_lm_head')
    ) if simple_joint_heads else (None, None)
    num_bins = self._config.encoder.input_dim
    self.feature_mean = self.add_weight(
        'feature_mean', shape=[num_bins], trainable=False,
        initializer='zeros')
    self.feature_stddev = self.add_weight(
        'feature_stddev', shape=[num_bins], trainable=False,
        initializer='ones')
    self._frontend = frontend_lib.Frontend(
        self._config.features, self.feature_mean, self.feature_stddev)

  @property
  def frontend(self) -> frontend_lib.Frontend:
    return self._frontend

  @property
  def config(self) -> rnnt_config.RnntModelConfig:
    return self._config

  def set_feature_stats(self, mean: np.ndarray, stddev: np.ndarray):
    """Sets the normalizer's statistics, one value per mel bin each."""
    mean = np.asarray(mean, np.float32)
    stddev = np.asarray(stddev, np.float32)
    num_bins = self._config.features.num_mel_bins
    if mean.shape != (num_bins,) or stddev.shape != (num_bins,):
      raise ValueError(
          f'feature statistics have {mean.shape} / {stddev.shape} values, the '
          f'model\'s features {num_bins} mel bins (model.features).')
    self.feature_mean.assign(mean)
    self.feature_stddev.assign(stddev)

  def call(self, inputs: Dict[str, tf.Tensor],
           training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Runs encoder and prediction network.

    Args:
      inputs: either 'waveforms' float32 [B, S] in [-1, 1) and
        'num_samples' int [B], or the frontend's log-mel 'features' float32
        [B, T, F] (not normalized: the input pipeline's), 'feature_lengths'
        int32 [B] and optionally 'feature_mask' bool [B, T, F] (SpecAugment's
        masked cells); 'labels' int32 [B, U] and 'label_lengths' [B] when
        the prediction network is needed (training, loss).
      training: Keras training flag.

    Returns:
      'encoder_outputs' [B, T', D], 'encoder_lengths' [B], with labels
      'prediction_outputs' [B, U+1, P], and for a model built with
      `intermediate_ctc_layer` 'intermediate_encoder_outputs' [B, T', D].
    """
    if 'waveforms' in inputs:
      log_mel = self._frontend.log_mel(inputs['waveforms'])
      feature_lengths = self._frontend.num_frames(inputs['num_samples'])
    else:
      log_mel, feature_lengths = inputs['features'], inputs['feature_lengths']
    features = self._frontend.normalize(log_mel, inputs.get('feature_mask'))
    if self._config.utterance_mean_normalization:
      features = features_lib.subtract_utterance_mean(features,
                                                      feature_lengths)
    if self._intermediate_ctc_layer:
      encoder_outputs, encoder_lengths, intermediate = self.encoder(
          features, feature_lengths, training=training,
          intermediate_layer=self._intermediate_ctc_layer)
      outputs = {'intermediate_encoder_outputs': intermediate}
    else:
      encoder_outputs, encoder_lengths = self.encoder(
          features, feature_lengths, training=training)
      outputs = {}
    outputs.update(encoder_outputs=encoder_outputs,
                   encoder_lengths=encoder_lengths)
    if 'labels' in inputs:
      outputs['prediction_outputs'] = self.prediction_network(
          inputs['labels'], inputs.get('label_lengths'), training=training)
    return outputs

  def stream(self, chunk_ms: Optional[float] = None,
             max_symbols_per_frame: int = 3) -> rnnt_stream.RnntStream:
    """Streaming recognition with this model (a causal encoder): its
    `initial_state()` and `stream_step(chunk, num_valid_samples, state) ->
    (outputs, state)` (asr_kd/modeling/rnnt_stream.py)."""
    return rnnt_stream.RnntStream(self, chunk_ms, max_symbols_per_frame)

  def joint_fn(self, encoder_outputs: tf.Tensor,
               prediction_outputs: tf.Tensor) -> tf.Tensor:
    """Logits for broadcastable [B,T,1,D] and [B,1,U+1,P] inputs."""
    return self.joint_network.joint_from_projections(
        self.joint_network.project_encoder(encoder_outputs),
        self.joint_network.project_prediction(prediction_outputs))

  def band_joint_fn(self, encoder_outputs: tf.Tensor,
                    prediction_outputs: tf.Tensor):
    """label_index [B, T', S] -> logits [B, T', S, V] (pruned RNN-T loss).

    Entry [b, t, s] is the joint of encoder frame t and prediction position
    label_index[b, t, s]; both projections are computed once.
    """
    encoder_projections = self.joint_network.project_encoder(encoder_outputs)
    prediction_projections = self.joint_network.project_prediction(
        prediction_outputs)

    def band_logits(label_index):
      return self.joint_network.joint_from_projections(
          encoder_projections[:, :, tf.newaxis, :],
          tf.gather(prediction_projections, label_index, batch_dims=1))
    return band_logits

  def simple_joint_logits(self, encoder_outputs: tf.Tensor,
                          prediction_outputs: tf.Tensor):
    """([B, T', V], [B, U+1, V]): the pruned loss's simple joint terms."""
    if self.simple_am_head is None:
      raise ValueError('RnntModel: simple_joint_logits needs a model built '
                       'with simple_joint_heads=True '
                       '(task.loss.pruned_range > 0).')
    return (self.simple_am_head(encoder_outputs),
            self.simple_lm_head(prediction_outputs))

  def ctc_logits(self, encoder_outputs: tf.Tensor) -> tf.Tensor:
    """[B, T', V] CTC logits (only for a model built with ctc_head=True)."""
    if self.ctc_head is None:
      raise ValueError('RnntModel: ctc_logits needs a model built with '
                       'ctc_head=True (task.loss.ctc_weight > 0).')
    return self.ctc_head(encoder_outputs)

  def prediction_lm_logits(self, prediction_outputs: tf.Tensor) -> tf.Tensor:
    """[B, U+1, V] next-label logits (a model built with prediction_lm_head)."""
    if self.prediction_lm_head is None:
      raise ValueError('RnntModel: prediction_lm_logits needs a model built '
                       'with prediction_lm_head=True '
                       '(task.loss.prediction_lm_weight > 0).')
    return self.prediction_lm_head(prediction_outputs)

  def build_for_checkpoint(self):
    """Creates every variable by running one tiny batch."""
    num_frames = self.encoder.chunk_frames_in if self.encoder.is_streaming \
        else 4 * self.encoder.subsampling_factor
    features = tf.zeros([1, num_frames, self._config.encoder.input_dim])
    self({'features': features,
          'feature_lengths': tf.constant([num_frames], tf.int32),
          'labels': tf.ones([1, 1], tf.int32),
          'label_lengths': tf.ones([1], tf.int32)}, training=False)
    self.joint_fn(tf.zeros([1, 1, 1, self.encoder.output_dim]),
                  tf.zeros([1, 1, 1, self.prediction_network.output_dim]))
    if self.ctc_head is not None:
      self.ctc_logits(tf.zeros([1, 1, self.encoder.output_dim]))
    if self.simple_am_head is not None:
      self.simple_joint_logits(
          tf.zeros([1, 1, self.encoder.output_dim]),
          tf.zeros([1, 1, self.prediction_network.output_dim]))
    if self.prediction_lm_head is not None:
      self.prediction_lm_logits(
          tf.zeros([1, 1, self.prediction_network.output_dim]))
