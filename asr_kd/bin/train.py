r"""Trains or evaluates an experiment with Model Garden's train_lib.

  python -m asr_kd.bin.train --experiment=rnnt_demo_teacher \
      --config_file=configs/rnnt_demo_teacher.yaml --mode=train_and_eval \
      --model_dir=/tmp/teacher [--params_override=trainer.train_steps=100]

Modes: train, eval, train_and_eval, continuous_eval. The resolved config is
written to MODEL_DIR/params.yaml; running the same command again resumes
from the last checkpoint in MODEL_DIR.
"""

import sys

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf
import tf_keras

from official.common import distribute_utils
from official.common import flags as tfm_flags
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import performance

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.tasks import rnnt_task

FLAGS = flags.FLAGS


def main(_):
  try:
    params = train_utils.parse_configuration(FLAGS)
  except (KeyError, ValueError, AttributeError) as error:
    sys.exit(f'train: bad configuration: {error}')
  model_dir = FLAGS.model_dir
  if not model_dir:
    sys.exit('train: --model_dir is required.')
  if 'train' in FLAGS.mode:
    # Eval-only jobs must not race a training job writing the same file.
    train_utils.serialize_config(params, model_dir)
  tf_keras.utils.set_random_seed(params.task.seed)
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(
        params.runtime.mixed_precision_dtype)
  strategy = distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
  try:
    _, eval_logs = train_lib.run_experiment(
        distribution_strategy=strategy, task=task, mode=FLAGS.mode,
        params=params, model_dir=model_dir)
  except tf.errors.InvalidArgumentError as error:
    if rnnt_task.log_nonfinite_help(error):
      sys.exit(f'train: {rnnt_task.NONFINITE_MESSAGE}; stopped because '
               'task.nonfinite_policy=stop.')
    raise
  if eval_logs:
    logging.info('Final evaluation: %s', {
        key: float(value) for key, value in eval_logs.items()})


if __name__ == '__main__':
  tfm_flags.define_flags()
  app.run(main)
