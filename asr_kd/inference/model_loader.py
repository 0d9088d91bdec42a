"""Restores a trained RNN-T model, its tokenizer and config from a model_dir.

A model_dir written by `python -m asr_kd.bin.train` holds `params.yaml` (the
resolved experiment config) and checkpoints `ckpt-N` (model, optimizer and
global step). Loading reads params.yaml into a registered experiment config
(strict override, so a typo or a config from another task type fails
loudly; a params.yaml of the earlier layout is upgraded first,
asr_kd/configs/params_upgrade.py), builds the tokenizer and `RnntModel` it
describes and restores the model's variables only (`expect_partial`: the
optimizer slots are skipped).
A checkpoint file that cannot be read becomes one ModelLoadError line naming
it (`checkpoint_read_error`).
"""

import contextlib
import dataclasses
import gc
import logging
import os
from typing import Optional, Tuple

from absl import flags
import tensorflow as tf
import yaml

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams

from asr_kd.configs import params_upgrade
# The experiments whose config classes read params.yaml.
from asr_kd.configs import registered_experiments  # pylint: disable=unused-import
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.inference import checkpoint_integrity
from asr_kd.modeling import rnnt_model

PARAMS_FILE = 'params.yaml'
# Written by asr_kd.bin.train: the registered experiment whose config class
# reads params.yaml (a DistillationTaskConfig has fields an RnntTaskConfig
# lacks).
EXPERIMENT_FILE = 'experiment.txt'
# For model_dirs without EXPERIMENT_FILE; any RNN-T experiment's schema holds
# a plain RnntTaskConfig params.yaml.
DEFAULT_EXPERIMENT = 'rnnt_demo_teacher'


def define_model_flags(flag_values: flags.FlagValues) -> None:
  """--model_dir, --checkpoint, --experiment: what `load_model` takes."""
  flags.DEFINE_string('model_dir', None,
                      'Training folder with params.yaml and checkpoints.',
                      flag_values=flag_values)
  flags.DEFINE_string('checkpoint', None, 'Checkpoint prefix to restore '
                      '(default: the latest in --model_dir).',
                      flag_values=flag_values)
  flags.DEFINE_string('experiment', None,
                      'Default: the one recorded in MODEL_DIR/experiment.txt. '
                      'Registered experiment whose config schema reads '
                      'params.yaml.', flag_values=flag_values)


class ModelLoadError(Exception):
  """The model_dir, its config or its checkpoint cannot be used."""


@dataclasses.dataclass
class LoadedModel:
  """What `load_model` restores.

  Attributes:
    config: the experiment config read from params.yaml.
    model: the RNN-T model with the checkpoint's weights (feature
      statistics included).
    tokenizer: the tokenizer named by `config.task.tokenizer_model_path`.
    checkpoint_path: the checkpoint the weights came from.
    model_dir: the folder it was loaded from (params_path is inside).
  """
  config: cfg.ExperimentConfig
  model: rnnt_model.RnntModel
  tokenizer: tokenizer_lib.Tokenizer
  checkpoint_path: str
  model_dir: str = ''

  @property
  def task_config(self):
    return self.config.task

  @property
  def params_path(self) -> str:
    return os.path.join(self.model_dir, PARAMS_FILE)


def recorded_experiment(model_dir: str) -> str:
  """The experiment named in MODEL_DIR/experiment.txt, else the default."""
  path = os.path.join(model_dir, EXPERIMENT_FILE)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as experiment_file:
      return experiment_file.read().strip()
  return DEFAULT_EXPERIMENT


def load_experiment_config(model_dir: str,
                           experiment: Optional[str] = None
                          ) -> cfg.ExperimentConfig:
  """Reads MODEL_DIR/params.yaml into the registered experiment config.

  Args:
    model_dir: a training run's folder.
    experiment: registered experiment whose config class holds the yaml;
      None reads it from MODEL_DIR/experiment.txt.

  Returns:
    The experiment config, validated and locked.

  Raises:
    ModelLoadError: no params.yaml, unknown experiment, or a yaml that does
      not fit the experiment's config.
  """
  params_path = os.path.join(model_dir, PARAMS_FILE)
  if not tf.io.gfile.exists(params_path):
    raise ModelLoadError(
        f'{params_path} not found; --model_dir must be a folder written by '
        'python -m asr_kd.bin.train')
  experiment = experiment or recorded_experiment(model_dir)
  try:
    config = exp_factory.get_exp_config(experiment)
  except LookupError as error:
    raise ModelLoadError(f'unknown experiment {experiment!r}') from error
  try:
    with tf.io.gfile.GFile(params_path) as params_file:
      params = params_upgrade.upgrade(yaml.safe_load(params_file) or {})
    config = hyperparams.override_params_dict(config, params, is_strict=True)
    config.validate()
  except (KeyError, ValueError, AttributeError, TypeError,
          yaml.YAMLError) as error:
    raise ModelLoadError(
        f'{params_path} does not fit experiment {experiment!r}: {error}'
    ) from error
  config.lock()
  return config


