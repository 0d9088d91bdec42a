"""The RNN-T experiments, registered with exp_factory.

Experiments (`python -m asr_kd.bin.train --experiment=NAME`):
  rnnt_demo_teacher: full-context Conformer teacher for the demo corpus.
  rnnt_demo_student_streaming: small causal Conformer student, no distillation.
  rnnt_librispeech_conformer_l: Conformer (L) on LibriSpeech 960 h.
Concrete runs override paths and sizes with YAMLs under configs/.
"""

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import optimization

from asr_kd.configs import conformer_config
from asr_kd.configs import data_config
from asr_kd.configs import optimizer_recipes
from asr_kd.configs import rnnt_config
from asr_kd.configs import task_config

# With two CPU replicas on the 2-core development machine, about 36 minutes
# for the teacher and 34 for the distilled student. The teacher is still
# short of passes over the data: dev WER 14.16% at 3,600 steps, 12.47% at
# 5,400, 10.81% at 7,200 (runs T1, T2, T3, docs/results.md, "English demo
# corpus").
DEMO_TEACHER_TRAIN_STEPS = 7200
DEMO_TEACHER_PEAK_LEARNING_RATE = 3e-3
DEMO_STUDENT_TRAIN_STEPS = 5400
DEMO_FEATURE_STATS = 'demo_run/feature_stats.json'


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


def _experiment(task: task_config.RnntTaskConfig, train_steps: int,
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
  task = task_config.RnntTaskConfig(
      tokenizer_model_path='demo_run/tokenizer/spm.model',
      model=rnnt_config.RnntModelConfig(
          feature_stats_file=DEMO_FEATURE_STATS,
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
      loss=task_config.RnntLossConfig(fused=False, ctc_weight=0.3),
      train_data=train_data,
      validation_data=_demo_data('dev', is_training=False))
  return _experiment(task, train_steps=DEMO_TEACHER_TRAIN_STEPS,
                     optimizer=optimizer_recipes.muon_warmup_cosine(
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
  task = task_config.RnntTaskConfig(
      tokenizer_model_path='demo_run/tokenizer/spm.model',
      model=rnnt_config.RnntModelConfig(
          feature_stats_file=DEMO_FEATURE_STATS,
          encoder=conformer_config.conformer_demo_student(),
          prediction=_prediction(lstm_units=160, embedding_dim=96,
                                 dropout_rate=0.0),
          joint=rnnt_config.JointNetworkConfig(joint_dim=160)),
      loss=task_config.RnntLossConfig(fused=False, ctc_weight=0.3),
      train_data=train_data,
      validation_data=_demo_data('dev', is_training=False))
  return _experiment(task, train_steps=DEMO_STUDENT_TRAIN_STEPS,
                     optimizer=optimizer_recipes.muon_warmup_cosine(
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
        spec_augment=data_config.SpecAugmentConfig(enabled=is_training))
  task = task_config.RnntTaskConfig(
      tokenizer_model_path='librispeech/tokenizer/spm.model',
      model=rnnt_config.RnntModelConfig(
          feature_stats_file='librispeech/feature_stats.json',
          encoder=conformer_config.conformer_l(),
          prediction=_prediction(lstm_units=640, embedding_dim=640),
          joint=rnnt_config.JointNetworkConfig(joint_dim=640)),
      # One static shape per bucket on the TPU: labels padded to 80, 160,
      # 240 and 320 (about 19 per second of the bucket's bound, well above
      # read speech in word pieces).
      train_data=data_config.with_static_shapes(
          librispeech('librispeech/tfrecords/train-*', True)),
      validation_data=librispeech('librispeech/tfrecords/dev-clean-*', False))
  config = _experiment(task, train_steps=200000,
                       optimizer=optimizer_recipes.adam_inverse_sqrt(
                           5e-4, warmup_steps=10000),
                       steps_per_loop=1000)
  config.runtime.distribution_strategy = 'tpu'
  config.runtime.mixed_precision_dtype = 'mixed_bfloat16'
  return config
