"""chunked_joint: one student joint call per chunk for RNN-T + KL together."""

import numpy as np
import tensorflow as tf

from asr_kd.losses import distillation
from asr_kd.losses import distillation_fused
from asr_kd.losses import rnnt


class _Joint(tf.Module):
  """tanh(enc W_e + pred W_p) W_o + b in float64, counting its calls."""

  def __init__(self, rng, encoder_dim, pred_dim, hidden_dim, vocab_size):
    super().__init__()
    shapes = dict(encoder=(encoder_dim, hidden_dim),
                  pred=(pred_dim, hidden_dim),
                  output=(hidden_dim, vocab_size), bias=(vocab_size,))
    self.weights = {
        name: tf.Variable(rng.normal(scale=0.7, size=shape), dtype=tf.float64)
        for name, shape in shapes.items()}
    # Eagerly, a call per chunk; inside tf.function, a call per trace.
    self.calls = 0

  def __call__(self, encoder_out, pred_out):
    self.calls += 1
    weights = self.weights
    hidden = tf.tanh(tf.matmul(encoder_out, weights['encoder']) +
                     tf.matmul(pred_out, weights['pred']))
    return tf.matmul(hidden, weights['output']) + weights['bias']


def _case(seed, ratio=1, frames=11):
  rng = np.random.default_rng(seed)
  batch_size, labels, vocab = 3, 4, 7
  teacher_frames = frames * ratio - (ratio - 1)

  def normal(*shape):
    return tf.constant(rng.normal(size=shape), tf.float64)

  return dict(
      student=_Joint(rng, 5, 4, 6, vocab),
      teacher=_Joint(rng, 3, 2, 5, vocab),
      student_encoder_out=normal(batch_size, frames, 5),
      student_pred_out=normal(batch_size, labels + 1, 4),
      teacher_encoder_out=normal(batch_size, teacher_frames, 3),
      teacher_pred_out=normal(batch_size, labels + 1, 2),
      labels=tf.constant(rng.integers(1, vocab, size=(batch_size, labels))),
      logit_lengths=tf.constant([frames, 6, 1]),
      teacher_lengths=tf.constant([teacher_frames, 6 * ratio - 1, 1]),
      label_lengths=tf.constant([2, labels, 0]))


def _combined_and_separate(case, kind, chunk, ratio, right_shift, alpha,
                           jit_compile, rnnt_options=None):
  """(losses, gradients): the combined pass, then the separate losses."""
  student, teacher = case['student'], case['teacher']
  watched = [case['student_encoder_out'], case['student_pred_out']]
  sources = watched + list(student.trainable_variables) + list(
      teacher.trainable_variables)
  lengths = dict(logit_lengths=case['logit_lengths'],
                 label_lengths=case['label_lengths'])
  kl_options = dict(
      temperature=1.5, time_chunk_size=chunk,
      teacher_lengths=case['teacher_lengths'], teacher_frame_ratio=ratio,
      teacher_right_shift=right_shift, **lengths)
  models = (case['student_encoder_out'], case['student_pred_out'], student,
            case['teacher_encoder_out'], case['teacher_pred_out'], teacher)
  weights = tf.constant([1.0, 2.0, 3.0])

  def combined():
    with tf.GradientTape() as tape:
      tape.watch(watched)
      loss = distillation.distillation_loss_from_joint(
          *models, labels=case['labels'], kind=kind, alpha=alpha,
          rnnt_options=rnnt_options, **kl_options)
      total = tf.reduce_sum(loss.total * weights)
    return (loss.rnnt, loss.kl), tape.gradient(total, sources)

  def separate():
    with tf.GradientTape() as tape:
      tape.watch(watched)
      rnnt_nll = rnnt.rnnt_loss_from_joint(
          case['student_encoder_out'], case['student_pred_out'], student,
          case['labels'], time_chunk_size=chunk, **lengths,
          **(rnnt_options or {}))
      if kind == 'full':
        kl = distillation_fused.full_vocab_kl_from_joint(*models,
                                                         **kl_options)
      else:
        kl = distillation_fused.three_class_kl_from_joint(
            *models, labels=case['labels'], **kl_options)
      total = tf.reduce_sum((rnnt_nll + alpha * kl) * weights)
    return (rnnt_nll, kl), tape.gradient(total, sources)

  if jit_compile:
    combined = tf.function(combined, jit_compile=True)
    separate = tf.function(separate, jit_compile=True)
  return combined(), separate()


