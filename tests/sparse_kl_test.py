"""Tests for asr_kd.losses.sparse_kl against float64 NumPy references."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from asr_kd.losses import chunked_joint
from asr_kd.losses import distillation_kl
from asr_kd.losses import sparse_kl


def _log_softmax(x):
  x = x - x.max(axis=-1, keepdims=True)
  return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _numpy_top_k(teacher_log_probs, k):
  """(top log-probs, ids, rest log-prob), float64, ids by descending prob."""
  ids = np.argsort(-teacher_log_probs, axis=-1, kind='stable')[..., :k]
  top = np.take_along_axis(teacher_log_probs, ids, axis=-1)
  rest_mass = np.exp(teacher_log_probs).sum(-1) - np.exp(top).sum(-1)
  with np.errstate(divide='ignore'):
    rest = np.where(rest_mass > 0, np.log(np.maximum(rest_mass, 1e-300)),
                    -np.inf)
  return top, ids, rest


def _numpy_kl(student_logits, top, ids, rest, mask, temperature, scale):
  """[B] KL over {top k, rest} per valid node, float64."""
  log_q = _log_softmax(student_logits / temperature)
  q_top = np.take_along_axis(log_q, ids, axis=-1)
  q = np.exp(log_q)
  q_rest = np.log(np.maximum(q.sum(-1) - np.exp(q_top).sum(-1), 1e-300))
  p_top = np.exp(top)
  node = (p_top * (top - q_top)).sum(-1)
  p_rest = np.exp(rest)
  with np.errstate(invalid='ignore'):
    node = node + np.where(p_rest > 0, p_rest * (rest - q_rest), 0.0)
  return (np.where(mask, node, 0.0) * scale).sum(axis=(1, 2))


def _mask(logit_lengths, label_lengths, t, u1):
  return ((np.arange(t)[None, :, None] < logit_lengths[:, None, None]) &
          (np.arange(u1)[None, None, :] <= label_lengths[:, None, None]))


class SparseKlTest(tf.test.TestCase, parameterized.TestCase):

  def _case(self, seed, b=2, t=4, u=2, v=7, sharp=3.0):
    rng = np.random.default_rng(seed)
    student = rng.normal(size=(b, t, u + 1, v))
    teacher = rng.normal(size=(b, t, u + 1, v)) * sharp
    logit_lengths = np.array([t, t - 1][:b])
    label_lengths = np.array([u, u - 1][:b])
    return student, teacher, logit_lengths, label_lengths

  def test_top_k_targets_match_numpy(self):
    _, teacher, _, _ = self._case(0)
    log_probs = _log_softmax(teacher)
    targets = sparse_kl.top_k_targets(log_probs.astype(np.float32), 3)
    top, ids, rest = _numpy_top_k(log_probs, 3)
    self.assertAllEqual(targets.ids, ids)
    self.assertAllClose(targets.log_probs, top, atol=1e-5)
    self.assertAllClose(targets.rest_log_prob, rest, atol=1e-4)
    everything = sparse_kl.top_k_targets(log_probs.astype(np.float32), 7)
    self.assertAllEqual(everything.rest_log_prob,
                        np.full(log_probs.shape[:-1], -np.inf))

  # V = 45: past one block of vocab_reductions' sums.
  @parameterized.parameters((1, 1.0, True, 7), (3, 2.0, True, 7),
                            (5, 0.5, False, 7), (8, 1.0, True, 45))
  def test_kl_and_gradient_match_float64_numpy(self, k, temperature,
                                               squared, vocab_size):
    student, teacher, logit_lengths, label_lengths = self._case(
        k, v=vocab_size)
    teacher_log_probs = _log_softmax(teacher / temperature)
    top, ids, rest = _numpy_top_k(teacher_log_probs, k)
    targets = sparse_kl.TopKTargets(tf.constant(top, tf.float32),
                                    tf.constant(ids, tf.int32),
                                    tf.constant(rest, tf.float32))
    scale = temperature**2 if squared else 1.0
    mask = _mask(logit_lengths, label_lengths, *student.shape[1:3])
    logits = tf.constant(student, tf.float32)
    upstream = np.array([0.7, -1.3])
    with tf.GradientTape() as tape:
      tape.watch(logits)
      kl = sparse_kl.top_k_kl(logits, targets, logit_lengths, label_lengths,
                              temperature, squared)
      loss = tf.reduce_sum(kl * upstream)
    gradient = tape.gradient(loss, logits).numpy()
    expected = _numpy_kl(student, top, ids, rest, mask, temperature, scale)
    self.assertAllClose(kl, expected, rtol=1e-5, atol=1e-5)
    # Central differences of the float64 NumPy loss.
    numeric = np.zeros_like(student)
    step = 1e-6
    for index in np.ndindex(*student.shape):
      plus, minus = student.copy(), student.copy()
      plus[index] += step
      minus[index] -= step
      numeric[index] = (
          (_numpy_kl(plus, top, ids, rest, mask, temperature, scale) -
           _numpy_kl(minus, top, ids, rest, mask, temperature, scale)) @
          upstream) / (2 * step)
    self.assertAllClose(gradient, numeric, atol=2e-5)
    self.assertAllEqual(gradient[~mask], np.zeros_like(gradient[~mask]))

  def test_all_ids_equal_the_full_vocabulary_kl(self):
    student, teacher, logit_lengths, label_lengths = self._case(7)
    log_probs = tf.constant(_log_softmax(teacher / 2.0), tf.float32)
    logits = tf.constant(student, tf.float32)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(logits)
      sparse = sparse_kl.top_k_kl(
          logits, sparse_kl.top_k_targets(log_probs, 7), logit_lengths,
          label_lengths, temperature=2.0)
      full = distillation_kl.full_vocab_kl(
          logits, None, logit_lengths, label_lengths, temperature=2.0,
          teacher_log_probs=log_probs)
    self.assertAllClose(sparse, full, atol=1e-5)
    self.assertAllClose(tape.gradient(sparse, logits),
                        tape.gradient(full, logits), atol=1e-6)

  def test_float16_storage_is_renormalized(self):
    student, teacher, logit_lengths, label_lengths = self._case(9)
    targets = sparse_kl.top_k_targets(
        tf.constant(_log_softmax(teacher), tf.float32), 3)
    stored = sparse_kl.TopKTargets(
        tf.cast(targets.log_probs, tf.float16), targets.ids,
        tf.cast(targets.rest_log_prob, tf.float16))
    logits = tf.constant(student, tf.float32)
    exact = sparse_kl.top_k_kl(logits, targets, logit_lengths, label_lengths)
    rounded = sparse_kl.top_k_kl(logits, stored, logit_lengths,
                                 label_lengths)
    self.assertAllClose(rounded, exact, rtol=2e-3)

  def test_garbage_in_padded_nodes_stays_out(self):
    student, teacher, logit_lengths, label_lengths = self._case(4)
    targets = sparse_kl.top_k_targets(
        tf.constant(_log_softmax(teacher), tf.float32), 2)
    mask = _mask(logit_lengths, label_lengths, *student.shape[1:3])
    student[~mask] = np.nan
    logits = tf.constant(student, tf.float32)
    with tf.GradientTape() as tape:
      tape.watch(logits)
      kl = sparse_kl.top_k_kl(logits, targets, logit_lengths, label_lengths)
    gradient = tape.gradient(kl, logits).numpy()
    self.assertTrue(np.all(np.isfinite(kl)))
    self.assertTrue(np.all(np.isfinite(gradient)))

  def test_chunked_term_equals_the_kl_on_full_logits(self):
    rng = np.random.default_rng(11)
    b, t, u, v, dim, k = 2, 7, 3, 9, 5, 3
    encoder_out = tf.constant(rng.normal(size=(b, t, dim)), tf.float32)
    pred_out = tf.constant(rng.normal(size=(b, u + 1, dim)), tf.float32)
    weights = tf.Variable(rng.normal(size=(dim, v)), dtype=tf.float32)

    def joint_fn(encoder, pred):
      return tf.tanh(encoder + pred) @ weights

    stored = sparse_kl.top_k_targets(tf.constant(_log_softmax(
        rng.normal(size=(b, 5, u + 1, v)) * 3), tf.float32), k)
    target_frames = tf.constant([5, 4])
    logit_lengths, label_lengths = tf.constant([7, 6]), tf.constant([3, 2])
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([encoder_out, pred_out])
      reference = sparse_kl.top_k_kl(
          joint_fn(encoder_out[:, :, None], pred_out[:, None]),
          sparse_kl.map_stored_targets(stored, target_frames, tf.range(t),
                                       1),
          logit_lengths, label_lengths, temperature=1.5)
      term = sparse_kl.ChunkedTopKTerm(
          stored, target_frames, logit_lengths, label_lengths,
          temperature=1.5, right_shift=1)
      chunked = chunked_joint.fused_losses(encoder_out, pred_out, joint_fn,
                                           [term], time_chunk_size=3)[0]
    self.assertAllClose(chunked, reference, atol=1e-5)
    for source in (encoder_out, pred_out, weights):
      self.assertAllClose(tape.gradient(chunked, source),
                          tape.gradient(reference, source), atol=1e-5)

  def test_map_stored_targets_shifts_and_clips_frames(self):
    rng = np.random.default_rng(2)
    log_probs = rng.normal(size=(2, 5, 3, 2)).astype(np.float32)
    ids = rng.integers(0, 9, size=(2, 5, 3, 2)).astype(np.int32)
    rest = rng.normal(size=(2, 5, 3)).astype(np.float32)
    targets = sparse_kl.TopKTargets(log_probs, ids, rest)
    frames = tf.range(2, 8)
    mapped = sparse_kl.map_stored_targets(targets, [5, 3], frames, 2)
    for row, length in enumerate([5, 3]):
      sources = np.clip(np.arange(2, 8) - 2, 0, length - 1)
      self.assertAllEqual(mapped.ids[row], ids[row, sources])
      self.assertAllEqual(mapped.log_probs[row], log_probs[row, sources])
      self.assertAllEqual(mapped.rest_log_prob[row], rest[row, sources])
    # A shift per example (the right shift plus a start offset's frames).
    mapped = sparse_kl.map_stored_targets(targets, [5, 3], frames, [0, 3])
    for row, (length, shift) in enumerate([(5, 0), (3, 3)]):
      sources = np.clip(np.arange(2, 8) - shift, 0, length - 1)
      self.assertAllEqual(mapped.ids[row], ids[row, sources])


if __name__ == '__main__':
  tf.test.main()
