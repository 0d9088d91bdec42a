"""Tests for the soft-target distillation losses (asr_kd/losses/distillation*).

Every KL is checked against a float64 NumPy reference written here; the
reference gradients are central finite differences of that reference, so they
do not share the analytic formula under test.
"""

import numpy as np
import tensorflow as tf

from asr_kd.losses import distillation
from asr_kd.losses import distillation_frames
from asr_kd.losses import distillation_fused
from asr_kd.losses import distillation_kl
from asr_kd.losses import sparse_kl

_RTOL = 1e-5
_ATOL = 1e-5


def _np_log_softmax(logits):
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _np_node_full_kl(student_logits, teacher_logits, temperature):
  """KL per node, [..., V] -> [...], float64."""
  log_q = _np_log_softmax(student_logits / temperature)
  log_p = _np_log_softmax(teacher_logits / temperature)
  return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def _np_class_masses(probs, label, blank):
  """Masses of the classes {label, blank, rest}; label None at the last row."""
  vocab = np.arange(probs.shape[-1])
  in_label = (vocab == label) if label is not None else np.zeros_like(
      vocab, dtype=bool)
  in_blank = vocab == blank
  in_rest = ~(in_label | in_blank)
  return [probs[..., members].sum(axis=-1)
          for members in (in_label, in_blank, in_rest)]


def _np_node_three_class_kl(student_logits, teacher_logits, label, blank,
                            temperature):
  student_probs = np.exp(_np_log_softmax(student_logits / temperature))
  teacher_probs = np.exp(_np_log_softmax(teacher_logits / temperature))
  kl = np.zeros(student_logits.shape[:-1])
  for p_mass, q_mass in zip(
      _np_class_masses(teacher_probs, label, blank),
      _np_class_masses(student_probs, label, blank)):
    present = p_mass > 0
    kl += np.where(present,
                   p_mass * (np.log(np.where(present, p_mass, 1.0)) -
                             np.log(np.where(present, q_mass, 1.0))), 0.0)
  return kl


def _np_node_kl_fn(kind, labels, label_lengths, blank, temperature):
  """Returns node_kl(student_node, teacher_node, b, u) for `kind`."""

  def node_kl(student_node, teacher_node, b, u):
    if kind == 'full':
      return _np_node_full_kl(student_node, teacher_node, temperature)
    # Rows without a next label (the last row, or a label equal to blank)
    # have the classes {blank, rest}.
    has_label = u < label_lengths[b] and labels[b, u] != blank
    label = labels[b, u] if has_label else None
    return _np_node_three_class_kl(student_node, teacher_node, label, blank,
                                   temperature)

  return node_kl


def _np_kl_and_grad(kind, student_logits, teacher_logits, logit_lengths,
                    label_lengths, temperature, scale, labels=None, blank=0,
                    step=1e-6):
  """float64 reference: per-example KL and its finite-difference gradient."""
  node_kl = _np_node_kl_fn(kind, labels, label_lengths, blank, temperature)
  batch_size, _, _, vocab_size = student_logits.shape
  kl = np.zeros(batch_size)
  grad = np.zeros_like(student_logits)
  perturbation = np.eye(vocab_size) * step
  for b in range(batch_size):
    for t in range(logit_lengths[b]):
      for u in range(label_lengths[b] + 1):
        student_node = student_logits[b, t, u]
        teacher_node = teacher_logits[b, t, u]
        kl[b] += scale * node_kl(student_node, teacher_node, b, u)
        # Central differences, all V coordinates at once.
        plus = node_kl(student_node + perturbation, teacher_node, b, u)
        minus = node_kl(student_node - perturbation, teacher_node, b, u)
        grad[b, t, u] = scale * (plus - minus) / (2 * step)
  return kl, grad


