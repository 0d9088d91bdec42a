"""Forward+backward time and peak memory of the RNN-T loss on this machine.

Every time is printed as a ratio to one NumPy read pass (`np.max`) over an
array of the logits' size, measured in the same run, so figures from a
shared, noisy machine stay comparable. Peak memory is the growth of the peak
bytes held by TensorFlow's CPU allocator during one step (inputs already
allocated), as a ratio to the size of the full float32 logits; for the
standard path it includes the returned gradient w.r.t. logits (1x by itself).

  .venv/bin/python -m benchmarks.rnnt_loss
  .venv/bin/python -m benchmarks.rnnt_loss --standard=2x20x10x64 --fused=

`--pruned` shapes time the joint network and the loss together, once on the
full lattice and once pruned (`asr_kd/losses/rnnt_pruned.py`), in one run.
"""

import os
import time

from absl import app
from absl import flags
import numpy as np

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from asr_kd.losses import rnnt  # pylint: disable=g-import-not-at-top
from benchmarks import peak_memory  # pylint: disable=g-import-not-at-top
from asr_kd.losses import rnnt_pruned  # pylint: disable=g-import-not-at-top

_STANDARD = flags.DEFINE_list(
    'standard', ['8x200x50x1024', '16x250x100x256'],
    'BxTxUxV shapes for rnnt_loss on full logits [B, T, U+1, V].')
_FUSED = flags.DEFINE_list(
    'fused', ['4x400x100x4096'], 'BxTxUxV shapes for rnnt_loss_from_joint.')
_JOINT_DIM = flags.DEFINE_integer(
    'joint_dim', 128, 'Encoder, predictor and joint hidden width (fused).')
_CHUNK = flags.DEFINE_integer('time_chunk_size', 4,
                              'Frames per joint evaluation (fused).')
_PRUNED = flags.DEFINE_list(
    'pruned', [], 'BxTxUxV shapes for the joint network + loss, full lattice '
    'against pruned (e.g. 8x100x60x29, the demo teacher\'s middle bucket).')
_PRUNE_RANGE = flags.DEFINE_integer('prune_range', 4,
                                    'Label positions per frame (pruned).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed runs (median).')
_LAYOUT = flags.DEFINE_enum(
    'layout', 'ragged', ['ragged', 'full'], 'Lengths: ragged (as in a real '
    'batch: one example at full size, the others between half and full) '
    'or every example at full size (the most work for the same tensors).')
_JIT_COMPILE = flags.DEFINE_boolean(
    'jit_compile', True, 'XLA-compile each step (false: graph mode, as the '
    'demo teacher trains on CPU).')


def median_seconds(step, repeats):
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def numpy_read_pass_seconds(array, repeats):
  """Best time of np.max over `array`: one streaming read of every value."""
  return min(median_seconds(lambda: np.max(array), 1) for _ in range(repeats))


def parse_shape(text):
  batch, frames, labels, vocab = (int(x) for x in text.split('x'))
  return batch, frames, labels, vocab


