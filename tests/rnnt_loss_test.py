"""Tests of asr_kd.losses.rnnt against a float64 NumPy forward-backward."""

import numpy as np
import tensorflow as tf

from asr_kd.losses import rnnt


def _log_softmax(logits):
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reference_rnnt(logits, labels, logit_lengths, label_lengths, blank,
                   fastemit_lambda=0.0, allowed=None):
  """Loss [B] and d loss / d logits by plain loops over the lattice, float64.

  The gradient uses node posteriors exp(alpha + beta - log P) for the softmax
  term (the op under test uses the sum of transition posteriors instead).
  `allowed` (bool [B, T, U+1], optional) removes the transitions out of the
  nodes where it is False (a pruned lattice).
  """
  logits = np.asarray(logits, np.float64)
  losses = np.zeros(logits.shape[0])
  grads = np.zeros_like(logits)
  for b, (frames, num_labels) in enumerate(zip(logit_lengths, label_lengths)):
    log_probs = _log_softmax(logits[b])
    softmax = np.exp(log_probs)
    if allowed is not None:
      log_probs = np.where(allowed[b][..., None], log_probs, -np.inf)
    y = labels[b]
    alpha = np.full((frames, num_labels + 1), -np.inf)
    beta = np.full((frames, num_labels + 1), -np.inf)
    for t in range(frames):
      for u in range(num_labels + 1):
        if t == 0 and u == 0:
          alpha[t, u] = 0.0
          continue
        paths = []
        if t > 0:
          paths.append(alpha[t - 1, u] + log_probs[t - 1, u, blank])
        if u > 0:
          paths.append(alpha[t, u - 1] + log_probs[t, u - 1, y[u - 1]])
        alpha[t, u] = np.logaddexp.reduce(paths)
    for t in reversed(range(frames)):
      for u in reversed(range(num_labels + 1)):
        if t == frames - 1 and u == num_labels:
          beta[t, u] = log_probs[t, u, blank]
          continue
        paths = []
        if t < frames - 1:
          paths.append(beta[t + 1, u] + log_probs[t, u, blank])
        if u < num_labels:
          paths.append(beta[t, u + 1] + log_probs[t, u, y[u]])
        beta[t, u] = np.logaddexp.reduce(paths)
    log_likelihood = alpha[-1, -1] + log_probs[frames - 1, num_labels, blank]
    losses[b] = -log_likelihood
    for t in range(frames):
      for u in range(num_labels + 1):
        node = np.exp(alpha[t, u] + beta[t, u] - log_likelihood)
        next_beta = beta[t + 1, u] if t < frames - 1 else (
            0.0 if u == num_labels else -np.inf)
        blank_occ = np.exp(alpha[t, u] + log_probs[t, u, blank] + next_beta -
                           log_likelihood)
        label_occ = 0.0
        if u < num_labels:
          label_occ = np.exp(alpha[t, u] + log_probs[t, u, y[u]] +
                             beta[t, u + 1] - log_likelihood)
        # FastEmit adds lambda * label_occ to the label transition only.
        grads[b, t, u] = softmax[t, u] * (node + fastemit_lambda * label_occ)
        grads[b, t, u, blank] -= blank_occ
        if u < num_labels:
          grads[b, t, u, y[u]] -= (1.0 + fastemit_lambda) * label_occ
  return losses, grads


def random_case(rng, batch, max_t, max_u, vocab, blank):
  """Random logits, ragged lengths (one example at full size), labels."""
  logit_lengths = rng.integers(1, max_t + 1, size=batch)
  label_lengths = rng.integers(0, max_u + 1, size=batch)
  logit_lengths[0], label_lengths[0] = max_t, max_u
  non_blank = np.array([v for v in range(vocab) if v != blank])
  labels = rng.choice(non_blank, size=(batch, max_u))
  # Padding labels are set to blank on purpose: they must be ignored.
  labels[np.arange(max_u)[None, :] >= label_lengths[:, None]] = blank
  logits = rng.normal(scale=2.0, size=(batch, max_t, max_u + 1, vocab))
  return (logits.astype(np.float32), labels.astype(np.int32),
          logit_lengths.astype(np.int32), label_lengths.astype(np.int32))


def loss_and_grad(logits, labels, logit_lengths, label_lengths, jit=True,
                  **kwargs):
  """Loss and d sum(loss) / d logits from one (by default XLA) function."""

  # Lengths and labels are function arguments, not constants, so that value
  # checks happen at run time as in training.
  @tf.function(jit_compile=jit)
  def run(logits, labels, logit_lengths, label_lengths):
    with tf.GradientTape() as tape:
      tape.watch(logits)
      loss = rnnt.rnnt_loss(logits, labels, logit_lengths, label_lengths,
                            **kwargs)
    return loss, tape.gradient(loss, logits)

  loss, grad = run(tf.convert_to_tensor(logits),
                   tf.constant(labels, tf.int32),
                   tf.constant(logit_lengths, tf.int32),
                   tf.constant(label_lengths, tf.int32))
  return loss.numpy(), grad.numpy()


