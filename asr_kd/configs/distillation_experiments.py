"""Distillation task config and the soft/hard-target comparison experiments.

Experiments (`python -m asr_kd.bin.train --experiment=NAME`), all on the demo
corpus as `make demo` lays it out under demo_run/ (see docs/distillation.md,
"Experiments"). `python -m asr_kd.bin.experiments` points them at the
comparison's data (a labeled fifth of the training audio, the rest an
unlabeled pool) and teachers:

  kd_demo_student: the streaming student `make demo` ships (full-vocabulary
    soft targets from the demo teacher, all of train, no noise).
  kd_demo_big_teacher: the full-context teacher of (a), more than 3x the
    student's parameters, trained on the labeled subset.
  Every row of (a) and (b) trains the demo student's model with noisy
  student training's noise (COMPARISON_STUDENT_NOISE):
  (a) big full-context teacher -> streaming student:
    kd_demo_student_none: no distillation (rnnt_demo_student_streaming +
      noise).
    kd_demo_student_hard: hard targets, the teacher's pseudo-labels of the
      pool next to the labeled subset's transcripts.
    kd_demo_student_soft_full: online full-vocabulary soft targets.
    kd_demo_student_soft_3class: online 3-class soft targets.
  (b) self-training, teacher = a student-sized model (a kd_demo_student_none
    run, then each generation's student):
    kd_demo_self_hard: its pseudo-labels.
    kd_demo_self_soft: online full-vocabulary soft targets.
"""

import dataclasses

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling.hyperparams import base_config

from asr_kd.configs import conformer_config
from asr_kd.configs import rnnt_experiments

KINDS = ('full', 'three_class', 'none')
DEMO_TEACHER_DIR = 'demo_run/teacher'
DEMO_SELF_TEACHER_DIR = 'demo_run/self_teacher'
# Pseudo-labelled TFRecords (`python -m asr_kd.bin.pseudo_label`) of the
# train and unlabeled splits, one folder per teacher.
DEMO_PSEUDO_LABELS = 'demo_run/pseudo_labels/{teacher}/*.tfrecord*'
# Steps of every comparison run (override: --params_override=
# trainer.train_steps=N, or `asr_kd.bin.experiments --train_steps=N`). Fewer
# than the shipped student's DEMO_STUDENT_TRAIN_STEPS: the comparison trains
# dozens of students on 2 cores.
DEMO_KD_TRAIN_STEPS = 3600
# The comparison's big teacher: the demo teacher's former schedule (its
# steps take about 3x the demo teacher's).
DEMO_BIG_TEACHER_TRAIN_STEPS = 3600
# The labeled subset of the demo's training audio that
# `asr_kd.bin.experiments` splits off (the rest is the unlabeled pool).
DEMO_LABELED_SUBSET = 'demo_run/experiments/data/labeled-*.tfrecord*'


@dataclasses.dataclass
class SoftTargetConfig(base_config.Config):
  """The soft-target term added to the student's RNN-T loss.

  L = L_rnnt(student; y) + alpha * KL, see docs/distillation.md.

  Attributes:
    kind: 'full' (whole vocabulary), 'three_class' ({y_(u+1), blank, rest})
      or 'none' (no KL, no teacher: plain RNN-T training, e.g. on
      pseudo-labels for hard-target distillation).
    alpha: KL weight. The KL is a sum over every lattice node (T * (U + 1)
      per utterance, thousands) while the RNN-T loss is one sequence
      log-likelihood, hence the paper's small scale (0.01-0.001); 0.01 is
      the default, the top of that range, because the demo models are small
      and trained briefly.
    temperature: tau > 0 applied to both models' logits.
    scale_by_temperature_squared: multiply the KL by tau**2 (keeps the
      gradient scale independent of tau).
    teacher_right_shift: delay, in student frames, applied to the
      teacher's distributions so they line up with a streaming student that
      emits later than a full-context teacher (0 = none).
    teacher_sees_augmented_features: give the teacher the student's
      SpecAugmented features instead of the same features before
      SpecAugment (the default: the teacher's targets stay those of the
      clean input, as in noisy student training).
  """
  kind: str = 'full'
  alpha: float = 0.01
  temperature: float = 1.0
  scale_by_temperature_squared: bool = True
  teacher_right_shift: int = 0
  teacher_sees_augmented_features: bool = False


