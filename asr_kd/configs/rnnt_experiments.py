"""RNN-T model, task and experiment configs, registered with exp_factory.

Experiments (`python -m asr_kd.bin.train --experiment=NAME`):
  rnnt_demo_teacher: full-context Conformer teacher for the demo corpus.
  rnnt_demo_student_streaming: small causal Conformer student, no distillation.
  rnnt_librispeech_conformer_l: Conformer (L) on LibriSpeech 960 h.
Concrete runs override paths and sizes with YAMLs under configs/.
"""

import dataclasses
from typing import Optional

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization
from official.modeling.hyperparams import base_config

from asr_kd.configs import conformer_config
from asr_kd.configs import data_config
from asr_kd.configs import rnnt_config
from asr_kd.optimization import optimization_config

NONFINITE_POLICIES = ('skip', 'stop')
LOSS_NORMALIZATIONS = ('utterance', 'token')
# With two CPU replicas on the 2-core development machine, about 36 minutes
# for the teacher and 34 for the distilled student. The teacher is still
# short of passes over the data: dev WER 14.16% at 3,600 steps, 12.47% at
# 5,400, 10.81% at 7,200 (runs T1, T2, T3, docs/results.md, "English demo
# corpus").
DEMO_TEACHER_TRAIN_STEPS = 7200
DEMO_TEACHER_PEAK_LEARNING_RATE = 3e-3
DEMO_STUDENT_TRAIN_STEPS = 5400


@dataclasses.dataclass
class RnntModelConfig(base_config.Config):
  """Encoder + prediction network + joint network.

  The vocabulary size comes from the tokenizer at build time; the
  `vocab_size` fields of `prediction` and `joint` are overwritten with it.

  Attributes:
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
  encoder: conformer_config.ConformerEncoderConfig = dataclasses.field(
      default_factory=conformer_config.ConformerEncoderConfig)
  prediction: rnnt_config.PredictionNetworkConfig = dataclasses.field(
      default_factory=rnnt_config.PredictionNetworkConfig)
  joint: rnnt_config.JointNetworkConfig = dataclasses.field(
      default_factory=rnnt_config.JointNetworkConfig)
  utterance_mean_normalization: bool = False

  def validate(self):
    super().validate()
    if self.utterance_mean_normalization and self.encoder.causal:
      raise ValueError(
          'model.utterance_mean_normalization needs the whole utterance; a '
          'streaming (encoder.causal) model cannot use it.')


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
    jit_compile: XLA-compile the forward and backward pass as one program.
      Off by default: on CPU, TF 2.17's XLA recompiles that program for
      every batch whose label values differ (measured: 4.8 s per step
      instead of 0.27 s for the demo teacher, docs/benchmarks.md), while
      graph mode runs the same step without recompiling.
    seed: the run's seed. It seeds weight initialization and dropout and,
      unless train_data.seed is set, the training data's order, dither and
      SpecAugment masks too (`train_data_seed`): one seed per run varies all
      three.
  """
  tokenizer_model_path: str = ''
  model: RnntModelConfig = dataclasses.field(default_factory=RnntModelConfig)
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


def adam_inverse_sqrt(peak_learning_rate: float, warmup_steps: int,
                      clipnorm: Optional[float] = 5.0
                     ) -> optimization_config.AsrOptimizationConfig:
  """Adam with linear warmup then lr ~ step^-0.5 (Vaswani et al. 2017).

  After warmup the rate is peak * sqrt(warmup_steps / step); the paper
  trains with this schedule.
  """
  return optimization_config.AsrOptimizationConfig({
      'optimizer': {
          'type': 'adam',
          'adam': {'beta_1': 0.9, 'beta_2': 0.98, 'epsilon': 1e-9,
                   'global_clipnorm': clipnorm},
      },
      'learning_rate': {
          'type': 'power',
          'power': {
              'initial_learning_rate': peak_learning_rate * warmup_steps**0.5,
              'power': -0.5,
          },
      },
      'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': warmup_steps,
                     'warmup_learning_rate': 0.0},
      },
  })


