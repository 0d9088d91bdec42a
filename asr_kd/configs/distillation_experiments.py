"""The distillation experiments: the shipped student and the soft/hard-target
comparison's rows, registered with exp_factory.

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

from official.core import config_definitions as cfg
from official.core import exp_factory

from asr_kd.configs import conformer_config
from asr_kd.configs import distillation_config
from asr_kd.configs import optimizer_recipes
from asr_kd.configs import rnnt_experiments
from asr_kd.configs import task_config

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


# Noisy student training's noise on every comparison row's student. The
# rows learn from a labeled fifth of train, seen about 12 times per run, or
# from pseudo-labels, where the paper's noisy student training needs it;
# the shipped student (kd_demo_student) learns from all of train without it.
COMPARISON_STUDENT_NOISE = {
    'model': {'encoder': {'dropout_rate': 0.1, 'attention_dropout_rate': 0.1},
              'prediction': {'dropout_rate': 0.1}},
    'train_data': {'spec_augment': {'enabled': True}},
}


def _demo_student_task(task_class=task_config.RnntTaskConfig,
                       noise: bool = True,
                       **fields) -> task_config.RnntTaskConfig:
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


def _demo_experiment(task: task_config.RnntTaskConfig,
                     train_steps: int = DEMO_KD_TRAIN_STEPS
                    ) -> cfg.ExperimentConfig:
  """The demo student's trainer settings around `task`, for `train_steps`."""
  config = rnnt_experiments.rnnt_demo_student_streaming()
  config.task = task
  optimizer_recipes.set_train_steps(config, train_steps)
  return config


def _pseudo_label_data(teacher: str) -> dict:
  return {'input_path': DEMO_PSEUDO_LABELS.format(teacher=teacher),
          'label_source': 'pseudo_label'}


def _soft(teacher_model_dir: str, kind: str,
          noise: bool = True) -> distillation_config.DistillationTaskConfig:
  return _demo_student_task(
      distillation_config.DistillationTaskConfig, noise=noise,
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
  optimizer_recipes.set_train_steps(config, DEMO_BIG_TEACHER_TRAIN_STEPS)
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