@dataclasses.dataclass
class DistillationTaskConfig(rnnt_experiments.RnntTaskConfig):
  """RNN-T training of a student with an online frozen teacher.

  Attributes:
    teacher_model_dir: a folder written by `python -m asr_kd.bin.train`
      (params.yaml + checkpoints); required unless distillation.kind is
      'none'. The teacher must use the student's tokenizer.
    teacher_checkpoint: a checkpoint prefix to restore instead of the latest
      one in teacher_model_dir.
    distillation: the soft-target loss. The teacher frames per student frame
      are not configured: they are student subsampling factor / teacher
      subsampling factor, which must be an integer >= 1.
  """
  teacher_model_dir: str = ''
  teacher_checkpoint: str = ''
  distillation: SoftTargetConfig = dataclasses.field(
      default_factory=SoftTargetConfig)

  def validate(self):
    super().validate()
    kd = self.distillation
    if kd.kind not in KINDS:
      raise ValueError(f'task.distillation.kind must be one of {KINDS}, got '
                       f'{kd.kind!r}.')
    if kd.alpha < 0:
      raise ValueError(f'task.distillation.alpha must be >= 0, got '
                       f'{kd.alpha}.')
    if kd.temperature <= 0:
      raise ValueError(f'task.distillation.temperature must be > 0, got '
                       f'{kd.temperature}.')
    if self.loss.pruned_range and kd.kind != 'none':
      raise ValueError('task.loss.pruned_range is not available with soft '
                       f'targets (distillation.kind={kd.kind!r} uses the full '
                       'lattice); it is with kind \'none\' (labels or '
                       'pseudo-labels alone).')
    if kd.teacher_right_shift < 0:
      raise ValueError(f'task.distillation.teacher_right_shift must be >= 0, '
                       f'got {kd.teacher_right_shift}.')
    if kd.kind != 'none' and not self.teacher_model_dir:
      raise ValueError(
          f'task.teacher_model_dir is required for distillation.kind='
          f'{kd.kind!r} (a model_dir written by asr_kd.bin.train).')


def teacher_frame_ratio(teacher_subsampling_factor: int,
                        student_subsampling_factor: int) -> int:
  """Teacher encoder frames per student encoder frame.

  Args:
    teacher_subsampling_factor: the teacher encoder's time reduction.
    student_subsampling_factor: the student encoder's time reduction.

  Returns:
    student_subsampling_factor / teacher_subsampling_factor.

  Raises:
    ValueError: unless that is an integer >= 1 (the teacher must run at the
      student's frame rate or an integer multiple of it).
  """
  ratio, remainder = divmod(student_subsampling_factor,
                            teacher_subsampling_factor)
  if remainder or ratio < 1:
    raise ValueError(
        f'teacher subsampling factor {teacher_subsampling_factor} does not '
        f'divide the student subsampling factor {student_subsampling_factor}:'
        ' the teacher needs an integer number (>= 1) of frames per student '
        'frame.')
  return ratio


# Noisy student training's noise on every comparison row's student. The
# rows learn from a labeled fifth of train, seen about 12 times per run, or
# from pseudo-labels, where the paper's noisy student training needs it;
# the shipped student (kd_demo_student) learns from all of train without it.
COMPARISON_STUDENT_NOISE = {
    'model': {'encoder': {'dropout_rate': 0.1, 'attention_dropout_rate': 0.1},
              'prediction': {'dropout_rate': 0.1}},
    'train_data': {'spec_augment': {'enabled': True}},
}


def _demo_student_task(task_class=rnnt_experiments.RnntTaskConfig,
                       noise: bool = True,
                       **fields) -> rnnt_experiments.RnntTaskConfig:
  """The demo streaming student's task as `task_class`, with `fields` set.

  Args:
    task_class: the task config class.
    noise: add COMPARISON_STUDENT_NOISE (the comparison's rows).
    **fields: task fields to override.
  """
  base = rnnt_experiments.rnnt_demo_student_streaming().task.as_dict()
  task = task_class()
  task.override(base, is_strict=True)
  if noise:
    task.override(COMPARISON_STUDENT_NOISE, is_strict=True)
  task.override(fields, is_strict=True)
  return task


