"""The Noisy Student Training run config (a YAML file, see docs/noisy_student.md)."""

import dataclasses
from typing import List

import tensorflow as tf

from official.modeling import hyperparams
from official.modeling.hyperparams import base_config

TARGETS = ('hard', 'soft')


@dataclasses.dataclass
class TrainRunConfig(base_config.Config):
  """One `python -m asr_kd.bin.train` run.

  Attributes:
    experiment: registered experiment name.
    config_file: YAML applied to the experiment ('' = none).
    params_override: Model Garden override string ('a.b=1,c=x') or YAML,
      applied last.
  """
  experiment: str = ''
  config_file: str = ''
  params_override: str = ''


@dataclasses.dataclass
class TeacherConfig(TrainRunConfig):
  """The generation-0 teacher.

  Attributes:
    model_dir: an already trained teacher (params.yaml + checkpoints); when
      empty, the teacher is trained first (stage teacher/train) from
      experiment/config_file/params_override.
  """
  model_dir: str = ''


@dataclasses.dataclass
class NoisyStudentConfig(base_config.Config):
  """Noisy Student Training (Xie et al. 2020; Park et al. 2020 for ASR).

  Attributes:
    work_dir: every stage's output goes below it (teacher/,
      generation_N/{pseudo_labels,student}/, done markers).
    initial_teacher: the first teacher.
    unlabeled_input: comma-separated TFRecord globs of unlabeled audio.
    labeled_input: comma-separated TFRecord globs of labeled audio ('' =
      none). Its records join the student's training set.
    relabel_labeled: True: the teacher labels the labeled audio too; False:
      its transcripts are kept as labels (confidence 1).
    num_generations: student generations; each student is the next teacher.
    student: the student's training run, for every generation.
    generation_overrides: optional params_override per generation (index 0 =
      generation 1), applied after `student.params_override`.
    targets: 'hard' (train on the teacher's pseudo-labels) or 'soft'
      (pseudo-labels plus the online KL to the teacher; needs a
      distillation experiment, e.g. kd_demo_student_soft_full).
    min_confidence: pseudo-labels below this confidence are dropped at
      training time (task.train_data.min_pseudo_label_confidence).
    beam_size: teacher beam width.
    batch_size: utterances the teacher decodes together.
    num_shards: pseudo-label shards per generation.
    beam_args: Beam pipeline flags for the pseudo-labeling pipeline.
    evaluate: run `asr_kd.bin.train --mode=eval` on each student and keep
      its metrics in the generation's done marker.
  """
  work_dir: str = ''
  initial_teacher: TeacherConfig = dataclasses.field(
      default_factory=TeacherConfig)
  unlabeled_input: str = ''
  labeled_input: str = ''
  relabel_labeled: bool = False
  num_generations: int = 1
  student: TrainRunConfig = dataclasses.field(default_factory=TrainRunConfig)
  generation_overrides: List[str] = dataclasses.field(default_factory=list)
  targets: str = 'hard'
  min_confidence: float = 0.0
  beam_size: int = 8
  batch_size: int = 8
  num_shards: int = 1
  beam_args: List[str] = dataclasses.field(default_factory=list)
  evaluate: bool = False

  def validate(self):
    """Raises ValueError with a one-line message for a bad config."""
    if not self.work_dir:
      raise ValueError('work_dir is required')
    if not self.unlabeled_input:
      raise ValueError('unlabeled_input is required')
    if not (self.initial_teacher.model_dir or
            self.initial_teacher.experiment):
      raise ValueError('initial_teacher needs model_dir (a trained teacher) '
                       'or experiment (to train one)')
    if not self.student.experiment:
      raise ValueError('student.experiment is required')
    if self.num_generations < 1:
      raise ValueError(f'num_generations must be >= 1, got '
                       f'{self.num_generations}')
    if len(self.generation_overrides) > self.num_generations:
      raise ValueError(f'{len(self.generation_overrides)} '
                       'generation_overrides for '
                       f'{self.num_generations} generations')
    if self.targets not in TARGETS:
      raise ValueError(f'targets must be one of {TARGETS}, got '
                       f'{self.targets!r}')
    if not 0.0 <= self.min_confidence <= 1.0:
      raise ValueError(f'min_confidence must be in [0, 1], got '
                       f'{self.min_confidence}')


def load_config(path: str) -> NoisyStudentConfig:
  """Reads and validates a YAML run config (unknown keys are errors).

  Raises:
    ValueError: missing file, unknown keys, wrong types or invalid values.
  """
  if not tf.io.gfile.exists(path):
    raise ValueError(f'config file {path} not found')
  config = NoisyStudentConfig()
  try:
    config = hyperparams.override_params_dict(config, path, is_strict=True)
  except (KeyError, AttributeError, TypeError) as error:
    raise ValueError(f'{path}: {error}') from error
  config.validate()
  return config
