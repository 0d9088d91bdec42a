"""The RNN-T model's config schema: encoder, prediction and joint networks,
and decoding.

These are Model Garden `hyperparams.Config` dataclasses, so they can be
overridden from YAML (`override(...)`) and printed with `as_dict()`.
"""

import dataclasses
from typing import Optional

from official.modeling.hyperparams import base_config

from asr_kd.configs import conformer_config
from asr_kd.configs import data_config

# Token id 0 is reserved by the tokenizer for blank; the prediction network
# also uses it as the start-of-sequence input.
BLANK_ID = 0


@dataclasses.dataclass
class PredictionNetworkConfig(base_config.Config):
  """Configuration of `asr_kd.modeling.prediction_network.PredictionNetwork`.

  Attributes:
    type: 'lstm' (embedding + stacked LSTM) or 'stateless' (embeddings of the
      last `context_size` labels, concatenated, then a dense layer + ReLU).
    vocab_size: Number of output tokens, blank (id 0) included.
    embedding_dim: Size of the label embedding.
    num_layers: Number of stacked LSTM layers ('lstm' only).
    lstm_units: Units per LSTM layer ('lstm' only).
    projection_dim: Output size P. For 'lstm', 0 means no projection and
      P = lstm_units; for 'stateless', 0 means P = embedding_dim.
    context_size: Number of previous labels seen by the 'stateless' network.
    dropout_rate: Dropout on embeddings and on each layer's output (training).
  """
  type: str = 'lstm'
  vocab_size: int = 1024
  embedding_dim: int = 256
  num_layers: int = 1
  lstm_units: int = 320
  projection_dim: int = 0
  context_size: int = 2
  dropout_rate: float = 0.1


@dataclasses.dataclass
class JointNetworkConfig(base_config.Config):
  """Configuration of `asr_kd.modeling.joint_network.JointNetwork`.

  Attributes:
    joint_dim: Size J of the shared space where the encoder and prediction
      projections are added.
    vocab_size: Number of output logits V, blank (id 0) included.
    activation: Keras activation applied to the sum (default 'tanh').
  """
  joint_dim: int = 320
  vocab_size: int = 1024
  activation: str = 'tanh'


@dataclasses.dataclass
class DecodingConfig(base_config.Config):
  """Configuration of the decoders in `asr_kd.decoding`.

  Attributes:
    method: 'greedy' or 'beam'.
    max_symbols_per_frame: Most non-blank tokens emitted per encoder frame,
      by greedy decoding and by each beam search hypothesis (a character
      vocabulary needs more than one at 40 ms frames).
    beam_size: Number of hypotheses kept by beam search.
    length_normalization: If True, beam search picks the final hypothesis by
      score / max(1, length) instead of the raw log-probability.
    max_output_length: Size L of the token buffer; None means
      T * max_symbols_per_frame, which can never overflow.
  """
  method: str = 'greedy'
  max_symbols_per_frame: int = 3
  beam_size: int = 4
  length_normalization: bool = False
  max_output_length: Optional[int] = None


@dataclasses.dataclass
class RnntModelConfig(base_config.Config):
  """Frontend + encoder + prediction network + joint network.

  The vocabulary size comes from the tokenizer at build time; the
  `vocab_size` fields of `prediction` and `joint` are overwritten with it.

  Attributes:
    features: the log-mel frontend (the model's input; the training input
      pipeline computes it with this config, the model normalizes it).
    feature_stats_file: JSON with per-mel-bin 'mean' and 'stddev' that the
      normalizer's weights start from when training builds the model
      (tfrecords_tools.compute_feature_stats); '' leaves mean 0 and stddev
      1. A restored model takes them from its checkpoint.
    encoder: Conformer encoder.
    prediction: prediction network.
    joint: joint network.
    utterance_mean_normalization: subtract each utterance's mean feature
      vector (over its valid frames, after the global statistics) before
      the encoder, in every path through `RnntModel.call` (training,
      evaluation, export, distillation teacher). It removes a voice's or
      channel's fixed spectral offset, but needs the whole utterance, so a
      streaming (causal) encoder cannot use it.
  """
  features: data_config.FeatureConfig = dataclasses.field(
      default_factory=data_config.FeatureConfig)
  feature_stats_file: str = ''
  encoder: conformer_config.ConformerEncoderConfig = dataclasses.field(
      default_factory=conformer_config.ConformerEncoderConfig)
  prediction: PredictionNetworkConfig = dataclasses.field(
      default_factory=PredictionNetworkConfig)
  joint: JointNetworkConfig = dataclasses.field(
      default_factory=JointNetworkConfig)
  utterance_mean_normalization: bool = False

  def validate(self):
    super().validate()
    if self.features.num_mel_bins != self.encoder.input_dim:
      raise ValueError(
          f'model.features.num_mel_bins ({self.features.num_mel_bins}) must '
          f'equal model.encoder.input_dim ({self.encoder.input_dim}).')
    if self.utterance_mean_normalization and self.encoder.causal:
      raise ValueError(
          'model.utterance_mean_normalization needs the whole utterance; a '
          'streaming (encoder.causal) model cannot use it.')
