r"""Training throughput (audio seconds per wall second) of the demo models.

  python -m benchmarks.train_throughput [--steps=5] [--batch_size=16] \
      [--teacher_variant='task.loss.fused=true' ...]

Builds the `rnnt_demo_teacher` and `rnnt_demo_student_streaming` models
from their presets and runs RnntTask.train_step on synthetic batches shaped
like the demo data (log-mel frames of `--audio_seconds`, `--num_tokens`
labels, vocab `--vocab_size`), timing `--steps` steps after
`--warmup_steps` untimed ones. Each `--teacher_variant` (a
`--params_override` string, e.g.
'task.model.joint.joint_dim=256,task.loss.fused=true') is timed the same way
and printed with its throughput relative to the teacher preset, all in one
process so that the ratios share the machine's load.
"""

import time
import types

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import performance

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.configs import rnnt_config
from asr_kd.tasks import objective
from asr_kd.tasks import rnnt_task

FLAGS = flags.FLAGS
SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100
TEACHER = 'rnnt_demo_teacher'
STUDENT = 'rnnt_demo_student_streaming'


def define_flags():
  flags.DEFINE_integer('steps', 5, 'Timed steps per configuration.')
  flags.DEFINE_integer('warmup_steps', 2, 'Untimed steps first (the first '
                       'one traces; later ones settle allocations).')
  flags.DEFINE_integer('batch_size', 16, 'Utterances per batch.')
  flags.DEFINE_float('audio_seconds', 4.0, 'Audio per utterance.')
  flags.DEFINE_integer('num_tokens', 50, 'Labels per utterance (the demo '
                       'speaks about 12 characters per second).')
  flags.DEFINE_integer('vocab_size', 29, 'Output vocabulary (blank too); '
                       '29 = the demo character tokenizer.')
  flags.DEFINE_integer('distinct_batches', 4, 'Batches cycled through; they '
                       'differ in label values, as real batches do.')
  flags.DEFINE_list('jit_compile', ['false'], 'task.jit_compile values to '
                    'time for the teacher (e.g. false,true); the first one '
                    'applies to every other row.')
  flags.DEFINE_multi_string('teacher_variant', [], 'A params_override '
                            'string applied to the teacher preset; timed '
                            'and compared with the preset. Repeatable.')


class _NoTokenizerTask(rnnt_task.RnntTask):
  """RnntTask without tokenizer or feature-statistics files.

  The train step only needs the blank id, and `build_model` the vocabulary
  size: the model is the task's own, with the auxiliary heads its loss
  options ask for.
  """

  def __init__(self, params, vocab_size: int):  # pylint: disable=super-init-not-called
    params = params.replace(model={'feature_stats_file': ''})
    base_task.Task.__init__(self, params)  # pylint: disable=non-parent-init-called
    self.tokenizer = types.SimpleNamespace(blank_id=rnnt_config.BLANK_ID,
                                           vocab_size=vocab_size)
    self.objective = objective.Objective(params.loss, rnnt_config.BLANK_ID,
                                         params.jit_compile)
    self._forward_backward_fn = None


def synthetic_batch(batch_size: int, frames: int, num_tokens: int,
                    vocab_size: int, seed: int = 0) -> dict:
  """Random features and labels, all utterances full length (the model's
  statistics are mean 0 and stddev 1 here, so the features reach the encoder
  as they are)."""
  rng = np.random.default_rng(seed)
  return {
      'features': tf.constant(rng.standard_normal(
          (batch_size, frames, 80)).astype(np.float32)),
      'feature_lengths': tf.fill([batch_size], frames),
      'labels': tf.constant(rng.integers(
          1, vocab_size, (batch_size, num_tokens)).astype(np.int32)),
      'label_lengths': tf.fill([batch_size], num_tokens),
      'num_samples': tf.fill([batch_size], frames * SAMPLE_RATE //
                             FRAMES_PER_SECOND),
  }


def experiment_config(experiment: str, override: str = '',
                      jit_compile: bool = False):
  """A registered experiment's preset with `override` applied."""
  config = exp_factory.get_exp_config(experiment)
  if override:
    config = hyperparams.override_params_dict(config, override,
                                              is_strict=True)
  config.task.jit_compile = jit_compile
  return config


def audio_seconds_per_second(config) -> float:
  """Timed training throughput of one experiment config's model."""
  # The dtype mapping of the train binary (asr_kd/bin/train.py).
  mixed_precision = rnnt_task.canonical_mixed_precision(
      config.runtime.mixed_precision_dtype) or 'float32'
  performance.set_mixed_precision_policy(tf.as_dtype(mixed_precision))
  try:
    task = _NoTokenizerTask(config.task, FLAGS.vocab_size)
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                      config.runtime)
    frames = int(FLAGS.audio_seconds * FRAMES_PER_SECOND)
    batches = [synthetic_batch(FLAGS.batch_size, frames, FLAGS.num_tokens,
                               FLAGS.vocab_size, seed)
               for seed in range(FLAGS.distinct_batches)]
    step = tf.function(lambda b: task.train_step(b, model, optimizer))
    for index in range(max(1, FLAGS.warmup_steps)):
      float(step(batches[index % len(batches)])[task.loss])
    start = time.perf_counter()
    for index in range(FLAGS.steps):
      loss = step(batches[index % len(batches)])[task.loss]
    float(loss)
    elapsed = time.perf_counter() - start
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  return FLAGS.steps * FLAGS.batch_size * FLAGS.audio_seconds / elapsed


def main(_):
  jit_values = [value.lower() == 'true' for value in FLAGS.jit_compile]
  rows = [(TEACHER, '', jit_values[0]), (STUDENT, '', jit_values[0])]
  rows += [(TEACHER, '', jit) for jit in jit_values[1:]]
  rows += [(TEACHER, variant, jit_values[0])
           for variant in FLAGS.teacher_variant]
  teacher = None
  for experiment, override, jit in rows:
    throughput = audio_seconds_per_second(
        experiment_config(experiment, override, jit))
    if experiment == TEACHER and not override and jit == jit_values[0]:
      teacher = throughput
    print(f'{experiment:28s} jit_compile={jit!s:5s} {throughput:8.2f} '
          f'audio-s/s  {throughput / teacher:5.2f}x teacher preset  '
          f'{override or "(preset)"}', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