def adam_warmup_cosine(peak_learning_rate: float, warmup_steps: int,
                       decay_steps: int, clipnorm: Optional[float] = 5.0
                      ) -> optimization_config.AsrOptimizationConfig:
  """Adam with linear warmup, then cosine decay to 0 at `decay_steps`.

  For runs whose length is fixed in advance (the demo's minutes on a CPU):
  ending at a learning rate of 0 gives a lower final loss for the same
  number of steps than the inverse square root schedule, which stays high.
  The train binary sets `decay_steps` to trainer.train_steps
  (`decay_over_train_steps`), so overriding the run length keeps the shape.
  """
  config = adam_inverse_sqrt(peak_learning_rate, warmup_steps, clipnorm)
  config.learning_rate = optimization.LrConfig({
      'type': 'cosine',
      'cosine': {'initial_learning_rate': peak_learning_rate,
                 'decay_steps': decay_steps, 'alpha': 0.0},
  })
  return config


def muon_warmup_cosine(peak_learning_rate: float, warmup_steps: int,
                       decay_steps: int, clipnorm: Optional[float] = 5.0
                      ) -> optimization_config.AsrOptimizationConfig:
  """`adam_warmup_cosine`'s schedule with Muon on the hidden matrices.

  Muon (asr_kd/optimization/muon.py) updates the Conformer blocks' and the
  joint network's input matrices; Adam, with the same betas, the rest.
  """
  config = adam_warmup_cosine(peak_learning_rate, warmup_steps, decay_steps,
                              clipnorm)
  # The Adam sub-config stays, so `optimizer.type: adam` restores
  # adam_warmup_cosine exactly.
  config.optimizer.override({'type': 'muon',
                             'muon': {'global_clipnorm': clipnorm}})
  return config


def decay_over_train_steps(params: cfg.ExperimentConfig) -> bool:
  """Makes a cosine schedule end at the run's last step.

  Args:
    params: the resolved experiment config; changed in place.

  Returns:
    True if `decay_steps` was changed.
  """
  learning_rate = params.trainer.optimizer_config.learning_rate
  if learning_rate.type != 'cosine':
    return False
  train_steps = params.trainer.train_steps
  if learning_rate.cosine.decay_steps == train_steps:
    return False
  params.override({'trainer': {'optimizer_config': {'learning_rate': {
      'cosine': {'decay_steps': train_steps}}}}}, is_strict=True)
  return True


def set_train_steps(config: cfg.ExperimentConfig, train_steps: int):
  """Makes `config` a run of `train_steps`: validated once, at the end, and
  with its cosine schedule ending there."""
  config.trainer.train_steps = train_steps
  config.trainer.validation_interval = train_steps
  decay_over_train_steps(config)


def _demo_data(split: str, is_training: bool) -> data_config.AsrDataConfig:
  """Data config for the demo corpus laid out by `make demo`."""
  return data_config.AsrDataConfig(
      input_path=f'demo_run/tfrecords/{split}-*.tfrecord*',
      is_training=is_training,
      global_batch_size=16,
      # Demo utterances last 0.5-8 s (median 2.5 s). Six frame buckets and
      # labels padded to a multiple of 16 keep padding low (1.5x the
      # audio-seconds/s of two buckets with labels padded to 64,
      # docs/results.md). About 9,600 frames per training batch.
      bucket_boundaries=[200, 300, 400, 500, 600, 800],
      bucket_batch_sizes=[48, 32, 24, 19, 16, 12] if is_training else
      [32, 24, 16, 12, 12, 8],
      # The demo tokenizer is character-level: up to about 160 labels for
      # 8 s of fast speech.
      max_label_length=192,
      label_length_multiple=16,
      shuffle_buffer_size=1000 if is_training else 0,
      drop_remainder=is_training,
      # No data seed: the training data's follows task.seed
      # (train_data_seed).
      feature_stats_file='demo_run/feature_stats.json',
      # A lighter SpecAugment than LibriSpeech's policy: the demo models
      # train for minutes, not days.
      spec_augment=data_config.SpecAugmentConfig(
          enabled=is_training, num_freq_masks=2, freq_mask_max_bins=15,
          num_time_masks=5, time_mask_max_ratio=0.05))


