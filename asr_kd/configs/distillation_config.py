"""The distillation task's config schema: the student's RNN-T task plus a
frozen teacher and the soft-target term (docs/distillation.md)."""

import dataclasses

from official.modeling.hyperparams import base_config

from asr_kd.configs import task_config

KINDS = ('full', 'three_class', 'none')
TARGET_SOURCES = ('online', 'stored')


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
    targets: 'online' (the teacher runs in every step) or 'stored' (the
      training records' top-k teacher targets, written by
      asr_kd.bin.teacher_targets at this temperature; kind 'full' only,
      no teacher is loaded; docs/distillation.md, "Stored teacher
      targets").
    top_k: with targets 'stored', the ids per node the records hold
      (`asr_kd.bin.teacher_targets --top_k`), checked on every record.
    online_top_k: with targets 'online' and kind 'full', > 0 keeps the
      online teacher's top k tokens per node and groups the others into
      one class, the stored targets' KL computed from the live teacher
      (to tell that grouping from the rest of storage); 0 (the default):
      the whole vocabulary.
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
  targets: str = 'online'
  top_k: int = 8
  online_top_k: int = 0
  teacher_sees_augmented_features: bool = False


@dataclasses.dataclass
class DistillationTaskConfig(task_config.RnntTaskConfig):
  """RNN-T training of a student with an online frozen teacher.

  Attributes:
    teacher_model_dir: a folder written by `python -m asr_kd.bin.train`
      (params.yaml + checkpoints); required unless distillation.kind is
      'none' or distillation.targets 'stored'. The teacher must use the
      student's tokenizer.
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
    if kd.targets not in TARGET_SOURCES:
      raise ValueError(f'task.distillation.targets must be one of '
                       f'{TARGET_SOURCES}, got {kd.targets!r}.')
    if kd.online_top_k < 0:
      raise ValueError(f'task.distillation.online_top_k must be >= 0, got '
                       f'{kd.online_top_k}.')
    if kd.online_top_k and (kd.targets != 'online' or kd.kind != 'full'):
      raise ValueError('task.distillation.online_top_k cuts the online '
                       'teacher\'s full-vocabulary targets: it needs '
                       'targets=\'online\' and kind=\'full\', got '
                       f'targets={kd.targets!r}, kind={kd.kind!r}.')
    if kd.targets == 'stored':
      if kd.kind != 'full':
        raise ValueError('stored teacher targets hold top-k distributions '
                         'for the full-vocabulary KL: they need '
                         f'distillation.kind=\'full\', got {kd.kind!r}.')
      if kd.teacher_sees_augmented_features:
        raise ValueError('stored teacher targets were computed on the '
                         'unaugmented audio; teacher_sees_augmented_features '
                         'needs targets=\'online\'.')
      return
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
