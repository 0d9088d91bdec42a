r"""Trains or evaluates an experiment with Model Garden's train_lib.

  python -m asr_kd.bin.train --experiment=rnnt_demo_teacher \
      --config_file=configs/rnnt_demo_teacher.yaml --mode=train_and_eval \
      --model_dir=/tmp/teacher [--params_override=trainer.train_steps=100]

Modes: train, eval, train_and_eval, continuous_eval. --cpu_replicas=N trains
data-parallel on N logical devices carved out of the host CPU (hosts without
accelerators; every bucket batch size must divide by N). A cosine learning rate
decays over trainer.train_steps whatever its decay_steps says. The resolved
config is written to MODEL_DIR/params.yaml once the flags are known to
describe a run that fits the model_dir; running the same command again
resumes from the newest readable checkpoint in MODEL_DIR: model, optimizer
state, learning-rate step and the training data's position (the batches
the restored steps consumed are replayed and skipped, so the run goes on
with the batches an uninterrupted run would see).
"""

import functools
import os
import sys

from absl import app
from absl import flags
from absl import logging
import orbit
import tensorflow as tf
import tf_keras
import yaml

from official.common import distribute_utils
from official.common import flags as tfm_flags
from official.core import exp_factory
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.configs import config_types
from asr_kd.configs import optimizer_recipes
from asr_kd.inference import model_loader
from asr_kd.runtime import devices
from asr_kd.tasks import resume
from asr_kd.tasks import rnnt_task

FLAGS = flags.FLAGS