def _random_case(rng, max_batch=3, max_frames=20, max_labels=8, max_vocab=30,
                 min_vocab=2):
  batch_size = rng.integers(1, max_batch + 1)
  num_frames = rng.integers(1, max_frames + 1)
  max_label_len = rng.integers(0, max_labels + 1)
  vocab_size = rng.integers(min_vocab, max_vocab + 1)
  logit_lengths = rng.integers(1, num_frames + 1, size=batch_size)
  logit_lengths[0] = num_frames
  label_lengths = rng.integers(0, max_label_len + 1, size=batch_size)
  label_lengths[-1] = max_label_len
  shape = (batch_size, num_frames, max_label_len + 1, vocab_size)
  student_logits = rng.normal(scale=2.0, size=shape)
  teacher_logits = rng.normal(scale=2.0, size=shape)
  labels = rng.integers(1, vocab_size, size=(batch_size, max_label_len))
  return dict(
      student_logits=student_logits,
      teacher_logits=teacher_logits,
      labels=labels,
      logit_lengths=logit_lengths,
      label_lengths=label_lengths)


def _tf_kl(kind, case, temperature, scale_by_temperature_squared, blank=0,
           jit_compile=True):
  """Runs the TF KL of `kind`; returns (kl, grad w.r.t. student, teacher)."""

  def kl_and_grads(student_logits, teacher_logits):
    with tf.GradientTape() as tape:
      tape.watch([student_logits, teacher_logits])
      if kind == 'full':
        kl = distillation_kl.full_vocab_kl(
            student_logits, teacher_logits, case['logit_lengths'],
            case['label_lengths'], temperature=temperature,
            scale_by_temperature_squared=scale_by_temperature_squared)
      else:
        kl = distillation_kl.three_class_kl(
            student_logits, teacher_logits, case['labels'],
            case['logit_lengths'], case['label_lengths'], blank=blank,
            temperature=temperature,
            scale_by_temperature_squared=scale_by_temperature_squared)
      # A random upstream weight per example checks that it is applied.
      weighted = tf.reduce_sum(kl * upstream)
    student_grad, teacher_grad = tape.gradient(
        weighted, [student_logits, teacher_logits])
    return kl, student_grad, teacher_grad

  upstream = tf.constant(
      np.linspace(0.5, 1.5, len(case['logit_lengths'])), tf.float32)
  if jit_compile:
    kl_and_grads = tf.function(kl_and_grads, jit_compile=True)
  return kl_and_grads(
      tf.constant(case['student_logits'], tf.float32),
      tf.constant(case['teacher_logits'], tf.float32)), upstream.numpy()


