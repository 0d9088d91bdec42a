"""Restores a trained RnntModel, its tokenizer and config from a model_dir.

A minimal loader private to the exporters: MODEL_DIR/params.yaml (written by
`asr_kd.bin.train`) gives the task config, the latest `ckpt-N` in MODEL_DIR
(Model Garden's `tf.train.Checkpoint(model=..., optimizer=...)`) the
weights. Only the `model` object of the checkpoint is read.
"""

import os
from typing import NamedTuple, Optional

import tensorflow as tf
import yaml

from asr_kd.configs import rnnt_experiments
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.modeling import rnnt_model


class LoadedModel(NamedTuple):
  """What `load_model_dir` returns.

  Attributes:
    model: the RnntModel with restored weights (feature stats included).
    tokenizer: the SentencePiece tokenizer the model was trained with.
    task_config: the resolved `RnntTaskConfig` from params.yaml.
    params_path: path of the params.yaml that was read.
    checkpoint_path: the checkpoint prefix that was restored.
  """
  model: rnnt_model.RnntModel
  tokenizer: tokenizer_lib.Tokenizer
  task_config: rnnt_experiments.RnntTaskConfig
  params_path: str
  checkpoint_path: str


def read_task_config(params_path: str) -> rnnt_experiments.RnntTaskConfig:
  """Parses the `task` section of a params.yaml into an RnntTaskConfig.

  Raises:
    ValueError: if the file is missing or has no task.model section.
  """
  if not tf.io.gfile.exists(params_path):
    raise ValueError(f'No params.yaml at {params_path} (train with '
                     'asr_kd.bin.train, which writes it).')
  with tf.io.gfile.GFile(params_path, 'r') as params_file:
    params = yaml.safe_load(params_file) or {}
  task_params = params.get('task') or {}
  if 'model' not in task_params:
    raise ValueError(f'{params_path} has no task.model section.')
  task_config = rnnt_experiments.RnntTaskConfig()
  # Only the fields an RnntTaskConfig knows; a distillation task's extra
  # sections (teacher, KD loss) are not needed to rebuild the student.
  known = {key: value for key, value in task_params.items()
           if key in task_config.as_dict()}
  task_config.override(known, is_strict=False)
  return task_config


def load_model_dir(model_dir: str,
                   checkpoint_path: Optional[str] = None,
                   tokenizer_path: Optional[str] = None) -> LoadedModel:
  """Builds the model of MODEL_DIR/params.yaml and restores its weights.

  Args:
    model_dir: a training model_dir.
    checkpoint_path: a specific checkpoint prefix; default the latest.
    tokenizer_path: overrides task.tokenizer_model_path (e.g. when the model
      dir was moved and the stored path is relative to another directory).

  Returns:
    A `LoadedModel`.

  Raises:
    ValueError: with a one-line reason when something is missing.
  """
  if not tf.io.gfile.isdir(model_dir):
    raise ValueError(f'Model dir not found: {model_dir}')
  params_path = os.path.join(model_dir, 'params.yaml')
  task_config = read_task_config(params_path)
  tokenizer_path = tokenizer_path or task_config.tokenizer_model_path
  tokenizer = tokenizer_lib.Tokenizer(tokenizer_path)
  checkpoint_path = checkpoint_path or tf.train.latest_checkpoint(model_dir)
  if not checkpoint_path:
    raise ValueError(f'No checkpoint in {model_dir}')
  model = rnnt_model.RnntModel(task_config.model,
                               vocab_size=tokenizer.vocab_size, name='rnnt')
  model.build_for_checkpoint()
  status = tf.train.Checkpoint(model=model).restore(checkpoint_path)
  status.expect_partial()
  status.assert_existing_objects_matched()
  return LoadedModel(model, tokenizer, task_config, params_path,
                     checkpoint_path)
