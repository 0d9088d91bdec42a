"""The RNN-T training task's config schema: model, data, loss and run options.

Registered experiments (asr_kd/configs/rnnt_experiments.py and
distillation_experiments.py) fill these in; modeling and the input pipeline
import only the schemas they read.
"""

import dataclasses
from typing import Optional

from official.core import config_definitions as cfg
from official.modeling.hyperparams import base_config

from asr_kd.configs import data_config
from asr_kd.configs import rnnt_config

NONFINITE_POLICIES = ('skip', 'stop')
LOSS_NORMALIZATIONS = ('utterance', 'token')


@dataclasses.dataclass
class RnntLossConfig(base_config.Config):
  """RNN-T loss options (see docs/losses.md).

  Attributes:
    fastemit_lambda: FastEmit regularization weight (0 disables it).
    fused: compute the joint in time chunks inside the loss so the full
      [B, T, U+1, V] logits are never kept.
    time_chunk_size: frames per joint evaluation in fused mode.
    zero_infinity: zero the loss and gradients of impossible examples.
    ctc_weight: weight of an auxiliary CTC loss on the encoder outputs
      (asr_kd/losses/ctc.py), added to the training loss only; 0 disables
      it. Gives the encoder a frame-level signal from the first step; the
      demo teacher uses 0.3 (docs/results.md).
    ctc_only_steps: the first this many optimizer steps train on the
      auxiliary losses alone (the encoder's CTC loss, and the prediction
      network's language-model loss when its weight is set): the prediction
      network (unless needed), joint network and transducer loss are not
      run, so these steps cost about 0.6 of a full step. Needs ctc_weight > 0;
      0 disables it.
    intermediate_ctc_weight: weight of a second auxiliary CTC loss, on the
      output of an intermediate encoder block (intermediate CTC, Lee and
      Watanabe 2021), through the same CTC head as `ctc_weight`'s; added to
      the training loss only; 0 disables it.
    intermediate_ctc_layer: the encoder block (1-based, counted from the
      input) whose output the intermediate CTC loss reads; 0 picks half of
      the encoder's blocks. Not available with time reduction.
    prediction_lm_weight: weight of an auxiliary next-label cross-entropy
      on the prediction network's outputs (asr_kd/losses/prediction_lm.py),
      added to the training loss only; 0 disables it.
    pruned_range: train on the pruned RNN-T loss (Kuang et al. 2022,
      asr_kd/losses/rnnt_pruned.py) with this many label positions per
      frame (>= 2): the joint network runs on a band of the lattice chosen
      by a "simple" joint (two linear heads, trained too); 0 trains on the
      full lattice. Validation always evaluates the full lattice (with
      `fused`). Distillation allows it only without soft targets
      (`distillation.kind` 'none').
    simple_loss_weight: weight of the simple joint's RNN-T loss in the
      training loss when `pruned_range` is set.
    normalization: what the summed per-utterance losses of a step are
      divided by. 'utterance': the mean per utterance (of each replica's
      batch, averaged over replicas), so a batch of long utterances weighs
      more than one of short utterances with the same number of frames.
      'token': the number of label tokens in the global batch (all
      replicas), so every token weighs the same whatever its bucket.
  """
  fastemit_lambda: float = 0.0
  fused: bool = True
  time_chunk_size: int = 16
  zero_infinity: bool = False
  ctc_weight: float = 0.0
  ctc_only_steps: int = 0
  intermediate_ctc_weight: float = 0.0
  intermediate_ctc_layer: int = 0
  prediction_lm_weight: float = 0.0
  pruned_range: int = 0
  simple_loss_weight: float = 0.5
  normalization: str = 'utterance'


