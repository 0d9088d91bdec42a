r"""Demo-teacher training throughput: one CPU device against `--cpu_replicas`.

  python -m benchmarks.cpu_replicas --replicas=1,2 --repeats=2 [--steps=5] \
      [--batch_size=16] [--audio_seconds=4] [--num_tokens=50]

Logical devices and thread counts are fixed when TensorFlow starts, so every
measurement runs in its own subprocess (`--measure=N`), in the order
1, 2, 1, 2, ... so that a drift in machine load hits both alike. Each one
times the demo teacher's train step on synthetic batches as
`benchmarks.train_throughput` does, with that benchmark's batch, step and
--every_row_override flags (--batch_size is the global batch and must
divide by every replica count; its --teacher_variant and --jit_compile are
not used here), on one device with TensorFlow's default threads (N = 1) or
split over N logical CPUs as `train --cpu_replicas=N` sets them up
(`asr_kd.runtime.devices.cpu_replica_strategy`). Prints audio-seconds per
wall-second, and each N's best run against N = 1's best.
"""

import re
import subprocess
import sys
import time

from absl import app
from absl import flags

from benchmarks import train_throughput

FLAGS = flags.FLAGS
_RESULT = re.compile(r'^replicas=(\d+) audio_seconds_per_second=([\d.]+)$',
                     re.M)
# train_throughput's flags that shape the measurement, passed to each child.
_SHARED_FLAGS = ('steps', 'warmup_steps', 'batch_size', 'audio_seconds',
                 'num_tokens', 'num_buckets', 'vocab_size', 'distinct_batches',
                 'every_row_override')


def define_flags():
  train_throughput.define_flags()  # --steps, --batch_size (global), ...
  flags.DEFINE_list('replicas', ['1', '2'], 'Replica counts to compare; 1 is '
                    'one device with default threads.')
  flags.DEFINE_integer('repeats', 2, 'Measurements per replica count.')
  flags.DEFINE_integer('measure', 0, 'Internal: measure this replica count '
                       'in this process and print one result line.')


def measure(replicas: int) -> float:
  """Audio-seconds per second of the demo teacher's step on `replicas`."""
  # Imported here: the parent process only starts children.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from asr_kd.runtime import devices  # pylint: disable=g-import-not-at-top

  strategy = (devices.cpu_replica_strategy(replicas) if replicas > 1
              else tf.distribute.get_strategy())
  config = train_throughput.experiment_config(train_throughput.TEACHER)
  batches = train_throughput.synthetic_batches()
  with strategy.scope():
    task = train_throughput._NoTokenizerTask(config.task, FLAGS.vocab_size)  # pylint: disable=protected-access
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                      config.runtime)

  def split(batch):
    def replica_batch(context):
      size = FLAGS.batch_size // context.num_replicas_in_sync
      start = context.replica_id_in_sync_group * size
      return {key: value[start:start + size] for key, value in batch.items()}
    return strategy.experimental_distribute_values_from_function(
        replica_batch)

  inputs = [split(batch) for batch in batches]

  @tf.function
  def step(batch):
    logs = strategy.run(
        lambda b: task.train_step(b, model, optimizer), args=(batch,))
    return strategy.reduce(tf.distribute.ReduceOp.MEAN, logs[task.loss],
                           axis=None)

  for index in range(max(FLAGS.warmup_steps, FLAGS.num_buckets)):
    float(step(inputs[index % len(inputs)]))  # Tracing and warm-up.
  audio_seconds = 0.0
  start = time.perf_counter()
  for index in range(FLAGS.steps):
    loss = step(inputs[index % len(inputs)])
    audio_seconds += train_throughput.batch_audio_seconds(
        batches[index % len(batches)])
  float(loss)
  return audio_seconds / (time.perf_counter() - start)


def main(_):
  if FLAGS.measure:
    print(f'replicas={FLAGS.measure} audio_seconds_per_second='
          f'{measure(FLAGS.measure):.2f}', flush=True)
    return
  counts = [int(value) for value in FLAGS.replicas]
  best = {}
  for _ in range(FLAGS.repeats):
    for count in counts:
      command = [sys.executable, '-m', 'benchmarks.cpu_replicas',
                 f'--measure={count}'] + [
                     f'--{name}={FLAGS[name].value}' for name in _SHARED_FLAGS]
      result = subprocess.run(command, capture_output=True, text=True,
                              check=False)
      match = _RESULT.search(result.stdout)
      if result.returncode or not match:
        sys.exit(f'cpu_replicas: measuring {count} replicas failed:\n'
                 f'{result.stderr[-2000:]}')
      throughput = float(match.group(2))
      best[count] = max(best.get(count, 0.0), throughput)
      print(f'replicas={count}: {throughput:8.2f} audio-s/s', flush=True)
  baseline = best.get(1)
  for count in counts:
    ratio = f'  {best[count] / baseline:5.2f}x one device' if baseline else ''
    print(f'best, replicas={count}: {best[count]:8.2f} audio-s/s{ratio}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