def padded_positions(logits_shape, logit_lengths, label_lengths):
  batch, max_t, max_u_plus_1, _ = logits_shape
  t = np.arange(max_t)[None, :, None]
  u = np.arange(max_u_plus_1)[None, None, :]
  return np.broadcast_to(
      (t >= logit_lengths[:, None, None]) | (u > label_lengths[:, None, None]),
      (batch, max_t, max_u_plus_1))


class RnntLossTest(tf.test.TestCase):

  def test_matches_float64_reference_on_random_cases(self):
    rng = np.random.default_rng(0)
    shapes = [(1, 1, 0, 2), (2, 7, 3, 5), (3, 23, 9, 16), (4, 60, 25, 64),
              (2, 41, 17, 33), (1, 5, 25, 3)]
    for index, (batch, max_t, max_u, vocab) in enumerate(shapes):
      blank = 0 if index % 2 == 0 else vocab - 1
      jit = index != 1
      case = random_case(rng, batch, max_t, max_u, vocab, blank)
      with self.subTest(shape=(batch, max_t, max_u, vocab), blank=blank):
        loss, grad = loss_and_grad(*case, jit=jit, blank=blank)
        ref_loss, ref_grad = reference_rnnt(*case, blank=blank)
        self.assertEqual(loss.dtype, np.float32)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
        np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-5)
        padded = padded_positions(case[0].shape, case[2], case[3])
        self.assertTrue(np.all(grad[padded] == 0.0))

  def test_normalizer_matches_float64_with_impossible_entries(self):
    rng = np.random.default_rng(5)
    for vocab in (29, 32, 96, 1024):
      logits = rng.normal(size=(3, 4, vocab)) * 20
      logits[0, 0, : vocab // 2] = -np.inf  # Some entries impossible.
      logits[0, 1, :] = -np.inf  # A row with no mass at all.
      with self.subTest(vocab=vocab):
        got = rnnt.log_softmax_normalizer(
            tf.constant(logits, tf.float32)).numpy()
        with np.errstate(divide='ignore'):
          top = np.max(logits, axis=-1, keepdims=True)
          shift = np.where(np.isfinite(top), top, 0.0)
          expected = np.log(np.exp(logits - shift).sum(-1)) + shift[..., 0]
        self.assertEqual(got[0, 1], -np.inf)
        np.testing.assert_allclose(got, expected, rtol=1e-6)

  def test_low_precision_logits_accumulate_in_float32(self):
    rng = np.random.default_rng(1)
    for dtype in (tf.bfloat16, tf.float16):
      logits, labels, logit_lengths, label_lengths = random_case(
          rng, 3, 30, 12, 20, blank=0)
      low = tf.cast(logits, dtype)
      rounded = tf.cast(low, tf.float64).numpy()
      with self.subTest(dtype=dtype.name):
        loss, grad = loss_and_grad(low, labels, logit_lengths, label_lengths)
        ref_loss, ref_grad = reference_rnnt(rounded, labels, logit_lengths,
                                            label_lengths, blank=0)
        self.assertEqual(loss.dtype, np.float32)
        self.assertEqual(grad.dtype, dtype.as_numpy_dtype)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
        # Only the final cast of the gradient to `dtype` loses precision.
        eps = {tf.bfloat16: 2.0**-8, tf.float16: 2.0**-11}[dtype]
        np.testing.assert_allclose(grad.astype(np.float64), ref_grad,
                                   rtol=eps, atol=1e-5)

  def test_gradient_matches_finite_differences(self):
    rng = np.random.default_rng(2)
    logits, labels, logit_lengths, label_lengths = random_case(
        rng, 2, 5, 3, 4, blank=0)
    _, grad = loss_and_grad(logits, labels, logit_lengths, label_lengths)
    total_loss = tf.function(
        lambda x: tf.reduce_sum(rnnt.rnnt_loss(x, labels, logit_lengths,
                                               label_lengths)),
        jit_compile=True)
    delta = 1e-2
    numerical = np.zeros_like(logits)
    for index in np.ndindex(*logits.shape):
      step = np.zeros_like(logits)
      step[index] = delta
      numerical[index] = (total_loss(logits + step) -
                          total_loss(logits - step)) / (2 * delta)
    # Central differences in float32: O(delta^2) + O(eps * loss / delta).
    np.testing.assert_allclose(grad, numerical, rtol=0, atol=2e-3)

  def test_upstream_gradient_scales_each_example(self):
    rng = np.random.default_rng(3)
    logits, labels, logit_lengths, label_lengths = random_case(
        rng, 3, 9, 4, 6, blank=0)
    weights = np.array([0.5, -2.0, 3.0], np.float32)
    logits = tf.constant(logits)
    with tf.GradientTape() as tape:
      tape.watch(logits)
      loss = rnnt.rnnt_loss(logits, labels, logit_lengths, label_lengths)
      weighted = tf.reduce_sum(loss * weights)
    _, ref_grad = reference_rnnt(logits.numpy(), labels, logit_lengths,
                                 label_lengths, blank=0)
    self.assertAllClose(tape.gradient(weighted, logits),
                        ref_grad * weights[:, None, None, None], atol=1e-5)

  def test_fastemit_matches_reference(self):
    rng = np.random.default_rng(4)
    case = random_case(rng, 3, 20, 8, 12, blank=0)
    loss, grad = loss_and_grad(*case, fastemit_lambda=0.3)
    ref_loss, ref_grad = reference_rnnt(*case, blank=0, fastemit_lambda=0.3)
    _, plain_grad = reference_rnnt(*case, blank=0)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=1e-5)
    self.assertGreater(np.abs(ref_grad - plain_grad).max(), 1e-2)

  def test_clamp_clips_the_gradient(self):
    rng = np.random.default_rng(5)
    case = random_case(rng, 2, 10, 4, 7, blank=0)
    _, grad = loss_and_grad(*case, clamp=0.05)
    _, ref_grad = reference_rnnt(*case, blank=0)
    self.assertGreater(np.abs(ref_grad).max(), 0.05)
    np.testing.assert_allclose(grad, np.clip(ref_grad, -0.05, 0.05),
                               rtol=0, atol=1e-5)

  def test_non_finite_logits_and_zero_infinity(self):
    rng = np.random.default_rng(6)
    logits, labels, logit_lengths, label_lengths = random_case(
        rng, 3, 8, 3, 6, blank=0)
    logits[1, 0, 0, 2] = np.nan
    logits[2, 0, 0, :] = -np.inf
    loss, _ = loss_and_grad(logits, labels, logit_lengths, label_lengths)
    self.assertTrue(np.isfinite(loss[0]))
    self.assertFalse(np.isfinite(loss[1]))
    self.assertFalse(np.isfinite(loss[2]))
    loss, grad = loss_and_grad(logits, labels, logit_lengths, label_lengths,
                               zero_infinity=True)
    ref_loss, ref_grad = reference_rnnt(logits[:1], labels[:1],
                                        logit_lengths[:1], label_lengths[:1],
                                        blank=0)
    np.testing.assert_allclose(loss, [ref_loss[0], 0.0, 0.0], rtol=1e-5)
    np.testing.assert_allclose(grad[:1], ref_grad, atol=1e-5)
    self.assertTrue(np.all(grad[1:] == 0.0))

  def test_zero_frames_give_infinite_loss(self):
    logits = np.zeros((2, 3, 2, 4), np.float32)
    loss, grad = loss_and_grad(logits, [[1], [2]], [0, 3], [1, 1])
    self.assertEqual(loss[0], np.inf)
    self.assertTrue(np.isfinite(loss[1]))
    loss, grad = loss_and_grad(logits, [[1], [2]], [0, 3], [1, 1],
                               zero_infinity=True)
    self.assertEqual(loss[0], 0.0)
    self.assertTrue(np.all(grad[0] == 0.0))

  def test_bad_inputs_raise_outside_xla_and_give_nan_inside(self):
    logits = np.zeros((2, 4, 3, 5), np.float32)
    good = dict(labels=[[1, 2], [3, 0]], logit_lengths=[4, 2],
                label_lengths=[2, 1])
    bad_cases = {
        'logit_lengths exceed': dict(logit_lengths=[5, 2]),
        'logit_lengths must be >= 0': dict(logit_lengths=[4, -1]),
        'label_lengths exceed': dict(label_lengths=[3, 1]),
        'label_lengths must be >= 0': dict(label_lengths=[2, -1]),
        'differ from blank': dict(labels=[[1, 0], [3, 0]]),
        'must be in [0, V)': dict(labels=[[1, 5], [3, 0]]),
    }
    for message, change in bad_cases.items():
      args = dict(good, **change)
      with self.subTest(message):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    message.replace('[', r'\[').replace(
                                        ')', r'\)')):
          rnnt.rnnt_loss(logits, **args)
        loss, _ = loss_and_grad(logits, **args, jit=True)
        self.assertTrue(np.isnan(loss[0]) or np.isnan(loss[1]))
    # Padding labels equal to blank are fine.
    self.assertTrue(np.all(np.isfinite(rnnt.rnnt_loss(logits, **good))))

  def test_shape_mismatch_is_a_value_error(self):
    with self.assertRaisesRegex(ValueError, 'U\\+1'):
      rnnt.rnnt_loss(np.zeros((1, 2, 3, 4), np.float32), [[1]], [2], [1])

  def test_runs_in_a_distribution_replica_context(self):
    rng = np.random.default_rng(7)
    case = random_case(rng, 2, 6, 2, 4, blank=0)
    strategy = tf.distribute.MirroredStrategy(['/cpu:0'])

    @tf.function(jit_compile=True)
    def replica_fn(logits):
      with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = rnnt.rnnt_loss(logits, *case[1:])
      return loss, tape.gradient(loss, logits)

    loss, grad = strategy.run(replica_fn, args=(tf.constant(case[0]),))
    ref_loss, ref_grad = reference_rnnt(*case, blank=0)
    np.testing.assert_allclose(loss.numpy(), ref_loss, rtol=1e-5)
    np.testing.assert_allclose(grad.numpy(), ref_grad, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