@dataclasses.dataclass
class RnntTaskConfig(cfg.TaskConfig):
  """RNN-T training task.

  Attributes:
    tokenizer_model_path: SentencePiece model (tfrecords_tools.train_tokenizer).
    model: the network.
    loss: loss options.
    decoding: decoder used for validation WER.
    nonfinite_policy: 'skip' drops a step whose loss or gradients are not
      finite (weights and optimizer slots untouched); 'stop' ends the run
      with an error at the first such step.
    jit_compile: XLA-compile the forward and backward pass as one program,
      once per batch shape: training data then gets static shapes
      (`data_config.with_static_shapes`). Off by default: on CPU the
      compiled demo steps are 2-3x slower than graph mode
      (docs/benchmarks.md, "Whole-step XLA").
    seed: the run's seed. It seeds weight initialization and dropout and,
      unless train_data.seed is set, the training data's order, dither and
      SpecAugment masks too (`train_data_seed`): one seed per run varies all
      three.
  """
  tokenizer_model_path: str = ''
  model: rnnt_config.RnntModelConfig = dataclasses.field(
      default_factory=rnnt_config.RnntModelConfig)
  train_data: data_config.AsrDataConfig = dataclasses.field(
      default_factory=lambda: data_config.AsrDataConfig(is_training=True))
  validation_data: data_config.AsrDataConfig = dataclasses.field(
      default_factory=lambda: data_config.AsrDataConfig(is_training=False))
  loss: RnntLossConfig = dataclasses.field(default_factory=RnntLossConfig)
  decoding: rnnt_config.DecodingConfig = dataclasses.field(
      default_factory=rnnt_config.DecodingConfig)
  nonfinite_policy: str = 'skip'
  jit_compile: bool = False
  seed: int = 0

  def validate(self):
    if self.nonfinite_policy not in NONFINITE_POLICIES:
      raise ValueError(f'nonfinite_policy must be one of {NONFINITE_POLICIES},'
                       f' got {self.nonfinite_policy!r}')
    for name in ('ctc_weight', 'ctc_only_steps', 'intermediate_ctc_weight',
                 'intermediate_ctc_layer', 'prediction_lm_weight',
                 'simple_loss_weight'):
      if getattr(self.loss, name) < 0:
        raise ValueError(f'loss.{name} must be >= 0, got '
                         f'{getattr(self.loss, name)}')
    if self.loss.ctc_only_steps and not self.loss.ctc_weight:
      raise ValueError('loss.ctc_only_steps needs loss.ctc_weight > 0 (the '
                       f'CTC loss it trains on), got ctc_only_steps='
                       f'{self.loss.ctc_only_steps}, ctc_weight=0')
    if self.loss.pruned_range < 0 or self.loss.pruned_range == 1:
      raise ValueError('loss.pruned_range must be 0 (the full lattice) or '
                       f'>= 2, got {self.loss.pruned_range}')
    if self.loss.normalization not in LOSS_NORMALIZATIONS:
      raise ValueError(f'loss.normalization must be one of '
                       f'{LOSS_NORMALIZATIONS}, got {self.loss.normalization!r}')
    if self.loss.intermediate_ctc_weight:
      num_layers = self.model.encoder.num_layers
      if not 1 <= self.intermediate_ctc_layer() < num_layers:
        raise ValueError(
            f'loss.intermediate_ctc_layer must name one of the encoder\'s '
            f'blocks 1 .. {num_layers - 1} (0: half of them), got '
            f'{self.loss.intermediate_ctc_layer}')
      if self.model.encoder.uses_time_reduction:
        raise ValueError('loss.intermediate_ctc_weight is not available with '
                         'the encoder\'s time reduction')

  def intermediate_ctc_layer(self) -> int:
    """The encoder block the intermediate CTC loss reads; 0 when it is off."""
    if not self.loss.intermediate_ctc_weight:
      return 0
    return (self.loss.intermediate_ctc_layer or
            self.model.encoder.num_layers // 2)


# train_data.seed, when unset, is task.seed + this: task.seed 0 reads the
# data in the order of data seed 1, the demo presets' fixed data seed before
# the rule (and the pairing of the other seeds in docs/results.md: 1 and 2,
# 2 and 3, 3 and 4), so earlier runs keep their batches.
TRAIN_DATA_SEED_OFFSET = 1


def train_data_seed(task_seed: int, data_seed: Optional[int]) -> int:
  """The seed of the training data's order, dither and SpecAugment.

  Args:
    task_seed: task.seed, the run's seed.
    data_seed: task.train_data.seed; None derives it from task_seed.

  Returns:
    data_seed when set, else task_seed + TRAIN_DATA_SEED_OFFSET.
  """
  if data_seed is not None:
    return data_seed
  return task_seed + TRAIN_DATA_SEED_OFFSET