class SoftTargetKlTest(tf.test.TestCase):

  def _check_against_reference(self, kind, seed, num_cases, **case_options):
    rng = np.random.default_rng(seed)
    for case_index in range(num_cases):
      case = _random_case(rng, **case_options)
      temperature = [1.0, 2.0, 0.5][case_index % 3]
      scaled = case_index % 2 == 0
      (kl, student_grad, teacher_grad), upstream = _tf_kl(
          kind, case, temperature, scaled)
      scale = temperature**2 if scaled else 1.0
      expected_kl, expected_grad = _np_kl_and_grad(
          kind, case['student_logits'], case['teacher_logits'],
          case['logit_lengths'], case['label_lengths'], temperature, scale,
          labels=case['labels'])
      with self.subTest(case=case_index):
        self.assertAllClose(kl, expected_kl, rtol=_RTOL, atol=_ATOL)
        self.assertAllClose(
            student_grad, expected_grad * upstream[:, None, None, None],
            rtol=_RTOL, atol=_ATOL)
        self.assertIsNone(teacher_grad)

  def test_full_vocab_kl_matches_float64_reference(self):
    self._check_against_reference('full', seed=0, num_cases=6)

  def test_three_class_kl_matches_float64_reference(self):
    self._check_against_reference('three_class', seed=1, num_cases=6)

  def test_kls_match_float64_reference_past_one_block_of_the_vocabulary(self):
    # V > 32: the blocked sums of vocab_reductions, V % 32 != 0 included.
    for kind in ('full', 'three_class'):
      with self.subTest(kind=kind):
        self._check_against_reference(kind, seed=3, num_cases=3,
                                      max_frames=6, max_labels=3,
                                      min_vocab=33, max_vocab=100)

  def test_three_class_with_two_symbol_vocabulary_has_no_rest_class(self):
    rng = np.random.default_rng(2)
    case = _random_case(rng, max_vocab=2)
    (kl, student_grad, _), upstream = _tf_kl('three_class', case, 1.0, True)
    expected_kl, expected_grad = _np_kl_and_grad(
        'three_class', case['student_logits'], case['teacher_logits'],
        case['logit_lengths'], case['label_lengths'], 1.0, 1.0,
        labels=case['labels'])
    self.assertAllClose(kl, expected_kl, rtol=_RTOL, atol=_ATOL)
    self.assertAllClose(student_grad,
                        expected_grad * upstream[:, None, None, None],
                        rtol=_RTOL, atol=_ATOL)

  def test_three_class_label_equal_to_blank_counts_as_no_label(self):
    case = _random_case(np.random.default_rng(7), max_labels=4, max_vocab=6,
                        min_vocab=3)
    case['label_lengths'][:] = case['labels'].shape[1]
    case['labels'][:, ::2] = 0  # blank
    (kl, student_grad, _), upstream = _tf_kl('three_class', case, 1.0, True)
    expected_kl, expected_grad = _np_kl_and_grad(
        'three_class', case['student_logits'], case['teacher_logits'],
        case['logit_lengths'], case['label_lengths'], 1.0, 1.0,
        labels=case['labels'])
    self.assertAllClose(kl, expected_kl, rtol=_RTOL, atol=_ATOL)
    self.assertAllClose(student_grad,
                        expected_grad * upstream[:, None, None, None],
                        rtol=_RTOL, atol=_ATOL)

  def test_low_precision_logits_get_gradient_in_their_dtype(self):
    case = _random_case(np.random.default_rng(8))
    student_logits = tf.constant(case['student_logits'], tf.bfloat16)
    teacher_logits = tf.constant(case['teacher_logits'], tf.bfloat16)
    with tf.GradientTape() as tape:
      tape.watch(student_logits)
      kl = distillation_kl.full_vocab_kl(student_logits, teacher_logits,
                                         case['logit_lengths'],
                                         case['label_lengths'])
    grad = tape.gradient(kl, student_logits)
    self.assertEqual(kl.dtype, tf.float32)
    self.assertEqual(grad.dtype, tf.bfloat16)
    # The float32 math runs on the bfloat16-rounded values.
    expected_kl, expected_grad = _np_kl_and_grad(
        'full', tf.cast(student_logits, tf.float64).numpy(),
        tf.cast(teacher_logits, tf.float64).numpy(), case['logit_lengths'],
        case['label_lengths'], 1.0, 1.0)
    self.assertAllClose(kl, expected_kl, rtol=_RTOL, atol=_ATOL)
    self.assertAllClose(tf.cast(grad, tf.float64), expected_grad, rtol=1e-2,
                        atol=1e-2)

  def test_padded_nodes_get_zero_gradient_even_with_nan_padding(self):
    rng = np.random.default_rng(3)
    shape = (2, 4, 4, 5)
    case = dict(
        student_logits=rng.normal(size=shape),
        teacher_logits=rng.normal(size=shape),
        labels=rng.integers(1, 5, size=(2, 3)),
        logit_lengths=np.array([4, 2]),
        label_lengths=np.array([1, 3]))
    mask = distillation_kl.lattice_node_mask(
        case['logit_lengths'], case['label_lengths'], 4, 4).numpy()
    self.assertEqual(mask.sum(), 4 * 2 + 2 * 4)
    case['teacher_logits'][~mask] = np.nan
    case['student_logits'][~mask] = np.inf
    for kind in ('full', 'three_class'):
      (kl, student_grad, _), _ = _tf_kl(kind, case, 1.0, True)
      self.assertTrue(np.all(np.isfinite(kl)))
      self.assertAllEqual(student_grad.numpy()[~mask],
                          np.zeros((int((~mask).sum()), 5)))
      self.assertTrue(np.all(np.isfinite(student_grad)))

  def test_identical_models_give_zero_kl_and_gradient(self):
    rng = np.random.default_rng(4)
    case = _random_case(rng)
    case['teacher_logits'] = case['student_logits'].copy()
    for kind in ('full', 'three_class'):
      (kl, student_grad, _), _ = _tf_kl(kind, case, 2.0, True)
      self.assertAllClose(kl, np.zeros_like(kl), atol=1e-5)
      self.assertAllClose(student_grad, np.zeros_like(student_grad),
                          atol=1e-6)

  def test_eager_matches_xla(self):
    rng = np.random.default_rng(5)
    case = _random_case(rng)
    for kind in ('full', 'three_class'):
      (eager_kl, eager_grad, _), _ = _tf_kl(kind, case, 1.5, False,
                                            jit_compile=False)
      (xla_kl, xla_grad, _), _ = _tf_kl(kind, case, 1.5, False)
      self.assertAllClose(eager_kl, xla_kl, rtol=1e-6, atol=1e-6)
      self.assertAllClose(eager_grad, xla_grad, rtol=1e-6, atol=1e-6)

  def test_rejects_non_positive_temperature(self):
    case = _random_case(np.random.default_rng(6))
    with self.assertRaisesRegex(ValueError, 'temperature'):
      _tf_kl('full', case, 0.0, True, jit_compile=False)