def random_lengths(rng, batch, frames, labels):
  """Lengths of --layout: ragged (the first example at full size, the
  others from half to full) or all full."""
  logit_lengths = rng.integers(frames // 2, frames + 1, size=batch)
  label_lengths = rng.integers(labels // 2, labels + 1, size=batch)
  logit_lengths[0], label_lengths[0] = frames, labels
  if _LAYOUT.value == 'full':
    logit_lengths[:], label_lengths[:] = frames, labels
  token_ids = rng.integers(1, 1 << 30, size=(batch, labels))
  return logit_lengths.astype(np.int32), label_lengths.astype(np.int32), (
      token_ids)


def bench_standard(shape, repeats, rng):
  batch, frames, labels, vocab = shape
  logit_lengths, label_lengths, token_ids = random_lengths(
      rng, batch, frames, labels)
  label_ids = tf.constant(token_ids % (vocab - 1) + 1, tf.int32)
  logits = tf.random.normal([batch, frames, labels + 1, vocab], seed=1)
  logits_bytes = logits.shape.num_elements() * 4
  read_pass = numpy_read_pass_seconds(logits.numpy(), repeats)

  @tf.function(jit_compile=_JIT_COMPILE.value)
  def forward_backward(logits):
    with tf.GradientTape() as tape:
      tape.watch(logits)
      loss = rnnt.rnnt_loss(logits, label_ids, logit_lengths, label_lengths)
    return loss, tape.gradient(loss, logits)

  def step():
    loss, grad = forward_backward(logits)
    return float(tf.reduce_sum(loss)) + float(grad[0, 0, 0, 0])

  step()  # Compiles.
  seconds = median_seconds(step, repeats)
  peak, _ = peak_memory.peak_growth_bytes(step)
  return dict(seconds=seconds, read_pass=read_pass, peak=peak,
              logits_bytes=logits_bytes)


class _TanhJoint:
  """Random inputs and a tanh(enc W_e + pred W_p) W_o joint of one shape."""

  def __init__(self, shape, rng, joint_dim):
    batch, frames, labels, vocab = shape
    self.logit_lengths, self.label_lengths, token_ids = random_lengths(
        rng, batch, frames, labels)
    self.label_ids = tf.constant(token_ids % (vocab - 1) + 1, tf.int32)
    self.logits_bytes = batch * frames * (labels + 1) * vocab * 4
    init = tf.random_normal_initializer(stddev=joint_dim**-0.5, seed=2)
    self.encoder_proj = tf.Variable(init([joint_dim, joint_dim]))
    self.predictor_proj = tf.Variable(init([joint_dim, joint_dim]))
    self.output_proj = tf.Variable(init([joint_dim, vocab]))
    self.encoder_out = tf.random.normal([batch, frames, joint_dim], seed=3)
    self.predictor_out = tf.random.normal([batch, labels + 1, joint_dim],
                                          seed=4)

  @property
  def variables(self):
    return [self.encoder_proj, self.predictor_proj, self.output_proj]

  def __call__(self, encoder_chunk, predictor_out):
    # tensordot (a 2-D matmul on reshaped inputs), as Keras' Dense: the
    # gradient of TF 2.17's broadcasting 4-D x 2-D tf.matmul segfaults in
    # graph mode on CPU.
    hidden = tf.tanh(tf.tensordot(encoder_chunk, self.encoder_proj, 1) +
                     tf.tensordot(predictor_out, self.predictor_proj, 1))
    return tf.tensordot(hidden, self.output_proj, 1)

  def measure(self, loss_fn, repeats):
    """Times loss_fn(encoder_out, predictor_out) and its gradients."""
    read_pass = numpy_read_pass_seconds(
        np.ones(self.logits_bytes // 4, np.float32), repeats)

    @tf.function(jit_compile=_JIT_COMPILE.value)
    def forward_backward(encoder_out, predictor_out):
      with tf.GradientTape() as tape:
        tape.watch([encoder_out, predictor_out])
        loss = loss_fn(encoder_out, predictor_out)
      sources = [encoder_out, predictor_out, *tape.watched_variables()]
      return loss, tape.gradient(loss, sources)

    def step():
      loss, grads = forward_backward(self.encoder_out, self.predictor_out)
      return float(tf.reduce_sum(loss)) + sum(float(tf.reduce_sum(g))
                                              for g in grads)

    step()
    seconds = median_seconds(step, repeats)
    peak, _ = peak_memory.peak_growth_bytes(step)
    return dict(seconds=seconds, read_pass=read_pass, peak=peak,
                logits_bytes=self.logits_bytes)


def bench_fused(shape, repeats, rng, joint_dim, chunk):
  """rnnt_loss_from_joint with a tanh joint; full logits never exist."""
  joint = _TanhJoint(shape, rng, joint_dim)
  return joint.measure(
      lambda encoder_out, predictor_out: rnnt.rnnt_loss_from_joint(
          encoder_out, predictor_out, joint, joint.label_ids,
          joint.logit_lengths, joint.label_lengths, time_chunk_size=chunk),
      repeats)


def bench_pruned(shape, repeats, rng, joint_dim, prune_range):
  """(full, pruned): joint + loss on the full lattice, then on the band."""
  joint = _TanhJoint(shape, rng, joint_dim)
  vocab = shape[3]
  init = tf.random_normal_initializer(stddev=joint_dim**-0.5, seed=5)
  am_proj = tf.Variable(init([joint_dim, vocab]))
  lm_proj = tf.Variable(init([joint_dim, vocab]))
  lengths = (joint.logit_lengths, joint.label_lengths)

  def full_loss(encoder_out, predictor_out):
    logits = joint(encoder_out[:, :, tf.newaxis],
                   predictor_out[:, tf.newaxis])
    return rnnt.rnnt_loss(logits, joint.label_ids, *lengths)

  def pruned_loss(encoder_out, predictor_out):
    def band_joint_fn(label_index):
      return joint(encoder_out[:, :, tf.newaxis],
                   tf.gather(predictor_out, label_index, batch_dims=1))
    losses = rnnt_pruned.pruned_rnnt_loss(
        tf.tensordot(encoder_out, am_proj, 1),
        tf.tensordot(predictor_out, lm_proj, 1),
        band_joint_fn, joint.label_ids, *lengths, prune_range=prune_range)
    return losses.pruned + 0.5 * losses.simple

  return (joint.measure(full_loss, repeats),
          joint.measure(pruned_loss, repeats))


def report(kind, shape, result):
  print(f'{kind:8s} B,T,U,V={",".join(map(str, shape)):16s} '
        f'logits {result["logits_bytes"] / 2**20:7.1f} MiB | '
        f'fwd+bwd {result["seconds"] * 1e3:8.1f} ms = '
        f'{result["seconds"] / result["read_pass"]:6.1f} x read pass '
        f'({result["read_pass"] * 1e3:.1f} ms) | '
        'peak growth '
        f'{peak_memory.format_growth(result["peak"], result["logits_bytes"])}',
        flush=True)


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  mode = 'XLA CPU' if _JIT_COMPILE.value else 'graph mode'
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, {mode}, '
        f'median of {_REPEATS.value} runs, {_LAYOUT.value} lengths',
        flush=True)
  for text in _STANDARD.value:
    shape = parse_shape(text)
    report('standard', shape, bench_standard(shape, _REPEATS.value, rng))
  for text in _FUSED.value:
    shape = parse_shape(text)
    report(f'fused/{_CHUNK.value}', shape,
           bench_fused(shape, max(1, _REPEATS.value // 2), rng,
                       _JOINT_DIM.value, _CHUNK.value))
  for text in _PRUNED.value:
    shape = parse_shape(text)
    full, pruned = bench_pruned(shape, _REPEATS.value, rng, _JOINT_DIM.value,
                                _PRUNE_RANGE.value)
    report('joint', shape, full)
    report(f'pruned/{_PRUNE_RANGE.value}', shape, pruned)
    print(f'pruned/{_PRUNE_RANGE.value} time: '
          f'{pruned["seconds"] / full["seconds"]:.2f} x joint + full loss',
          flush=True)


if __name__ == '__main__':
  app.run(main)
