"""Tests of asr_kd.losses.ctc against brute-force path enumeration (float64)."""

import itertools

import numpy as np
import tensorflow as tf

from asr_kd.losses import ctc


def _collapse(path, blank):
  """CTC's many-to-one map: merge repeats, then drop blanks."""
  merged = [symbol for index, symbol in enumerate(path)
            if index == 0 or symbol != path[index - 1]]
  return tuple(symbol for symbol in merged if symbol != blank)


def reference_ctc(logits, labels, blank):
  """-log sum over every frame-level path that collapses to `labels`."""
  logits = np.asarray(logits, np.float64)
  log_probs = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
  frames, vocab = log_probs.shape
  total = -np.inf
  for path in itertools.product(range(vocab), repeat=frames):
    if _collapse(path, blank) == tuple(labels):
      total = np.logaddexp(total, log_probs[np.arange(frames), path].sum())
  return -total


def _loss_and_gradient(logits, labels, logit_lengths, label_lengths,
                       sparse_kernel, blank=0):
  """ctc_loss [B] and the gradient of its sum w.r.t. logits, as NumPy."""
  logits_var = tf.constant(logits)
  with tf.GradientTape() as tape:
    tape.watch(logits_var)
    loss = ctc.ctc_loss(logits_var, labels, logit_lengths, label_lengths,
                        blank=blank, sparse_kernel=sparse_kernel)
    total = tf.reduce_sum(loss)
  return loss.numpy(), tape.gradient(total, logits_var).numpy()


class CtcLossTest(tf.test.TestCase):

  def _random_case(self, seed, blank=0):
    rng = np.random.default_rng(seed)
    batch, max_t, vocab, max_u = 3, 5, 3, 3
    logits = rng.standard_normal((batch, max_t, vocab)).astype(np.float32)
    logit_lengths = np.array([5, 4, 3], np.int32)
    label_lengths = np.array([3, 2, 1], np.int32)
    labels = np.zeros((batch, max_u), np.int32)
    non_blank = [v for v in range(vocab) if v != blank]
    for b in range(batch):
      labels[b, :label_lengths[b]] = rng.choice(non_blank, label_lengths[b])
    labels[0, :2] = non_blank[0]  # A repeat: needs a blank in between.
    return logits, labels, logit_lengths, label_lengths

  def test_loss_and_gradient_match_enumeration(self):
    for seed, blank, sparse_kernel in ((0, 0, False), (1, 0, False),
                                       (2, 2, False), (5, 0, True),
                                       (6, 0, True), (7, 2, True)):
      logits, labels, logit_lengths, label_lengths = self._random_case(
          seed, blank)
      loss, grad = _loss_and_gradient(logits, labels, logit_lengths,
                                      label_lengths, sparse_kernel, blank)
      for b in range(len(logits)):
        frames, num_labels = logit_lengths[b], label_lengths[b]

        def reference(x, b=b, frames=frames, num_labels=num_labels):
          return reference_ctc(x[:frames], labels[b, :num_labels], blank)

        self.assertAllClose(loss[b], reference(logits[b]), atol=1e-5)
        # Central differences of the float64 reference.
        numeric = np.zeros_like(logits[b], np.float64)
        eps = 1e-5
        for index in np.ndindex(*logits[b].shape):
          plus = logits[b].astype(np.float64)
          minus = plus.copy()
          plus[index] += eps
          minus[index] -= eps
          numeric[index] = (reference(plus) - reference(minus)) / (2 * eps)
        self.assertAllClose(grad[b], numeric, atol=1e-4)
        self.assertAllEqual(grad[b, frames:], np.zeros_like(grad[b, frames:]))

  def test_feasibility_counts_repeats_within_length(self):
    labels = [[1, 1, 2, 2], [1, 2, 1, 0], [3, 3, 0, 0]]
    # Needed frames: 4 + 2 repeats; 3 + 0; the padding repeat is ignored.
    self.assertAllEqual(
        ctc.ctc_feasible(labels, [6, 3, 1], [4, 3, 1]), [True, True, True])
    self.assertAllEqual(
        ctc.ctc_feasible(labels, [5, 2, 2], [4, 3, 2]), [False, False, False])

  def test_infeasible_utterance_gets_zero_loss_and_gradient(self):
    logits, labels, logit_lengths, label_lengths = self._random_case(3)
    labels[1, :2] = [1, 1]
    logit_lengths[1] = 2  # [1, 1] needs 3 frames.
    labels[2, 1:] = 2  # Padding ids past the length must not count.
    for sparse_kernel in (False, True):
      loss, grad = _loss_and_gradient(logits, labels, logit_lengths,
                                      label_lengths, sparse_kernel)
      self.assertEqual(float(loss[1]), 0.0)
      self.assertAllEqual(grad[1], np.zeros_like(grad[1]))
      self.assertTrue(np.all(np.isfinite(grad)))
      self.assertAllClose(
          loss[0], reference_ctc(logits[0], labels[0, :3], 0), atol=1e-5)
      self.assertAllClose(
          loss[2], reference_ctc(logits[2][:3], labels[2, :1], 0), atol=1e-5)

  def test_empty_transcript_gets_the_all_blank_path_in_both_kernels(self):
    logits, labels, logit_lengths, label_lengths = self._random_case(8)
    label_lengths[1] = 0
    results = []
    for sparse_kernel in (False, True):
      loss, grad = _loss_and_gradient(logits, labels, logit_lengths,
                                      label_lengths, sparse_kernel)
      results.append((loss, grad))
      self.assertAllClose(
          loss[1], reference_ctc(logits[1][:logit_lengths[1]], (), 0),
          atol=1e-5)
    self.assertAllClose(results[0][0], results[1][0], atol=1e-5)
    self.assertAllClose(results[0][1], results[1][1], atol=1e-5)

  def test_bfloat16_logits_give_float32_loss(self):
    logits, labels, logit_lengths, label_lengths = self._random_case(4)
    loss = ctc.ctc_loss(tf.cast(logits, tf.bfloat16), labels, logit_lengths,
                        label_lengths)
    self.assertEqual(loss.dtype, tf.float32)
    self.assertTrue(np.all(np.isfinite(loss.numpy())))


if __name__ == '__main__':
  tf.test.main()