def _is_chief(strategy: tf.distribute.Strategy) -> bool:
  """False on the non-chief workers of a multi-worker job."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not resolver.task_type:
    return True
  return resolver.task_type == 'chief' or (
      resolver.task_type == 'worker' and resolver.task_id == 0 and
      'chief' not in resolver.cluster_spec().as_dict())


def parse_params(flag_values: flags.FlagValues):
  """The experiment config the flags describe, checked, and its precision.

  Exits with one `train: ...` line (no traceback) when the flags cannot
  describe a run: an unknown --experiment, a missing or unreadable
  --config_file, an unknown key, a value of the wrong type, a negative
  trainer.train_steps, or a config its own `validate` refuses.

  Args:
    flag_values: the parsed flags.

  Returns:
    (the locked params, the canonical mixed precision dtype name or None).
  """
  if flag_values.experiment:
    try:
      exp_factory.get_exp_config(flag_values.experiment)
    except LookupError:
      sys.exit(f'train: unknown --experiment {flag_values.experiment!r} (not '
               'registered in asr_kd/configs).')
  for config_file in flag_values.config_file or []:
    if not tf.io.gfile.exists(config_file):
      sys.exit(f'train: --config_file {config_file} not found.')
  try:
    params = train_utils.parse_configuration(flag_values, lock_return=False)
    config_types.check_value_types(params)
    if params.trainer.train_steps < 0:
      raise ValueError('trainer.train_steps must be >= 0, not '
                       f'{params.trainer.train_steps}')
    if optimizer_recipes.decay_over_train_steps(params):
      logging.info('Cosine learning rate: decay_steps set to train_steps=%d.',
                   params.trainer.train_steps)
    params.lock()
    mixed_precision = rnnt_task.canonical_mixed_precision(
        params.runtime.mixed_precision_dtype)
  except (KeyError, ValueError, AttributeError, TypeError, yaml.YAMLError,
          tf.errors.OpError) as error:
    message = (getattr(error, 'message', None) or str(error)).strip()
    sys.exit(f'train: bad configuration: {" ".join(message.split())}')
  return params, mixed_precision


def prepare_model_dir(params, model_dir: str, experiment: str):
  """Checks a training run can use `model_dir`, then writes its config.

  params.yaml and experiment.txt are written only after the run is known to
  fit: on a rerun, the checkpoint it resumes from must hold the configured
  model (else params.yaml would describe another model than the checkpoints,
  and evaluation of the model_dir would fail). A latest checkpoint that
  cannot be read is passed over with a warning naming its damaged file.

  Args:
    params: the checked experiment config.
    model_dir: the run's folder.
    experiment: the registered experiment name (for experiment.txt).

  Returns:
    (controller class, resume step): the Orbit controller class for
    train_lib (one that restores the newest readable checkpoint when the
    latest is damaged, else Orbit's own) and the step of the checkpoint the
    run resumes from (0 from scratch).
  """
  try:
    resume_point = resume.find_resume_point(model_dir)
  except resume.NoReadableCheckpointError as error:
    sys.exit(f'train: {error}; move the checkpoints away to train from '
             'scratch.')
  for warning in resume_point.warnings():
    logging.warning(warning)
  if resume_point.checkpoint_path:
    try:
      model_loader.model_from_config(params, resume_point.checkpoint_path)
    except model_loader.ModelLoadError as error:
      sys.exit(f'train: {str(error).rstrip(".")}; nothing was written to '
               f'{model_dir} (a model of another architecture needs a new '
               '--model_dir).')
  train_utils.serialize_config(params, model_dir)
  with tf.io.gfile.GFile(
      os.path.join(model_dir, model_loader.EXPERIMENT_FILE), 'w') as f:
    f.write(experiment + '\n')
  if resume_point.passed_over:
    return functools.partial(resume.ResumingController,
                             resume_from=resume_point.checkpoint_path
                            ), resume_point.step
  return orbit.Controller, resume_point.step


def main(_):
  params, mixed_precision = parse_params(FLAGS)
  model_dir = FLAGS.model_dir
  if not model_dir:
    sys.exit('train: --model_dir is required.')
  if FLAGS.cpu_replicas != 1:
    if params.runtime.distribution_strategy not in ('one_device', 'mirrored'):
      sys.exit('train: --cpu_replicas needs runtime.distribution_strategy '
               f'one_device or mirrored, not '
               f'{params.runtime.distribution_strategy!r}.')
    try:
      strategy = devices.cpu_replica_strategy(FLAGS.cpu_replicas)
    except ValueError as error:
      sys.exit(f'train: {error}')
    logging.info('Training on %d CPU replicas.', FLAGS.cpu_replicas)
  else:
    strategy = distribute_utils.get_distribution_strategy(
        distribution_strategy=params.runtime.distribution_strategy,
        all_reduce_alg=params.runtime.all_reduce_alg,
        num_gpus=params.runtime.num_gpus,
        tpu_address=params.runtime.tpu)
  controller_cls = orbit.Controller
  resume_step = 0
  # Eval-only jobs must not race a training job writing the model_dir; the
  # other workers of a multi-worker job neither write it nor restore from it,
  # but their data resumes at the chief's step.
  if 'train' in FLAGS.mode and _is_chief(strategy):
    controller_cls, resume_step = prepare_model_dir(params, model_dir,
                                                    FLAGS.experiment)
  elif 'train' in FLAGS.mode:
    resume_step = resume.find_resume_point(model_dir).step
  # After prepare_model_dir, whose check model would shift the op seeds.
  tf_keras.utils.set_random_seed(params.task.seed)
  if mixed_precision:
    performance.set_mixed_precision_policy(tf.as_dtype(mixed_precision))
  try:
    with strategy.scope():
      task = task_factory.get_task(params.task, logging_dir=model_dir)
    task.resume_data_at(resume_step)
    _, eval_logs = train_lib.run_experiment(
        distribution_strategy=strategy, task=task, mode=FLAGS.mode,
        params=params, model_dir=model_dir, controller_cls=controller_cls)
  except tf.errors.InvalidArgumentError as error:
    if rnnt_task.log_nonfinite_help(error):
      sys.exit(f'train: {rnnt_task.NONFINITE_MESSAGE}; stopped because '
               'task.nonfinite_policy=stop.')
    raise
  except (tf.errors.NotFoundError, OSError, ValueError,
          model_loader.ModelLoadError) as error:
    # Missing or bad tokenizer, feature stats or TFRecords, an unusable
    # teacher: one line for the user, the traceback only with --verbosity=1.
    logging.debug('train failed', exc_info=True)
    message = (getattr(error, 'message', None) or str(error)).strip()
    sys.exit(f'train: {message.splitlines()[0] if message else repr(error)}')
  if eval_logs:
    logging.info('Final evaluation: %s', {
        key: float(value) for key, value in eval_logs.items()})


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.DEFINE_integer(
      'cpu_replicas', 1, 'Train data-parallel on this many logical devices of '
      'the host CPU (no accelerator; bucket batch sizes must divide by it). '
      '1: one device.')
  app.run(main)
