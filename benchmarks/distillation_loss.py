r"""Times the soft-target KD loss (forward + backward) and its peak memory.

Modes:
  unfused: `full_vocab_kl` / `three_class_kl` on both models' [B, T, U+1, V]
    logits; the whole forward + backward step is one XLA-compiled function
    (as in a jit-compiled train step). Its time is also given as a ratio to
    one NumPy read pass (np.sum) over the two logits tensors, timed
    interleaved with it in the same process (the machine is shared).
  fused: `*_kl_from_joint` with `--time_chunk_size`, both joints a small
    tanh MLP with `--joint_dim` hidden units; its time includes the joints'
    matmuls (forward, recompute, backward), so it has no read-pass ratio.
  fused_kd: the fused mode's joints and KL plus the student's RNN-T loss:
    `distillation_loss_from_joint` (total = RNN-T + 0.01 * KL), the loss of
    a KD train step with `task.loss.fused`.
  rnnt: the student's fused RNN-T loss alone (the step without
    distillation).
  stored_kd: the RNN-T loss plus the KL to stored top-`--top_k` targets
    (`stored_target_loss`, the loss of a KD step with
    `distillation.targets: stored`); the targets are the teacher joint's,
    float16 as the input pipeline gives them. The kind is not used.
The fused modes' times are also given relative to the rnnt mode's when it
runs. A header line gives the stored targets' bytes per utterance (as the
TFRecord schema stores them, serialized) against dense float32 targets.

Memory: growth of the peak bytes held by TensorFlow's CPU allocator during
one step (inputs already allocated), as a ratio to one float32 logits
tensor; for unfused it includes the returned gradient (1x by itself).

Usage:
  .venv/bin/python -m benchmarks.distillation_loss \
      --batch_size=8 --frames=200 --labels=50 --vocab=1024
"""

import os
import sys
import time

from absl import app
from absl import flags

import asr_kd  # pylint: disable=unused-import  (sets TF_USE_LEGACY_KERAS)

MODES = ('unfused', 'fused', 'fused_kd', 'rnnt', 'stored_kd')

_BATCH_SIZE = flags.DEFINE_integer('batch_size', 8, 'B.')
_FRAMES = flags.DEFINE_integer('frames', 200, 'T (student encoder frames).')
_LABELS = flags.DEFINE_integer('labels', 50, 'U (the lattice has U+1 rows).')
_VOCAB = flags.DEFINE_integer('vocab', 1024, 'V, blank included.')
_KINDS = flags.DEFINE_list('kinds', ['full', 'three_class'], 'KL kinds.')
_MODES = flags.DEFINE_list('modes', ['unfused', 'fused'],
                           'Modes to run: unfused, fused, fused_kd, rnnt, '
                           'stored_kd.')
_TOP_K = flags.DEFINE_integer('top_k', 8, 'Ids per node of stored targets '
                              '(stored_kd mode and the storage line).')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed runs after warm-up.')
_TIME_CHUNK_SIZE = flags.DEFINE_integer('time_chunk_size', 20,
                                        'Frames per chunk in fused modes.')
_JIT_STEP = flags.DEFINE_bool(
    'jit_step', True, 'Compile the whole fwd+bwd step with XLA (else a plain '
    'tf.function around the XLA-compiled kernels).')
_JOINT_DIM = flags.DEFINE_integer('joint_dim', 256,
                                  'Hidden size of the fused mode joints.')


