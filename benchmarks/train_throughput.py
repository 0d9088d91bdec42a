r"""Training throughput and XLA compilations of the demo models' train step.

  python -m benchmarks.train_throughput [--steps=8] [--batch_size=16] \
      [--jit_compile=false,true] [--teacher_variant='task.loss.fused=true']

Builds the `rnnt_demo_teacher` and `rnnt_demo_student_streaming` models
from their presets and runs RnntTask.train_step on synthetic batches shaped
like the demo's bucketed data: `--distinct_batches` batches spread over
`--num_buckets` length buckets, each bucket one static shape (as
`AsrDataConfig.bucket_label_lengths` gives), with ragged lengths and random
labels inside. Per row it prints the XLA programs compiled (counted from
XLA's own dump, asr_kd/runtime/xla_compilations.py; in graph mode these
are the loss kernels), the mean step time of `--steps` timed steps after
the warm-up, and audio-seconds per second (real lengths, not padding).
Rows: teacher and student for each `--jit_compile` value (graph mode or
the whole step as one XLA program), then each `--teacher_variant` (a
`--params_override` string). All rows run in one process, so their ratios
share the machine's load.
"""

import tempfile
import time
import types
from typing import List, NamedTuple, Tuple

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
from asr_kd.runtime import xla_compilations
from asr_kd.tasks import objective
from asr_kd.tasks import rnnt_task

FLAGS = flags.FLAGS
SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100
TEACHER = 'rnnt_demo_teacher'
STUDENT = 'rnnt_demo_student_streaming'


def define_flags():
  flags.DEFINE_integer('steps', 8, 'Timed steps per configuration.')
  flags.DEFINE_integer('warmup_steps', 2, 'Untimed steps first, at least one '
                       'per bucket (the first of a shape traces and '
                       'compiles; later ones settle allocations).')
  flags.DEFINE_integer('batch_size', 16, 'Utterances per batch.')
  flags.DEFINE_float('audio_seconds', 4.0, 'Frame bound of the longest '
                     'bucket, in seconds of audio.')
  flags.DEFINE_integer('num_tokens', 50, 'Labels of an utterance as long as '
                       'that bound (the demo speaks about 12 characters per '
                       'second); shorter ones get proportionally fewer.')
  flags.DEFINE_integer('num_buckets', 2, 'Length buckets: bucket i of n is '
                       'bounded by (i + 1) / n of --audio_seconds and '
                       '--num_tokens, and padded to those static sizes.')
  flags.DEFINE_integer('vocab_size', 29, 'Output vocabulary (blank too); '
                       '29 = the demo character tokenizer.')
  flags.DEFINE_integer('distinct_batches', 8, 'Batches cycled through, '
                       'spread over the buckets; they differ in lengths and '
                       'label values, as real batches do.')
  flags.DEFINE_list('jit_compile', ['false', 'true'], 'task.jit_compile '
                    'values to time the teacher and the student with '
                    '(false: graph mode, true: the whole step in one XLA '
                    'program); the first one applies to the variants.')
  flags.DEFINE_string('every_row_override', '', 'A params_override string '
                      'applied to every row first (e.g. '
                      'task.model.encoder.num_layers=1 for a quick check '
                      'of the code path).')
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


