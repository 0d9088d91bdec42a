r"""Auxiliary CTC loss: the pure-TF path against TF's C++ kernel on CPU.

  python -m benchmarks.ctc_loss [--shapes=24x25x12,12x50x25,...] \
      [--vocab_size=29] [--repeats=3] [--threads=1]

Times `asr_kd.losses.ctc.ctc_loss` forward and backward (a `tf.function`
per implementation, shapes relaxed) over one batch per shape BxTxU (batch,
encoder frames, labels; the default is the demo teacher's range of buckets
on one replica), alternating the two implementations so that a drift in
machine load hits both alike. Prints each pass's milliseconds and the best
pass's ratio. `--threads=1` matches `train --cpu_replicas=2`, whose
replicas run single-threaded.
"""

import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from asr_kd.losses import ctc

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_list('shapes', ['24x25x12', '12x50x25', '8x75x38', '6x100x50',
                               '4x150x75', '3x200x100'],
                    'Batches as BxTxU (utterances x frames x labels).')
  flags.DEFINE_integer('vocab_size', 29, 'Output classes, blank included.')
  flags.DEFINE_integer('repeats', 3, 'Timed passes per implementation.')
  flags.DEFINE_integer('threads', 1, 'Intra- and inter-op threads (0: TF '
                       'default).')


def random_batches(shapes, vocab_size, seed=0):
  """(logits, labels, logit_lengths, label_lengths) per BxTxU shape."""
  rng = np.random.default_rng(seed)
  batches = []
  for shape in shapes:
    batch, frames, labels = (int(n) for n in shape.split('x'))
    batches.append((
        tf.constant(rng.standard_normal((batch, frames, vocab_size)),
                    tf.float32),
        tf.constant(rng.integers(1, vocab_size, (batch, labels)), tf.int32),
        tf.fill([batch], frames),
        tf.constant(rng.integers(labels // 2, labels + 1, batch), tf.int32)))
  return batches


def loss_and_gradient_fn(sparse_kernel: bool):
  @tf.function(reduce_retracing=True)
  def loss_and_gradient(logits, labels, logit_lengths, label_lengths):
    with tf.GradientTape() as tape:
      tape.watch(logits)
      total = tf.reduce_sum(ctc.ctc_loss(logits, labels, logit_lengths,
                                         label_lengths,
                                         sparse_kernel=sparse_kernel))
    return total, tape.gradient(total, logits)
  return loss_and_gradient


def main(_):
  if FLAGS.threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
  batches = random_batches(FLAGS.shapes, FLAGS.vocab_size)
  functions = {'pure-TF (dense labels)': loss_and_gradient_fn(False),
               'C++ kernel (sparse labels)': loss_and_gradient_fn(True)}
  totals = {}
  for name, function in functions.items():  # Traces every shape.
    totals[name] = [float(function(*batch)[0]) for batch in batches]
  dense, sparse = totals.values()
  np.testing.assert_allclose(dense, sparse, rtol=1e-4)
  best = {name: float('inf') for name in functions}
  for repeat in range(FLAGS.repeats):
    for name, function in functions.items():
      start = time.perf_counter()
      for batch in batches:
        function(*batch)
      milliseconds = (time.perf_counter() - start) * 1000
      best[name] = min(best[name], milliseconds)
      print(f'pass {repeat}: {name}: {milliseconds:.1f} ms', flush=True)
  dense_ms, sparse_ms = best.values()
  print(f'best of {FLAGS.repeats}: pure-TF {dense_ms:.1f} ms, C++ kernel '
        f'{sparse_ms:.1f} ms, ratio {dense_ms / sparse_ms:.1f}x')


if __name__ == '__main__':
  define_flags()
  app.run(main)