def _median_seconds(fns, repeats: int):
  """Median wall time of each of `fns`, timed interleaved.

  Interleaving makes the step and the read pass see the same load from other
  processes on a shared machine, which keeps their ratio meaningful.
  """
  for fn in fns:
    fn()  # Warm-up: tracing, XLA compilation, first-touch of buffers.
  times = [[] for _ in fns]
  for _ in range(repeats):
    for fn, fn_times in zip(fns, times):
      start = time.perf_counter()
      fn()
      fn_times.append(time.perf_counter() - start)
  return [sorted(fn_times)[len(fn_times) // 2] for fn_times in times]


def _unfused_step(tf, distillation, kind, shape, lengths):
  """Returns a jit-compiled fwd+bwd step and the logits it reads."""
  batch_size, frames, rows, vocab = shape
  student_logits = tf.random.stateless_normal(shape, seed=[1, 2])
  teacher_logits = tf.random.stateless_normal(shape, seed=[3, 4])
  labels = tf.random.stateless_uniform([batch_size, rows - 1], seed=[5, 6],
                                       minval=1, maxval=vocab, dtype=tf.int32)
  logit_lengths, label_lengths = lengths

  @tf.function(jit_compile=_JIT_STEP.value)
  def step(student_logits, teacher_logits):
    with tf.GradientTape() as tape:
      tape.watch(student_logits)
      if kind == 'full':
        kl = distillation.full_vocab_kl(student_logits, teacher_logits,
                                        logit_lengths, label_lengths)
      else:
        kl = distillation.three_class_kl(student_logits, teacher_logits,
                                         labels, logit_lengths, label_lengths)
      total = tf.reduce_sum(kl)
    return total, tape.gradient(total, student_logits)

  del frames
  return lambda: step(student_logits, teacher_logits), (student_logits,
                                                          teacher_logits)


def _fused_step(tf, distillation, kind, shape, lengths, mode):
  """Returns a jit-compiled fwd+bwd step of a fused mode's loss."""
  batch_size, frames, rows, vocab = shape
  joint_dim = _JOINT_DIM.value
  logit_lengths, label_lengths = lengths

  def joint(seed):
    encoder_weights = tf.Variable(
        tf.random.stateless_normal([joint_dim, joint_dim], seed=[seed, 1]))
    output_weights = tf.Variable(
        tf.random.stateless_normal([joint_dim, vocab], seed=[seed, 2]) * 0.1)

    def joint_fn(encoder_out, pred_out):
      hidden = tf.tanh(
          tf.einsum('btxd,dh->btxh', encoder_out, encoder_weights) + pred_out)
      return tf.einsum('btuh,hv->btuv', hidden, output_weights)

    return joint_fn, [encoder_weights, output_weights]

  student_joint, student_variables = joint(7)
  teacher_joint, _ = joint(8)

  def inputs(seed):
    return (tf.random.stateless_normal([batch_size, frames, joint_dim],
                                       seed=[seed, 3]),
            tf.random.stateless_normal([batch_size, rows, joint_dim],
                                       seed=[seed, 4]))

  student_encoder_out, student_pred_out = inputs(9)
  teacher_encoder_out, teacher_pred_out = inputs(10)
  labels = tf.random.stateless_uniform([batch_size, rows - 1], seed=[5, 6],
                                       minval=1, maxval=vocab, dtype=tf.int32)
  options = dict(logit_lengths=logit_lengths, label_lengths=label_lengths,
                 time_chunk_size=_TIME_CHUNK_SIZE.value)

  # pylint: disable=g-import-not-at-top
  from asr_kd.losses import rnnt as rnnt_lib
  from asr_kd.losses import sparse_kl
  # pylint: enable=g-import-not-at-top
  if mode == 'stored_kd':
    stored = sparse_kl.top_k_targets(tf.nn.log_softmax(teacher_joint(
        teacher_encoder_out[:, :, None], teacher_pred_out[:, None])),
                                     _TOP_K.value)
    stored = sparse_kl.TopKTargets(tf.cast(stored.log_probs, tf.float16),
                                   stored.ids,
                                   tf.cast(stored.rest_log_prob, tf.float16))

  @tf.function(jit_compile=_JIT_STEP.value)
  def step(student_encoder_out, student_pred_out):
    with tf.GradientTape() as tape:
      tape.watch([student_encoder_out, student_pred_out])
      models = (student_encoder_out, student_pred_out, student_joint,
                teacher_encoder_out, teacher_pred_out, teacher_joint)
      if mode == 'rnnt':
        total = tf.reduce_sum(rnnt_lib.rnnt_loss_from_joint(
            student_encoder_out, student_pred_out, student_joint, labels,
            **options))
      elif mode == 'stored_kd':
        total = tf.reduce_sum(distillation.stored_target_loss(
            student_encoder_out, student_pred_out, student_joint, stored,
            options['logit_lengths'], labels, **options).total)
      elif mode == 'fused_kd':
        total = tf.reduce_sum(distillation.distillation_loss_from_joint(
            *models, labels=labels, kind=kind, **options).total)
      elif kind == 'full':
        total = tf.reduce_sum(
            distillation.full_vocab_kl_from_joint(*models, **options))
      else:
        total = tf.reduce_sum(distillation.three_class_kl_from_joint(
            *models, labels=labels, **options))
    return total, tape.gradient(
        total, [student_encoder_out, student_pred_out] + student_variables)

  return lambda: step(student_encoder_out, student_pred_out), ()


def _measure(tf, np, distillation, kind: str, mode: str) -> dict:
  """Times one (kind, mode) and measures its peak memory growth."""
  from benchmarks import peak_memory  # pylint: disable=g-import-not-at-top
  shape = (_BATCH_SIZE.value, _FRAMES.value, _LABELS.value + 1, _VOCAB.value)
  # Ragged lengths, as in a real batch: the longest example fills the tensor.
  batch_size = shape[0]
  lengths = (tf.constant(np.linspace(shape[1], shape[1] // 2, batch_size),
                         tf.int32),
             tf.constant(np.linspace(shape[2] - 1, (shape[2] - 1) // 2,
                                     batch_size), tf.int32))
  if mode == 'unfused':
    step, logits = _unfused_step(tf, distillation, kind, shape, lengths)
  else:
    step, logits = _fused_step(tf, distillation, kind, shape, lengths, mode)
  arrays = [tensor.numpy() for tensor in logits]
  timed = [step]
  if arrays:
    timed.append(lambda: [float(np.sum(array)) for array in arrays])
  seconds = _median_seconds(timed, _REPEATS.value)
  result = dict(kind=kind, mode=mode, step_seconds=seconds[0],
                logits_bytes=int(np.prod(shape)) * 4,
                peak_growth_bytes=peak_memory.peak_growth_bytes(step)[0])
  if arrays:
    result.update(read_pass_seconds=seconds[1],
                  ratio_to_read_pass=seconds[0] / seconds[1])
  return result


def _format(result: dict) -> str:
  ratio = result.get('ratio_to_read_pass')
  ratio_text = f'{ratio:6.2f}x' if ratio is not None else '    n/a'
  read_ms = result.get('read_pass_seconds')
  read_text = f'{read_ms * 1e3:8.1f}' if read_ms is not None else '     n/a'
  growth = result['peak_growth_bytes']
  growth_text = (f"{growth / 2**20:10.1f} {growth / result['logits_bytes']:8.3f}"
                 if growth is not None else '       n/a      n/a')
  return (f"{result['kind']:12s} {result['mode']:9s} "
          f"{result['step_seconds'] * 1e3:10.1f} {read_text} {ratio_text} "
          f"{growth_text}")


def main(argv):
  del argv
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from asr_kd.losses import distillation  # pylint: disable=g-import-not-at-top

  for kind in _KINDS.value:
    if kind not in ('full', 'three_class'):
      sys.exit(f'error: unknown kind {kind!r} (full, three_class).')
  for mode in _MODES.value:
    if mode not in MODES:
      sys.exit(f'error: unknown mode {mode!r} ({", ".join(MODES)}).')
  logits_mib = (_BATCH_SIZE.value * _FRAMES.value * (_LABELS.value + 1) *
                _VOCAB.value * 4 / 2**20)
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, XLA CPU; '
        f'B={_BATCH_SIZE.value} T={_FRAMES.value} U={_LABELS.value} '
        f'V={_VOCAB.value}; one float32 logits tensor = {logits_mib:.1f} MiB; '
        f'median of {_REPEATS.value}; jit_step={_JIT_STEP.value}; fused: '
        f'time_chunk_size={_TIME_CHUNK_SIZE.value}, '
        f'joint_dim={_JOINT_DIM.value}')
  print(f"{'kind':12s} {'mode':9s} {'fwd+bwd ms':>10s} {'read ms':>8s} "
        f"{'ratio':>7s} {'peak+ MiB':>10s} {'/logits':>8s}")
  print(_storage_line(tf, np))
  rnnt_seconds = None
  for mode in _MODES.value:
    # The rnnt and stored_kd modes have no KL kind: one row each.
    for kind in (_KINDS.value[:1] if mode in ('rnnt', 'stored_kd')
                 else _KINDS.value):
      result = _measure(tf, np, distillation, kind, mode)
      if mode == 'rnnt':
        rnnt_seconds = result['step_seconds']
      relative = (f'  {result["step_seconds"] / rnnt_seconds:5.2f}x rnnt'
                  if rnnt_seconds and mode != 'unfused' else '')
      print(_format(result) + relative, flush=True)
  return 0


def _storage_line(tf, np) -> str:
  """Bytes per utterance of stored top-k targets against dense float32."""
  from asr_kd.dataloaders import tfrecord_schema  # pylint: disable=g-import-not-at-top
  del tf
  frames, rows, k = _FRAMES.value, _LABELS.value + 1, _TOP_K.value
  rng = np.random.default_rng(0)
  targets = {'top_log_probs': rng.normal(size=(frames, rows, k)),
             'top_ids': rng.integers(0, _VOCAB.value, size=(frames, rows, k)),
             'rest_log_prob': rng.normal(size=(frames, rows)),
             'temperature': 1.0, 'frame_ratio': 1}
  audio = np.zeros([160], np.int16)
  with_targets = tfrecord_schema.make_example(
      'u', audio, teacher_targets=targets).ByteSize()
  without = tfrecord_schema.make_example('u', audio).ByteSize()
  stored = with_targets - without
  dense = frames * rows * _VOCAB.value * 4
  return (f'stored targets, k={k}: {stored / 1024:.1f} KiB per utterance of '
          f'T={frames}, U={_LABELS.value} (serialized) against '
          f'{dense / 1024:.1f} KiB dense float32 at V={_VOCAB.value}: '
          f'{dense / stored:.0f}x smaller')


if __name__ == '__main__':
  app.run(main)