def _np_map_teacher(log_probs, lengths, ratio, right_shift, num_student_frames):
  """float64 reference of the frame mapping, one student frame at a time."""
  batch_size = log_probs.shape[0]
  mapped = np.zeros((batch_size, num_student_frames) + log_probs.shape[2:])
  for b in range(batch_size):
    num_groups = max(-(-lengths[b] // ratio), 1)
    for t in range(num_student_frames):
      group = min(max(t - right_shift, 0), num_groups - 1)
      frames = [group * ratio + k for k in range(ratio)
                if k == 0 or group * ratio + k < lengths[b]]
      mapped[b, t] = np.log(np.exp(log_probs[b, frames]).mean(axis=0))
  return mapped


class FrameMappingTest(tf.test.TestCase):

  def test_matches_reference_sums_to_one_and_shifts(self):
    rng = np.random.default_rng(10)
    for ratio, right_shift in [(1, 0), (2, 0), (3, 2), (2, 5), (1, 3)]:
      batch_size, teacher_frames, rows, vocab = 3, 13, 3, 6
      teacher_log_probs = _np_log_softmax(
          rng.normal(size=(batch_size, teacher_frames, rows, vocab)))
      lengths = np.array([teacher_frames, 7, 1])
      student_frames = -(-teacher_frames // ratio) + 1
      mapped, mapped_lengths = (
          distillation_frames.map_teacher_log_probs_to_student_frames(
              tf.constant(teacher_log_probs, tf.float32), lengths, ratio,
              right_shift, num_student_frames=student_frames))
      with self.subTest(ratio=ratio, right_shift=right_shift):
        self.assertEqual(mapped.shape,
                         (batch_size, student_frames, rows, vocab))
        self.assertAllClose(
            mapped, _np_map_teacher(teacher_log_probs, lengths, ratio,
                                    right_shift, student_frames),
            rtol=1e-5, atol=1e-5)
        self.assertAllClose(
            tf.reduce_sum(tf.exp(mapped), -1),
            np.ones((batch_size, student_frames, rows)), atol=1e-5)
        self.assertAllEqual(
            mapped_lengths,
            np.minimum(-(-lengths // ratio) + right_shift, student_frames))
        # The shift: the first right_shift frames copy the first group, and
        # frame right_shift + g holds group g.
        for t in range(min(right_shift, student_frames)):
          self.assertAllEqual(mapped[:, t], mapped[:, right_shift])
        if ratio == 1:
          shifted_frames = min(student_frames - right_shift, teacher_frames)
          self.assertAllClose(
              mapped[0, right_shift:right_shift + shifted_frames],
              teacher_log_probs[0, :shifted_frames], atol=1e-6)

  def test_default_number_of_student_frames(self):
    mapped, _ = distillation_frames.map_teacher_log_probs_to_student_frames(
        tf.zeros([2, 9, 2, 3]), [9, 4], ratio=4, right_shift=1)
    self.assertEqual(mapped.shape[1], 3 + 1)

  def test_rejects_invalid_ratio_and_shift(self):
    log_probs = tf.zeros([1, 4, 1, 2])
    for ratio, right_shift in [(0, 0), (1.5, 0), (-2, 0), (2, -1), (2, 0.5)]:
      with self.subTest(ratio=ratio, right_shift=right_shift):
        with self.assertRaisesRegex(ValueError, 'teacher'):
          distillation_frames.map_teacher_log_probs_to_student_frames(
              log_probs, [4], ratio, right_shift)


class _TinyJoint(tf.Module):
  """tanh(enc W_e + pred W_p) W_o + b: a joint network with tf.Variables."""

  def __init__(self, rng, encoder_dim, pred_dim, hidden_dim, vocab_size):
    super().__init__()

    def variable(*shape):
      return tf.Variable(rng.normal(scale=0.7, size=shape), dtype=tf.float32)

    self.encoder_projection = variable(encoder_dim, hidden_dim)
    self.pred_projection = variable(pred_dim, hidden_dim)
    self.output_projection = variable(hidden_dim, vocab_size)
    self.output_bias = variable(vocab_size)

  def __call__(self, encoder_out, pred_out):
    """[B, T, 1, D] and [B, 1, U + 1, P] -> [B, T, U + 1, V]."""
    hidden = tf.tanh(
        tf.einsum('btxd,dh->btxh', encoder_out, self.encoder_projection) +
        tf.einsum('bxup,ph->bxuh', pred_out, self.pred_projection))
    return tf.einsum('btuh,hv->btuv', hidden,
                     self.output_projection) + self.output_bias


def _joint_case(rng, ratio=1):
  batch_size, frames, labels, vocab = 3, 11, 4, 7
  student = _TinyJoint(rng, 5, 4, 6, vocab)
  teacher = _TinyJoint(rng, 3, 2, 5, vocab)
  teacher_frames = frames * ratio - (ratio - 1)
  return dict(
      student=student,
      teacher=teacher,
      student_encoder_out=tf.constant(rng.normal(size=(batch_size, frames, 5)),
                                      tf.float32),
      student_pred_out=tf.constant(
          rng.normal(size=(batch_size, labels + 1, 4)), tf.float32),
      teacher_encoder_out=tf.constant(
          rng.normal(size=(batch_size, teacher_frames, 3)), tf.float32),
      teacher_pred_out=tf.constant(
          rng.normal(size=(batch_size, labels + 1, 2)), tf.float32),
      labels=tf.constant(rng.integers(1, vocab, size=(batch_size, labels))),
      logit_lengths=tf.constant([frames, 6, 1]),
      teacher_lengths=tf.constant([teacher_frames, 6 * ratio - 1, 1]),
      label_lengths=tf.constant([2, labels, 0]),
      vocab=vocab)


class FusedKlTest(tf.test.TestCase):

  def _unfused_and_fused(self, case, kind, ratio, right_shift, chunk,
                         jit_compile):
    temperature = 1.7
    student, teacher = case['student'], case['teacher']
    student_frames = case['student_encoder_out'].shape[1]
    watched = [case['student_encoder_out'], case['student_pred_out']]
    trainable = list(student.trainable_variables) + list(
        teacher.trainable_variables)

    def kl_from_log_probs(student_logits, teacher_log_probs):
      if kind == 'full':
        return distillation_kl.full_vocab_kl(
            student_logits, None, case['logit_lengths'],
            case['label_lengths'], temperature=temperature,
            teacher_log_probs=teacher_log_probs)
      return distillation_kl.three_class_kl(
          student_logits, None, case['labels'], case['logit_lengths'],
          case['label_lengths'], temperature=temperature,
          teacher_log_probs=teacher_log_probs)

    def unfused():
      with tf.GradientTape() as tape:
        tape.watch(watched)
        teacher_log_probs, _ = (
            distillation_frames.map_teacher_log_probs_to_student_frames(
                distillation_kl.tempered_log_probs(
                    teacher(case['teacher_encoder_out'][:, :, None],
                            case['teacher_pred_out'][:, None]), temperature),
                case['teacher_lengths'], ratio, right_shift,
                num_student_frames=student_frames))
        kl = kl_from_log_probs(
            student(case['student_encoder_out'][:, :, None],
                    case['student_pred_out'][:, None]),
            teacher_log_probs)
        total = tf.reduce_sum(kl * [1.0, 2.0, 3.0])
      return kl, tape.gradient(total, watched + trainable)

    def fused():
      joint_inputs = dict(
          student_joint_fn=student, teacher_joint_fn=teacher,
          teacher_encoder_out=case['teacher_encoder_out'],
          teacher_pred_out=case['teacher_pred_out'],
          logit_lengths=case['logit_lengths'],
          label_lengths=case['label_lengths'], temperature=temperature,
          time_chunk_size=chunk, teacher_lengths=case['teacher_lengths'],
          teacher_frame_ratio=ratio, teacher_right_shift=right_shift)
      with tf.GradientTape() as tape:
        tape.watch(watched)
        if kind == 'full':
          kl = distillation_fused.full_vocab_kl_from_joint(
              case['student_encoder_out'], case['student_pred_out'],
              **joint_inputs)
        else:
          kl = distillation_fused.three_class_kl_from_joint(
              case['student_encoder_out'], case['student_pred_out'],
              labels=case['labels'], **joint_inputs)
        total = tf.reduce_sum(kl * [1.0, 2.0, 3.0])
      return kl, tape.gradient(total, watched + trainable)

    if jit_compile:
      fused = tf.function(fused, jit_compile=True)
    return unfused(), fused()

  def _check(self, kind, ratio, right_shift, chunk, jit_compile, seed):
    case = _joint_case(np.random.default_rng(seed), ratio)
    (kl, grads), (fused_kl, fused_grads) = self._unfused_and_fused(
        case, kind, ratio, right_shift, chunk, jit_compile)
    self.assertGreater(float(tf.reduce_min(kl[:2])), 0.0)
    self.assertAllClose(fused_kl, kl, rtol=1e-5, atol=1e-5)
    num_student_grads = 2 + len(case['student'].trainable_variables)
    for grad, fused_grad in zip(grads[:num_student_grads],
                                fused_grads[:num_student_grads]):
      self.assertIsNotNone(fused_grad)
      self.assertAllClose(fused_grad, grad, rtol=1e-5, atol=1e-5)
    for grad, fused_grad in zip(grads[num_student_grads:],
                                fused_grads[num_student_grads:]):
      self.assertIsNone(grad)
      self.assertIsNone(fused_grad)

  def test_full_vocab_fused_matches_unfused(self):
    self._check('full', ratio=1, right_shift=0, chunk=4, jit_compile=False,
                seed=20)

  def test_three_class_fused_matches_unfused(self):
    self._check('three_class', ratio=1, right_shift=0, chunk=3,
                jit_compile=False, seed=21)

  def test_fused_with_frame_ratio_and_shift_matches_unfused_under_xla(self):
    self._check('full', ratio=2, right_shift=2, chunk=4, jit_compile=True,
                seed=22)
    self._check('three_class', ratio=3, right_shift=1, chunk=16,
                jit_compile=True, seed=23)


class DistillationLossTest(tf.test.TestCase):

  def test_total_is_rnnt_plus_alpha_kl_and_only_student_gets_gradient(self):
    rng = np.random.default_rng(30)
    case = _random_case(rng, max_vocab=9, min_vocab=3)
    student_logits = tf.constant(case['student_logits'], tf.float32)
    teacher_logits = tf.constant(case['teacher_logits'], tf.float32)
    lengths = (case['labels'], case['logit_lengths'], case['label_lengths'])
    alpha = 0.3
    for kind in distillation.KINDS:
      with tf.GradientTape(persistent=True) as tape:
        tape.watch([student_logits, teacher_logits])
        loss = distillation.distillation_loss(
            student_logits, teacher_logits, *lengths, kind=kind,
            alpha=alpha, temperature=2.0)
        total = tf.reduce_sum(loss.total)
        rnnt_only = tf.reduce_sum(distillation.rnnt.rnnt_loss(
            student_logits, *lengths))
      expected_kl, expected_kl_grad = _np_kl_and_grad(
          kind, case['student_logits'], case['teacher_logits'],
          case['logit_lengths'], case['label_lengths'], 2.0, 4.0,
          labels=case['labels'])
      with self.subTest(kind=kind):
        self.assertAllClose(loss.kl, expected_kl, rtol=_RTOL, atol=_ATOL)
        self.assertAllClose(loss.total, loss.rnnt + alpha * loss.kl)
        self.assertAllClose(
            tape.gradient(total, student_logits),
            tape.gradient(rnnt_only, student_logits) +
            alpha * expected_kl_grad, rtol=_RTOL, atol=_ATOL)
        self.assertIsNone(tape.gradient(total, teacher_logits))

  def test_from_joint_matches_full_logits_with_frame_ratio(self):
    case = _joint_case(np.random.default_rng(31), ratio=2)
    student, teacher = case['student'], case['teacher']
    options = dict(
        labels=case['labels'], logit_lengths=case['logit_lengths'],
        label_lengths=case['label_lengths'], kind='three_class', alpha=0.05,
        temperature=1.5, teacher_lengths=case['teacher_lengths'],
        teacher_frame_ratio=2, teacher_right_shift=1)
    watched = [case['student_encoder_out']] + list(student.trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(watched)
      loss = distillation.distillation_loss(
          student(case['student_encoder_out'][:, :, None],
                  case['student_pred_out'][:, None]),
          teacher(case['teacher_encoder_out'][:, :, None],
                  case['teacher_pred_out'][:, None]), **options)
      fused_loss = distillation.distillation_loss_from_joint(
          case['student_encoder_out'], case['student_pred_out'], student,
          case['teacher_encoder_out'], case['teacher_pred_out'], teacher,
          time_chunk_size=4, **options)
      total = tf.reduce_sum(loss.total * [1.0, 2.0, 3.0])
      fused_total = tf.reduce_sum(fused_loss.total * [1.0, 2.0, 3.0])
    for part in loss._fields:
      self.assertAllClose(getattr(fused_loss, part), getattr(loss, part),
                          rtol=1e-5, atol=1e-5)
    for grad, fused_grad in zip(tape.gradient(total, watched),
                                tape.gradient(fused_total, watched)):
      self.assertIsNotNone(grad)
      self.assertAllClose(fused_grad, grad, rtol=1e-5, atol=1e-5)

  def test_stored_targets_of_another_frame_rate_fail_the_step(self):
    case = _joint_case(np.random.default_rng(5))
    rng = np.random.default_rng(6)
    frames, label_nodes = 2 * 11, 5  # Stored at twice the student's rate.
    log_probs = np.log(rng.dirichlet(np.ones(case['vocab']),
                                     size=(3, frames, label_nodes)))
    targets = sparse_kl.top_k_targets(tf.constant(log_probs, tf.float32), 3)

    def loss(target_frames, start_offset_frames=None):
      return distillation.stored_target_loss(
          case['student_encoder_out'], case['student_pred_out'],
          case['student'], targets, tf.constant(target_frames),
          case['labels'], case['logit_lengths'], case['label_lengths'],
          start_offset_frames=start_offset_frames)

    logit_lengths = case['logit_lengths'].numpy()
    within_tolerance = logit_lengths + [
        distillation.STORED_FRAME_TOLERANCE, -1, 0]
    self.assertTrue(np.all(np.isfinite(loss(within_tolerance).total)))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'frame_ratio'):
      loss(2 * logit_lengths - 1)
    # Frames of the start offset's zeros are the student's, not the target's.
    offset = np.array([4, 0, 0], np.int32)
    self.assertTrue(np.all(np.isfinite(
        loss(logit_lengths - offset, tf.constant(offset)).total)))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'frame_ratio'):
      loss(logit_lengths, tf.constant(offset))

  def test_rejects_unknown_kind_and_negative_alpha(self):
    logits = tf.zeros([1, 2, 2, 3])
    for options in [dict(kind='top_k'), dict(alpha=-1.0)]:
      with self.assertRaises(ValueError):
        distillation.distillation_loss(logits, logits, [[1]], [2], [1],
                                       **options)


if __name__ == '__main__':
  tf.test.main()
