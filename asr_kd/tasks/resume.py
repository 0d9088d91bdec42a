"""The checkpoint a rerun of a training job resumes from.

Orbit restores the latest checkpoint that MODEL_DIR/checkpoint names, and a
checkpoint cut short by a full disk or a failed copy makes that restore fail
with a long traceback. `find_resume_point` reads the checkpoints newest
first and stops at the first one that reads whole; `ResumingController`
makes Orbit restore that one. Nothing in the model_dir is changed or removed:
the run's next saves go on from the restored step as usual (a save at the
step of a damaged checkpoint replaces its files).

The checkpoint holds the model, the optimizer (its slots and step, hence the
learning rate) and the global step, not the input pipeline's position.
`ResumePoint.step` lets the training task replay the batches those steps
consumed (`RnntTask.resume_data_at`), so a resumed run sees the batches an
uninterrupted one would.
"""

import dataclasses
from typing import List, Optional

import orbit
import tensorflow as tf

from asr_kd.inference import checkpoint_integrity


class NoReadableCheckpointError(Exception):
  """The model_dir has checkpoints but none can be read."""


@dataclasses.dataclass(frozen=True)
class DamagedCheckpoint:
  """A checkpoint passed over, and its file that cannot be read."""
  checkpoint_path: str
  damage: checkpoint_integrity.Damage


@dataclasses.dataclass(frozen=True)
class ResumePoint:
  """Where training resumes.

  Attributes:
    checkpoint_path: the newest checkpoint that reads whole; None when the
      model_dir has no checkpoint (training starts from scratch).
    passed_over: the newer checkpoints that cannot be read, newest first.
    step: the global step stored in checkpoint_path (0 without one).
  """
  checkpoint_path: Optional[str]
  passed_over: List[DamagedCheckpoint]
  step: int = 0

  def warnings(self) -> List[str]:
    """One line per checkpoint passed over, naming its damaged file."""
    return [f'checkpoint {damaged.checkpoint_path} cannot be read: '
            f'{damaged.damage}; resuming from {self.checkpoint_path}'
            for damaged in self.passed_over]


def _recorded_checkpoints(model_dir: str) -> List[str]:
  """Checkpoints the state file lists, oldest first (the latest last)."""
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None or not state.model_checkpoint_path:
    return []
  paths = [path for path in state.all_model_checkpoint_paths
           if path != state.model_checkpoint_path]
  return paths + [state.model_checkpoint_path]


# Where Model Garden's trainer checkpoint keeps its step counter.
GLOBAL_STEP_KEY = 'global_step/.ATTRIBUTES/VARIABLE_VALUE'


def checkpoint_global_step(checkpoint_path: str) -> int:
  """The training step a (readable) checkpoint was saved at."""
  return int(tf.train.load_checkpoint(checkpoint_path).get_tensor(
      GLOBAL_STEP_KEY))


def find_resume_point(model_dir: str) -> ResumePoint:
  """Finds the newest checkpoint of `model_dir` that reads whole.

  Reads each candidate in full (checksums included), newest first, until
  one succeeds; an intact latest checkpoint costs one extra read.

  Args:
    model_dir: a training run's folder.

  Returns:
    The resume point.

  Raises:
    NoReadableCheckpointError: checkpoints are recorded but none can be
      read; the message names the latest one's damaged file.
  """
  passed_over = []
  for checkpoint_path in reversed(_recorded_checkpoints(model_dir)):
    damage = checkpoint_integrity.find_damage(checkpoint_path)
    if damage is None:
      return ResumePoint(checkpoint_path, passed_over,
                         checkpoint_global_step(checkpoint_path))
    passed_over.append(DamagedCheckpoint(checkpoint_path, damage))
  if passed_over:
    raise NoReadableCheckpointError(
        f'no checkpoint in {model_dir} can be read ({len(passed_over)} '
        f'recorded; the latest: {passed_over[0].damage})')
  return ResumePoint(None, [])


class ResumingController(orbit.Controller):
  """An Orbit controller that restores a given checkpoint.

  Orbit's own restores the state file's latest checkpoint (or initializes
  the model when there is none).
  """

  def __init__(self, *args, resume_from: str, **kwargs):
    # Orbit's __init__ restores; the path must be known before it runs.
    self._resume_from = resume_from
    super().__init__(*args, **kwargs)

  def restore_checkpoint(self, checkpoint_path: Optional[str] = None):
    return super().restore_checkpoint(checkpoint_path or self._resume_from)