def bucket_shapes() -> List[Tuple[int, int]]:
  """(frames, labels) bounds of each bucket, from the flags."""
  frames = int(FLAGS.audio_seconds * FRAMES_PER_SECOND)
  return [(frames * (index + 1) // FLAGS.num_buckets,
           max(1, FLAGS.num_tokens * (index + 1) // FLAGS.num_buckets))
          for index in range(FLAGS.num_buckets)]


def synthetic_batch(batch_size: int, frames: int, num_tokens: int,
                    vocab_size: int, seed: int = 0,
                    min_frames: int = 0) -> dict:
  """Random features and labels padded to one bucket's static shape.

  Utterance lengths are drawn in (min_frames, frames]; each has labels in
  proportion, padded to `num_tokens`. The model's statistics are mean 0
  and stddev 1 here, so the features reach the encoder as they are.
  """
  rng = np.random.default_rng(seed)
  feature_lengths = rng.integers(min_frames + 1, frames + 1, batch_size)
  label_lengths = np.maximum(1, feature_lengths * num_tokens // frames)
  labels = rng.integers(1, vocab_size, (batch_size, num_tokens))
  labels[np.arange(num_tokens) >= label_lengths[:, None]] = 0
  frame_indices = np.arange(frames)[None, :, None]
  features = rng.standard_normal((batch_size, frames, 80)) * (
      frame_indices < feature_lengths[:, None, None])
  return {
      'features': tf.constant(features.astype(np.float32)),
      'feature_lengths': tf.constant(feature_lengths.astype(np.int32)),
      'labels': tf.constant(labels.astype(np.int32)),
      'label_lengths': tf.constant(label_lengths.astype(np.int32)),
      'num_samples': tf.constant((feature_lengths * SAMPLE_RATE //
                                  FRAMES_PER_SECOND).astype(np.int32)),
  }


def synthetic_batches() -> List[dict]:
  """--distinct_batches batches, bucket by bucket in turn."""
  shapes = bucket_shapes()
  batches = []
  for seed in range(max(FLAGS.distinct_batches, len(shapes))):
    bucket = seed % len(shapes)
    frames, num_tokens = shapes[bucket]
    batches.append(synthetic_batch(
        FLAGS.batch_size, frames, num_tokens, FLAGS.vocab_size, seed,
        min_frames=shapes[bucket - 1][0] if bucket else 0))
  return batches


def batch_audio_seconds(batch: dict) -> float:
  return float(tf.reduce_sum(batch['num_samples'])) / SAMPLE_RATE


def experiment_config(experiment: str, override: str = '',
                      jit_compile: bool = False):
  """A registered experiment's preset with the overrides applied:
  --every_row_override, then `override`."""
  config = exp_factory.get_exp_config(experiment)
  for params in (FLAGS.every_row_override, override):
    if params:
      config = hyperparams.override_params_dict(config, params,
                                                is_strict=True)
  config.task.jit_compile = jit_compile
  return config


class Measurement(NamedTuple):
  compilations: int  # XLA programs compiled in the row, warm-up included
  timed_compilations: int  # of those, while the steps were timed
  step_seconds: float  # mean wall time of a timed step
  audio_seconds_per_second: float


def measure(config, dump: xla_compilations.XlaDump) -> Measurement:
  """Times one experiment config's train step on the synthetic batches."""
  # The dtype mapping of the train binary (asr_kd/bin/train.py).
  mixed_precision = rnnt_task.canonical_mixed_precision(
      config.runtime.mixed_precision_dtype) or 'float32'
  performance.set_mixed_precision_policy(tf.as_dtype(mixed_precision))
  try:
    task = _NoTokenizerTask(config.task, FLAGS.vocab_size)
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                      config.runtime)
    batches = synthetic_batches()
    # Unknown dimensions, as the input pipeline's batches have: one trace,
    # and whatever XLA compiles, once per batch shape at best.
    signature = {key: tf.TensorSpec([None] * value.shape.rank, value.dtype)
                 for key, value in batches[0].items()}
    step = tf.function(lambda b: task.train_step(b, model, optimizer),
                       input_signature=[signature])
    before = dump.count()
    for index in range(max(FLAGS.warmup_steps, FLAGS.num_buckets)):
      float(step(batches[index % len(batches)])[task.loss])
    warm = dump.count()
    audio_seconds = 0.0
    start = time.perf_counter()
    for index in range(FLAGS.steps):
      batch = batches[index % len(batches)]
      loss = step(batch)[task.loss]
      audio_seconds += batch_audio_seconds(batch)
    float(loss)
    elapsed = time.perf_counter() - start
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  return Measurement(dump.count() - before, dump.count() - warm,
                     elapsed / FLAGS.steps, audio_seconds / elapsed)


def main(_):
  with tempfile.TemporaryDirectory(prefix='train_throughput_xla_') as dump:
    print_rows(xla_compilations.start_dump(dump))


def print_rows(dump: xla_compilations.XlaDump):
  """Measures and prints every row (module docstring)."""
  jit_values = [value.lower() == 'true' for value in FLAGS.jit_compile]
  rows = [(experiment, '', jit) for jit in jit_values
          for experiment in (TEACHER, STUDENT)]
  rows += [(TEACHER, variant, jit_values[0])
           for variant in FLAGS.teacher_variant]
  print(f'{len(synthetic_batches())} distinct batches of '
        f'{FLAGS.batch_size} in {FLAGS.num_buckets} buckets '
        f'(frames, labels): {bucket_shapes()}',
        flush=True)
  teacher = None
  for experiment, override, jit in rows:
    result = measure(experiment_config(experiment, override, jit), dump)
    if teacher is None:
      teacher = result.audio_seconds_per_second
    print(f'{experiment:28s} jit_compile={jit!s:5s} '
          f'{result.compilations:3d} compilations '
          f'({result.timed_compilations} timed) '
          f'{result.step_seconds * 1000:8.1f} ms/step '
          f'{result.audio_seconds_per_second:8.2f} audio-s/s  '
          f'{result.audio_seconds_per_second / teacher:5.2f}x first row  '
          f'{override or "(preset)"}', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