def find_checkpoint(model_dir: str, checkpoint: Optional[str] = None) -> str:
  """Resolves the checkpoint to restore.

  Args:
    model_dir: a training run's folder; its latest checkpoint is used when
      `checkpoint` is not given.
    checkpoint: a checkpoint prefix (e.g. MODEL_DIR/ckpt-200) or a folder
      whose latest checkpoint is wanted.

  Returns:
    A checkpoint prefix whose index file exists.

  Raises:
    ModelLoadError: no checkpoint is found.
  """
  if checkpoint and tf.io.gfile.isdir(checkpoint):
    model_dir, checkpoint = checkpoint, None
  if checkpoint:
    if not tf.io.gfile.exists(checkpoint + '.index'):
      raise ModelLoadError(f'checkpoint {checkpoint} not found (no '
                           f'{checkpoint}.index)')
    return checkpoint
  latest = tf.train.latest_checkpoint(model_dir)
  if not latest:
    raise ModelLoadError(f'no checkpoint in {model_dir}; train first or pass '
                         '--checkpoint')
  return latest


def checkpoint_read_error(checkpoint_path: str,
                          error: BaseException) -> ModelLoadError:
  """The one-line ModelLoadError for a checkpoint TensorFlow cannot read.

  TensorFlow's own error (a traceback of some 40 lines) seldom says which
  file is damaged; this names it.

  Args:
    checkpoint_path: the checkpoint prefix being read.
    error: what reading it raised (checkpoint_integrity.READ_ERRORS).

  Returns:
    The error to raise. It keeps TensorFlow's reason in its message, not
    `error` itself (whose frames hold the failed restore).
  """
  damage = checkpoint_integrity.locate_damage(checkpoint_path, error)
  return ModelLoadError(f'cannot read checkpoint {checkpoint_path}: {damage}')


@contextlib.contextmanager
def _tensorflow_warnings_silenced():
  logger = tf.get_logger()
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _restored_model(model_config, vocab_size: int, checkpoint_path: str
                   ) -> Tuple[Optional[rnnt_model.RnntModel],
                              Optional[ModelLoadError]]:
  """Builds the model and restores its variables: (model, None) or (None,
  the error), so that a failed model is freed with this frame."""
  model = rnnt_model.RnntModel(model_config, vocab_size=vocab_size,
                               name='rnnt')
  model.build_for_checkpoint()
  try:
    status = tf.train.Checkpoint(model=model).restore(checkpoint_path)
    # Training checkpoints also hold the optimizer and step; skip them.
    status.expect_partial()
    status.assert_existing_objects_matched()
  except checkpoint_integrity.READ_ERRORS as error:
    return None, checkpoint_read_error(checkpoint_path, error)
  except (AssertionError, ValueError) as error:  # Missing or reshaped.
    return None, ModelLoadError(
        f'{checkpoint_path} does not match the model in the config: '
        f'{str(error).splitlines()[0]}')
  return model, None


def model_from_config(config: cfg.ExperimentConfig, checkpoint_path: str,
                      model_dir: str = '') -> LoadedModel:
  """Builds the tokenizer and model a config describes, restoring weights.

  Every model variable, the feature statistics included, must come from the
  checkpoint; the optimizer and step in it are skipped.

  Args:
    config: an experiment config with an RNN-T task.
    checkpoint_path: the checkpoint prefix to restore.
    model_dir: recorded in the result.

  Returns:
    The restored model, tokenizer, config and checkpoint path.

  Raises:
    ModelLoadError: a missing tokenizer, a damaged checkpoint file (named),
      or a checkpoint that lacks a variable of the model or holds it in
      another shape.
  """
  try:
    tokenizer = tokenizer_lib.Tokenizer(config.task.tokenizer_model_path)
  except ValueError as error:
    raise ModelLoadError(f'cannot load the tokenizer: {error}') from error
  # A restore that fails before `expect_partial` leaves TensorFlow's restore
  # state, held by the model, to log a warning for every value it did not
  # restore (a hundred lines for the tiny test model) when it is freed; that
  # would bury the one-line error, so it is freed here, with them silenced.
  with _tensorflow_warnings_silenced():
    model, error = _restored_model(config.task.model, tokenizer.vocab_size,
                                   checkpoint_path)
    if error is not None:
      gc.collect()
  if error is not None:
    raise error
  return LoadedModel(config=config, model=model, tokenizer=tokenizer,
                     checkpoint_path=checkpoint_path, model_dir=model_dir)


def load_model(model_dir: str, checkpoint: Optional[str] = None,
               experiment: Optional[str] = None) -> LoadedModel:
  """Builds the model described by params.yaml and restores its weights.

  Args:
    model_dir: a training run's folder (params.yaml + checkpoints).
    checkpoint: optional checkpoint prefix or folder (default: latest in
      model_dir).
    experiment: registered experiment whose config class holds the yaml.

  Returns:
    The restored model, tokenizer, config and checkpoint path.

  Raises:
    ModelLoadError: missing files, a damaged checkpoint file, or a
      checkpoint that does not hold every variable of the configured model.
  """
  config = load_experiment_config(model_dir, experiment)
  checkpoint_path = find_checkpoint(model_dir, checkpoint)
  return model_from_config(config, checkpoint_path, model_dir=model_dir)
