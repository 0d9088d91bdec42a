"""Tests of asr_kd.losses.prediction_lm against a float64 NumPy reference."""

import numpy as np
import tensorflow as tf

from asr_kd.losses import prediction_lm


def reference_next_label_cross_entropy(logits, labels, label_lengths):
  """-sum_u log softmax(logits[b, u])[labels[b, u]] for u < U_b, float64."""
  logits = np.asarray(logits, np.float64)
  totals = []
  for b, length in enumerate(label_lengths):
    total = 0.0
    for u in range(length):
      row = logits[b, u]
      total -= row[labels[b, u]] - np.logaddexp.reduce(row)
    totals.append(total)
  return np.array(totals)


class NextLabelCrossEntropyTest(tf.test.TestCase):

  def test_matches_reference_and_ignores_padding(self):
    for seed in range(4):
      rng = np.random.default_rng(seed)
      batch, max_u, vocab = 3, 6, 7
      logits = rng.standard_normal((batch, max_u + 1, vocab)) * 3
      label_lengths = np.array([6, 2, 0], np.int32)
      labels = rng.integers(1, vocab, (batch, max_u)).astype(np.int32)
      loss = prediction_lm.next_label_cross_entropy(
          tf.constant(logits, tf.float32), labels, label_lengths)
      self.assertEqual(loss.dtype, tf.float32)
      self.assertAllClose(
          loss, reference_next_label_cross_entropy(logits, labels,
                                                   label_lengths),
          rtol=1e-5, atol=1e-5)
      # Padding (labels past the length, the last position) changes nothing.
      padded_labels = labels.copy()
      padded_logits = logits.copy()
      for b, length in enumerate(label_lengths):
        padded_labels[b, length:] = rng.integers(0, vocab, max_u - length)
        padded_logits[b, length:] = rng.standard_normal(
            (max_u + 1 - length, vocab))
      self.assertAllClose(
          prediction_lm.next_label_cross_entropy(
              tf.constant(padded_logits, tf.float32), padded_labels,
              label_lengths), loss, rtol=1e-6)

  def test_gradient_is_softmax_minus_one_hot_on_valid_positions(self):
    rng = np.random.default_rng(7)
    logits = tf.constant(rng.standard_normal((2, 4, 5)), tf.float32)
    labels = np.array([[1, 2, 3], [4, 4, 0]], np.int32)
    label_lengths = np.array([3, 1], np.int32)
    with tf.GradientTape() as tape:
      tape.watch(logits)
      total = tf.reduce_sum(prediction_lm.next_label_cross_entropy(
          logits, labels, label_lengths))
    gradient = tape.gradient(total, logits).numpy()
    logits64 = logits.numpy().astype(np.float64)
    softmax = np.exp(logits64 - np.logaddexp.reduce(logits64, axis=-1,
                                                    keepdims=True))
    expected = np.zeros_like(softmax)
    for b, length in enumerate(label_lengths):
      for u in range(length):
        expected[b, u] = softmax[b, u]
        expected[b, u, labels[b, u]] -= 1.0
    self.assertAllClose(gradient, expected, atol=1e-6)

  def test_bfloat16_logits_give_float32_loss(self):
    logits = tf.zeros([1, 3, 4], tf.bfloat16)
    loss = prediction_lm.next_label_cross_entropy(
        logits, np.array([[1, 2]], np.int32), np.array([2], np.int32))
    self.assertEqual(loss.dtype, tf.float32)
    self.assertAllClose(loss, [2 * np.log(4.0)], rtol=1e-6)


if __name__ == '__main__':
  tf.test.main()
