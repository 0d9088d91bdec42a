r"""Training throughput (audio seconds per wall second) of the demo models.

  python -m benchmarks.train_throughput [--steps=5] [--batch_size=16]

Builds the `rnnt_demo_teacher` and `rnnt_demo_student_streaming` models
and runs RnntTask.train_step on synthetic batches shaped like the demo data
(log-mel frames of `--audio_seconds`, `--num_tokens` labels, vocab
`--vocab_size`), timing `--steps` steps after one warmup (compile) step.
"""

import time
import types

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from official.core import base_task

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.configs import rnnt_config
from asr_kd.configs import rnnt_experiments
from asr_kd.modeling import rnnt_model
from asr_kd.tasks import rnnt_task

FLAGS = flags.FLAGS
SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100


def define_flags():
  flags.DEFINE_integer('steps', 5, 'Timed steps per configuration.')
  flags.DEFINE_integer('batch_size', 16, 'Utterances per batch.')
  flags.DEFINE_float('audio_seconds', 4.0, 'Audio per utterance.')
  flags.DEFINE_integer('num_tokens', 40, 'Labels per utterance.')
  flags.DEFINE_integer('vocab_size', 256, 'Output vocabulary (blank too).')
  flags.DEFINE_integer('distinct_batches', 4, 'Batches cycled through; they '
                       'differ in label values, as real batches do.')
  flags.DEFINE_list('jit_compile', ['false'], 'task.jit_compile values to '
                    'time (e.g. false,true).')
  flags.DEFINE_boolean('compare_fused', True,
                       'Also time the unfused loss for the teacher.')


class _NoTokenizerTask(rnnt_task.RnntTask):
  """RnntTask without a tokenizer file: the train step only needs blank=0."""

  def __init__(self, params):  # pylint: disable=super-init-not-called
    base_task.Task.__init__(self, params)  # pylint: disable=non-parent-init-called
    self.tokenizer = types.SimpleNamespace(blank_id=rnnt_config.BLANK_ID)
    self._forward_backward_fn = None


def synthetic_batch(batch_size: int, frames: int, num_tokens: int,
                    vocab_size: int, seed: int = 0) -> dict:
  """Random normalized features and labels, all utterances full length."""
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


def audio_seconds_per_second(experiment: str, fused: bool,
                             jit_compile: bool) -> float:
  """Timed training throughput of one experiment's model."""
  config = rnnt_experiments.rnnt_demo_teacher() if experiment == (
      'rnnt_demo_teacher') else rnnt_experiments.rnnt_demo_student_streaming()
  config.task.loss.fused = fused
  config.task.jit_compile = jit_compile
  task = _NoTokenizerTask(config.task)
  model = rnnt_model.RnntModel(config.task.model, FLAGS.vocab_size)
  model.build_for_checkpoint()
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)
  frames = int(FLAGS.audio_seconds * FRAMES_PER_SECOND)
  batches = [synthetic_batch(FLAGS.batch_size, frames, FLAGS.num_tokens,
                             FLAGS.vocab_size, seed)
             for seed in range(FLAGS.distinct_batches)]
  step = tf.function(lambda b: task.train_step(b, model, optimizer))
  float(step(batches[0])[task.loss])  # Trace and compile.
  start = time.perf_counter()
  for index in range(FLAGS.steps):
    loss = step(batches[index % len(batches)])[task.loss]
  float(loss)
  elapsed = time.perf_counter() - start
  return FLAGS.steps * FLAGS.batch_size * FLAGS.audio_seconds / elapsed


def main(_):
  jit_values = [value.lower() == 'true' for value in FLAGS.jit_compile]
  runs = [('rnnt_demo_teacher', True, jit_values[0]),
          ('rnnt_demo_student_streaming', True, jit_values[0])]
  if FLAGS.compare_fused:
    runs.append(('rnnt_demo_teacher', False, jit_values[0]))
  runs += [('rnnt_demo_teacher', True, jit) for jit in jit_values[1:]]
  results = {}
  for experiment, fused, jit in runs:
    results[(experiment, fused, jit)] = audio_seconds_per_second(
        experiment, fused, jit)
    print(f'{experiment:30s} fused={fused!s:5s} jit_compile={jit!s:5s} '
          f'{results[(experiment, fused, jit)]:8.2f} audio-s/s', flush=True)
  ratio = (results[('rnnt_demo_student_streaming', True, jit_values[0])] /
           results[('rnnt_demo_teacher', True, jit_values[0])])
  print(f'student/teacher throughput ratio: {ratio:.2f}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
