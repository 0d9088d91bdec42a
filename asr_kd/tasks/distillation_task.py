"""Online soft-target distillation: a frozen teacher inside the train step.

`DistillationTask` trains an RNN-T student exactly like `RnntTask` (same
XLA train step, non-finite policy and metrics) with the loss

  L = L_rnnt(student; y) + alpha * KL(teacher || student)

(composed with the auxiliary terms by asr_kd/tasks/objective.py) where the
teacher, restored from its model_dir, runs with training=False on the same
batch. The teacher lives on the task, not on the student model:
Model Garden checkpoints and optimizes `model` only, so the teacher's
variables are in no student checkpoint, get no gradient and no optimizer
slot. See docs/distillation.md, "Online teacher (DistillationTask)".
"""

from typing import Dict, Optional

import tensorflow as tf

from official.core import task_factory

from asr_kd.configs import distillation_config
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.inference import model_loader
from asr_kd.modeling import rnnt_model
from asr_kd.tasks import objective as objective_lib
from asr_kd.tasks import rnnt_task

def load_teacher(model_dir: str, checkpoint: str,
                 tokenizer: tokenizer_lib.Tokenizer) -> rnnt_model.RnntModel:
  """Restores the teacher of `model_dir` (any RNN-T training run), frozen.

  Args:
    model_dir: the teacher's training folder.
    checkpoint: an explicit checkpoint prefix, or '' for the latest.
    tokenizer: the student's tokenizer; the teacher must share it (the KL
      compares distributions id by id).

  Returns:
    The teacher, `trainable=False`, feature statistics restored.

  Raises:
    FileNotFoundError: missing folder or checkpoint.
    model_loader.ModelLoadError: a params.yaml or checkpoint that does not
      describe a usable model, or a damaged checkpoint file (named); the
      message starts with 'teacher: '.
    ValueError: another tokenizer.
  """
  if not tf.io.gfile.isdir(model_dir):
    raise FileNotFoundError(f'teacher model_dir not found: {model_dir}')
  try:
    checkpoint = model_loader.find_checkpoint(model_dir, checkpoint or None)
  except model_loader.ModelLoadError as error:
    raise FileNotFoundError(f'teacher {error}') from error
  try:
    loaded = model_loader.load_model(model_dir, checkpoint)
  except model_loader.ModelLoadError as error:
    raise model_loader.ModelLoadError(f'teacher: {error}') from error
  if loaded.tokenizer.id_to_piece != tokenizer.id_to_piece:
    raise ValueError(
        f'the teacher ({model_dir}) was trained with tokenizer '
        f'{loaded.config.task.tokenizer_model_path}, whose vocabulary '
        'differs from the student\'s.')
  loaded.model.trainable = False
  return loaded.model


@task_factory.register_task_cls(distillation_config.DistillationTaskConfig)
class DistillationTask(rnnt_task.RnntTask):
  """Trains an RNN-T student with soft targets from a frozen teacher."""

  def __init__(self,
               params: distillation_config.DistillationTaskConfig,
               logging_dir: Optional[str] = None, name: Optional[str] = None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    self.objective = objective_lib.Objective(
        params.loss, self.tokenizer.blank_id, params.jit_compile,
        soft_targets=params.distillation)
    self._teacher = None
    self._teacher_frame_ratio = 1

  @property
  def teacher(self) -> Optional[rnnt_model.RnntModel]:
    """The frozen teacher (None before `build_model` or for kind 'none')."""
    return self._teacher

  @property
  def teacher_frame_ratio(self) -> int:
    """Teacher encoder frames per student encoder frame."""
    return self._teacher_frame_ratio

  def build_model(self) -> rnnt_model.RnntModel:
    """The student; also restores the teacher once (kept on the task)."""
    student = super().build_model()
    config = self.task_config
    if not self.objective.uses_teacher or self._teacher is not None:
      return student
    teacher = load_teacher(config.teacher_model_dir,
                           config.teacher_checkpoint, self.tokenizer)
    self._teacher_frame_ratio = distillation_config.teacher_frame_ratio(
        teacher.config.encoder.subsampling_factor,
        config.model.encoder.subsampling_factor)
    if not student.frontend.same_features_as(teacher.frontend):
      raise ValueError(
          f'the teacher ({config.teacher_model_dir}) computes other log-mel '
          f'features ({teacher.frontend.config.as_dict()}) than the '
          f'student\'s task.model.features '
          f'({student.frontend.config.as_dict()}); distillation feeds both '
          'the same features.')
    self._teacher = teacher
    return student

  def teacher_outputs(self, inputs: Dict[str, tf.Tensor]
                     ) -> objective_lib.TeacherOutputs:
    """The frozen teacher on the batch, without gradient.

    It normalizes the batch's log-mel features with its own statistics and,
    unless distillation.teacher_sees_augmented_features, leaves out
    SpecAugment's mask: its targets are those of the clean input.
    """
    if self._teacher is None:
      raise ValueError('DistillationTask.build_model must run before '
                       'training (it restores the teacher).')
    teacher_inputs = dict(inputs)
    if not self.task_config.distillation.teacher_sees_augmented_features:
      teacher_inputs.pop(input_pipeline.FEATURE_MASK, None)
    return objective_lib.TeacherOutputs(
        outputs=tf.nest.map_structure(
            tf.stop_gradient, self._teacher(teacher_inputs, training=False)),
        joint_fn=self._teacher.joint_fn,
        frame_ratio=self._teacher_frame_ratio)