def _demo_train_data() -> data_config.AsrDataConfig:
  """The demo models' training batches: many buckets, even batch sizes."""
  train_data = _demo_data('train', is_training=True)
  # Fifteen 50-frame buckets of about 4,800 padded frames: padding falls
  # from 17% to 8% of the frames, so each step carries 1.09x the audio.
  train_data.bucket_boundaries = list(range(100, 801, 50))
  # Even sizes, so that `train --cpu_replicas=2` (what `make demo` runs on
  # a CPU-only host) can halve every batch.
  train_data.bucket_batch_sizes = [48, 32, 24, 20, 16, 14, 12, 10, 10, 8, 8,
                                   8, 6, 6, 6]
  # Labels padded to the batch's longest only: a 10% shorter label axis for
  # the joint, the loss and the prediction network's loop than multiples of
  # 16, and graph mode runs any length without retracing. The step-time
  # gain was within timing noise (docs/results.md, "Tenth session").
  train_data.label_length_multiple = 1
  return train_data


def _experiment(task: RnntTaskConfig, train_steps: int,
                optimizer: optimization.OptimizationConfig,
                steps_per_loop: int = 100) -> cfg.ExperimentConfig:
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(distribution_strategy='one_device',
                                num_gpus=0),
      task=task,
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=-1,
          validation_interval=train_steps,
          steps_per_loop=steps_per_loop,
          summary_interval=steps_per_loop,
          checkpoint_interval=steps_per_loop,
          max_to_keep=3,
          optimizer_config=optimizer,
          # Model Garden's recovery restores the last checkpoint when a loop
          # ends with a NaN loss; the task's nonfinite_policy acts per step.
          recovery_max_trials=3,
          best_checkpoint_eval_metric='',
      ),
      restrictions=[
          'task.train_data.is_training != None',
          'task.validation_data.is_training != None',
      ])


def _prediction(lstm_units: int, embedding_dim: int,
                dropout_rate: float = 0.1
               ) -> rnnt_config.PredictionNetworkConfig:
  return rnnt_config.PredictionNetworkConfig(
      type='lstm', embedding_dim=embedding_dim, num_layers=1,
      lstm_units=lstm_units, dropout_rate=dropout_rate)


@exp_factory.register_config_factory('rnnt_demo_teacher')
def rnnt_demo_teacher() -> cfg.ExperimentConfig:
  """Full-context Conformer teacher sized for half an hour on 2 CPU cores.

  5,400 steps with `train --cpu_replicas=2` on 2 cores (about 29 minutes
  at the machine's usual pace) see each of the demo's 24,000 training
  utterances about 3.7 times: the model is far from fitting them, so it
  trains without dropout or SpecAugment, and on half-size batches (twice
  the updates for about 7% less audio per second). Muon on the hidden
  matrices costs 1.18x Adam's step time and reached a lower WER in fewer
  steps (docs/results.md, "Eighteenth session", has the measurements).
  """
  train_data = _demo_train_data()
  train_data.spec_augment.enabled = False
  # Speed perturbation lowered test, ood and dev WER on the English corpus
  # (docs/results.md, "English demo corpus"): unseen voices differ most in
  # rate and pitch, which it varies.
  train_data.speed_perturbation.enabled = True
  task = RnntTaskConfig(
      tokenizer_model_path='demo_run/tokenizer/spm.model',
      model=RnntModelConfig(
          encoder=conformer_config.conformer_demo_teacher(),
          prediction=_prediction(lstm_units=256, embedding_dim=128,
                                 dropout_rate=0.0),
          # 128 is plenty for 29 outputs and 1.1x the steps of 256.
          joint=rnnt_config.JointNetworkConfig(joint_dim=128)),
      # With 29 labels the full [B, T, U+1, V] logits are small; the fused
      # loss's chunk loop costs 1.13x the step time on CPU. The auxiliary
      # CTC loss lowered the mean of dev and test WER under both seed
      # pairs tried, at no measurable cost in speed with TF's CTC kernel
      # (docs/results.md, "Twelfth session").
      loss=RnntLossConfig(fused=False, ctc_weight=0.3),
      train_data=train_data,
      validation_data=_demo_data('dev', is_training=False))
  return _experiment(task, train_steps=DEMO_TEACHER_TRAIN_STEPS,
                     optimizer=muon_warmup_cosine(
                         DEMO_TEACHER_PEAK_LEARNING_RATE, warmup_steps=200,
                         decay_steps=DEMO_TEACHER_TRAIN_STEPS))