class DistillationFromJointTest(tf.test.TestCase):

  def test_student_joint_runs_once_per_chunk_each_way(self):
    case = _case(seed=0, frames=11)
    student = case['student']
    chunk, num_chunks = 4, 3
    models = (case['student_encoder_out'], case['student_pred_out'], student,
              case['teacher_encoder_out'], case['teacher_pred_out'],
              case['teacher'])

    def loss_and_gradient():
      with tf.GradientTape() as tape:
        tape.watch(case['student_encoder_out'])
        loss = distillation.distillation_loss_from_joint(
            *models, labels=case['labels'],
            logit_lengths=case['logit_lengths'],
            label_lengths=case['label_lengths'], time_chunk_size=chunk)
      return tape.gradient(loss.total, case['student_encoder_out'])

    for kind in distillation.KINDS:
      with self.subTest(mode='eager', kind=kind):
        student.calls = 0
        with tf.GradientTape() as tape:
          tape.watch(case['student_encoder_out'])
          loss = distillation.distillation_loss_from_joint(
              *models, labels=case['labels'], kind=kind,
              logit_lengths=case['logit_lengths'],
              label_lengths=case['label_lengths'], time_chunk_size=chunk)
        self.assertEqual(student.calls, num_chunks)
        tape.gradient(loss.total, case['student_encoder_out'])
        self.assertEqual(student.calls, 2 * num_chunks)
    with self.subTest(mode='tf.function'):
      # One trace of each while-loop body: the forward's and the backward's.
      student.calls = 0
      tf.function(loss_and_gradient).get_concrete_function()
      self.assertEqual(student.calls, 2)

  def test_combined_pass_equals_separate_losses(self):
    settings = [  # (kind, chunk, ratio, right shift, jit_compile)
        ('full', 4, 1, 0, False),
        ('three_class', 3, 1, 0, False),
        ('full', 4, 2, 1, False),
        ('three_class', 5, 2, 1, False),
        ('full', 16, 2, 1, True),
    ]
    for seed, (kind, chunk, ratio, right_shift, jit) in enumerate(settings):
      case = _case(seed=10 + seed, ratio=ratio)
      with self.subTest(kind=kind, chunk=chunk, ratio=ratio,
                        right_shift=right_shift, jit=jit):
        ((rnnt_nll, kl), grads), ((rnnt_ref, kl_ref), grads_ref) = (
            _combined_and_separate(case, kind, chunk, ratio, right_shift,
                                   alpha=0.3, jit_compile=jit,
                                   rnnt_options=dict(fastemit_lambda=0.1)))
        self.assertGreater(float(tf.reduce_min(kl[:2])), 0.0)
        self.assertAllClose(rnnt_nll, rnnt_ref, rtol=1e-6, atol=1e-6)
        self.assertAllClose(kl, kl_ref, rtol=1e-6, atol=1e-6)
        num_student = 2 + len(case['student'].trainable_variables)
        for grad, grad_ref in zip(grads[:num_student],
                                  grads_ref[:num_student]):
          self.assertEqual(grad.dtype, tf.float64)
          self.assertAllClose(grad, grad_ref, rtol=1e-6, atol=1e-6)
        # The teacher's variables, read in the forward pass, get None.
        self.assertEqual(grads[num_student:],
                         [None] * len(grads[num_student:]))
        self.assertEqual(grads_ref[num_student:],
                         [None] * len(grads_ref[num_student:]))


if __name__ == '__main__':
  tf.test.main()