def _demo_experiment(task: rnnt_experiments.RnntTaskConfig,
                     train_steps: int = DEMO_KD_TRAIN_STEPS
                    ) -> cfg.ExperimentConfig:
  """The demo student's trainer settings around `task`, for `train_steps`."""
  config = rnnt_experiments.rnnt_demo_student_streaming()
  config.task = task
  rnnt_experiments.set_train_steps(config, train_steps)
  return config


def _pseudo_label_data(teacher: str) -> dict:
  return {'input_path': DEMO_PSEUDO_LABELS.format(teacher=teacher),
          'label_source': 'pseudo_label'}


def _soft(teacher_model_dir: str, kind: str,
          noise: bool = True) -> DistillationTaskConfig:
  return _demo_student_task(
      DistillationTaskConfig, noise=noise,
      teacher_model_dir=teacher_model_dir, distillation={'kind': kind})


@exp_factory.register_config_factory('kd_demo_student')
def kd_demo_student() -> cfg.ExperimentConfig:
  """The streaming student that `make demo` distills and ships.

  rnnt_demo_student_streaming's recipe (no dropout or SpecAugment) on all of
  the demo's training audio, plus the full-vocabulary KL to the online
  demo teacher.
  """
  return _demo_experiment(_soft(DEMO_TEACHER_DIR, 'full', noise=False),
                          rnnt_experiments.DEMO_STUDENT_TRAIN_STEPS)


@exp_factory.register_config_factory('kd_demo_big_teacher')
def kd_demo_big_teacher() -> cfg.ExperimentConfig:
  """The comparison's full-context teacher, trained on the labeled subset.

  rnnt_demo_teacher's schedule, batches and loss around a model more than
  3x the student's size (conformer_demo_big_teacher, a wider prediction
  and joint network). With a fifth of the audio it sees each utterance
  about 12 times, so SpecAugment is on (the demo teacher's is off).
  """
  config = rnnt_experiments.rnnt_demo_teacher()
  task = config.task
  task.model.encoder = conformer_config.conformer_demo_big_teacher()
  task.model.prediction.lstm_units = 320
  task.model.prediction.dropout_rate = 0.1
  task.model.joint.joint_dim = 256
  task.train_data.input_path = DEMO_LABELED_SUBSET
  task.train_data.spec_augment.enabled = True
  rnnt_experiments.set_train_steps(config, DEMO_BIG_TEACHER_TRAIN_STEPS)
  return config


@exp_factory.register_config_factory('kd_demo_student_none')
def kd_demo_student_none() -> cfg.ExperimentConfig:
  """Streaming student from ground truth alone (the comparison's baseline)."""
  return _demo_experiment(_demo_student_task())


@exp_factory.register_config_factory('kd_demo_student_hard')
def kd_demo_student_hard() -> cfg.ExperimentConfig:
  """Streaming student on the full-context teacher's pseudo-labels."""
  return _demo_experiment(
      _demo_student_task(train_data=_pseudo_label_data('teacher')))


@exp_factory.register_config_factory('kd_demo_student_soft_full')
def kd_demo_student_soft_full() -> cfg.ExperimentConfig:
  """Streaming student + full-vocabulary KL to the full-context teacher."""
  return _demo_experiment(_soft(DEMO_TEACHER_DIR, 'full'))


@exp_factory.register_config_factory('kd_demo_student_soft_3class')
def kd_demo_student_soft_3class() -> cfg.ExperimentConfig:
  """Streaming student + 3-class KL to the full-context teacher."""
  return _demo_experiment(_soft(DEMO_TEACHER_DIR, 'three_class'))


@exp_factory.register_config_factory('kd_demo_self_hard')
def kd_demo_self_hard() -> cfg.ExperimentConfig:
  """Same-size self-training on the student-sized teacher's pseudo-labels."""
  return _demo_experiment(
      _demo_student_task(train_data=_pseudo_label_data('self')))


@exp_factory.register_config_factory('kd_demo_self_soft')
def kd_demo_self_soft() -> cfg.ExperimentConfig:
  """Same-size self-training with full-vocabulary soft targets."""
  return _demo_experiment(_soft(DEMO_SELF_TEACHER_DIR, 'full'))