@exp_factory.register_config_factory('rnnt_demo_student_streaming')
def rnnt_demo_student_streaming() -> cfg.ExperimentConfig:
  """Causal streaming student trained from labels alone (the KD baseline).

  The teacher's recipe on the student's causal encoder: the same batches
  (even sizes for `train --cpu_replicas=2`), auxiliary CTC loss and Muon
  warmup-cosine schedule, and like the teacher no dropout and no
  SpecAugment, which cost the underfitted student a third of its test WER
  (conformer_config.conformer_demo_student). Speed perturbation, the
  teacher's gain, did not help the student (run S2, docs/results.md).
  Random start offsets teach it every framing phase: trained on one, it
  lost 1.8 points of test WER to the streaming frontend's 20 ms zero
  prefix alone (docs/results.md, "The streamed student is worse").
  """
  train_data = _demo_train_data()
  train_data.spec_augment.enabled = False
  train_data.start_offset.enabled = True
  task = RnntTaskConfig(
      tokenizer_model_path='demo_run/tokenizer/spm.model',
      model=RnntModelConfig(
          encoder=conformer_config.conformer_demo_student(),
          prediction=_prediction(lstm_units=160, embedding_dim=96,
                                 dropout_rate=0.0),
          joint=rnnt_config.JointNetworkConfig(joint_dim=160)),
      loss=RnntLossConfig(fused=False, ctc_weight=0.3),
      train_data=train_data,
      validation_data=_demo_data('dev', is_training=False))
  return _experiment(task, train_steps=DEMO_STUDENT_TRAIN_STEPS,
                     optimizer=muon_warmup_cosine(
                         DEMO_TEACHER_PEAK_LEARNING_RATE, warmup_steps=200,
                         decay_steps=DEMO_STUDENT_TRAIN_STEPS))


@exp_factory.register_config_factory('rnnt_librispeech_conformer_l')
def rnnt_librispeech_conformer_l() -> cfg.ExperimentConfig:
  """Conformer (L) on LibriSpeech 960 h (Gulati et al. 2020 sizes)."""
  def librispeech(pattern: str, is_training: bool):
    return data_config.AsrDataConfig(
        input_path=pattern,
        is_training=is_training,
        global_batch_size=2048 if is_training else 256,
        shuffle_buffer_size=20000 if is_training else 0,
        drop_remainder=is_training,
        bucket_boundaries=[400, 800, 1200, 1700],
        max_label_length=320,
        feature_stats_file='librispeech/feature_stats.json',
        spec_augment=data_config.SpecAugmentConfig(enabled=is_training))
  task = RnntTaskConfig(
      tokenizer_model_path='librispeech/tokenizer/spm.model',
      model=RnntModelConfig(
          encoder=conformer_config.conformer_l(),
          prediction=_prediction(lstm_units=640, embedding_dim=640),
          joint=rnnt_config.JointNetworkConfig(joint_dim=640)),
      train_data=librispeech('librispeech/tfrecords/train-*', True),
      validation_data=librispeech('librispeech/tfrecords/dev-clean-*', False))
  config = _experiment(task, train_steps=200000,
                       optimizer=adam_inverse_sqrt(5e-4, warmup_steps=10000),
                       steps_per_loop=1000)
  config.runtime.distribution_strategy = 'tpu'
  config.runtime.mixed_precision_dtype = 'mixed_bfloat16'
  return config
