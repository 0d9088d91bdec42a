"""Tests of asr_kd.losses.rnnt_pruned against the float64 NumPy lattice."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from asr_kd.losses import rnnt
from asr_kd.losses import rnnt_pruned
from tests import rnnt_loss_test

BLANK = 0


def _random_batch(seed, batch=4, max_t=9, max_u=6, vocab=7):
  rng = np.random.default_rng(seed)
  logits, labels, logit_lengths, label_lengths = rnnt_loss_test.random_case(
      rng, batch, max_t, max_u, vocab, BLANK)
  am_logits = rng.normal(scale=2.0, size=(batch, max_t, vocab))
  lm_logits = rng.normal(scale=2.0, size=(batch, max_u + 1, vocab))
  return dict(logits=logits, am_logits=am_logits.astype(np.float32),
              lm_logits=lm_logits.astype(np.float32), labels=labels,
              logit_lengths=logit_lengths, label_lengths=label_lengths)


def _pruned_losses(case, prune_range, **kwargs):
  """Losses, the bands' starts and d (pruned + simple) / d each logit input.

  The real joint's band logits are gathered from the case's full logits, so
  the pruned loss can be compared with a pruned full lattice.
  """
  logits = tf.constant(case['logits'])
  am_logits = tf.constant(case['am_logits'])
  lm_logits = tf.constant(case['lm_logits'])
  starts = []

  def band_joint_fn(label_index):
    starts.append(label_index[:, :, 0])
    return tf.gather(logits, label_index, batch_dims=2)

  with tf.GradientTape(persistent=True) as tape:
    tape.watch([logits, am_logits, lm_logits])
    losses = rnnt_pruned.pruned_rnnt_loss(
        am_logits, lm_logits, band_joint_fn, case['labels'],
        case['logit_lengths'], case['label_lengths'], prune_range,
        blank=BLANK, **kwargs)
  grads = dict(logits=tape.gradient(losses.pruned, logits),
               am_logits=tape.gradient(losses.simple, am_logits),
               lm_logits=tape.gradient(losses.simple, lm_logits))
  return losses, starts[0].numpy(), {k: v.numpy() for k, v in grads.items()}


def _band_mask(starts, prune_range, max_u_plus_1):
  u = np.arange(max_u_plus_1)[None, None, :]
  return (u >= starts[..., None]) & (u < starts[..., None] + prune_range)


class PrunedRnntLossTest(tf.test.TestCase, parameterized.TestCase):

  def test_simple_loss_is_the_rnnt_loss_of_am_plus_lm(self):
    for seed in range(3):
      case = _random_batch(seed)
      losses, _, grads = _pruned_losses(case, prune_range=3)
      joint = case['am_logits'][:, :, None] + case['lm_logits'][:, None]
      expected, expected_grad = rnnt_loss_test.reference_rnnt(
          joint, case['labels'], case['logit_lengths'],
          case['label_lengths'], BLANK)
      self.assertAllClose(losses.simple, expected, rtol=1e-5)
      self.assertAllClose(grads['am_logits'], expected_grad.sum(axis=2),
                          atol=1e-5)
      self.assertAllClose(grads['lm_logits'], expected_grad.sum(axis=1),
                          atol=1e-5)

  @parameterized.parameters(0.0, 0.5)
  def test_pruned_loss_is_the_loss_of_the_lattice_inside_the_bands(
      self, fastemit_lambda):
    for seed in range(3):
      case = _random_batch(seed + 10)
      losses, starts, grads = _pruned_losses(
          case, prune_range=3, fastemit_lambda=fastemit_lambda)
      allowed = _band_mask(starts, 3, case['logits'].shape[2])
      expected, expected_grad = rnnt_loss_test.reference_rnnt(
          case['logits'], case['labels'], case['logit_lengths'],
          case['label_lengths'], BLANK, fastemit_lambda=fastemit_lambda,
          allowed=allowed)
      self.assertAllClose(losses.pruned, expected, rtol=1e-5)
      self.assertAllClose(grads['logits'], expected_grad, atol=1e-5)
      # Fewer paths than the full lattice: never a lower loss.
      full, _ = rnnt_loss_test.reference_rnnt(
          case['logits'], case['labels'], case['logit_lengths'],
          case['label_lengths'], BLANK)
      self.assertTrue(np.all(losses.pruned.numpy() >= full - 1e-4))
      self.assertTrue(np.any(losses.pruned.numpy() > full + 1e-3))

  def test_a_band_as_wide_as_the_labels_is_the_full_loss(self):
    case = _random_batch(20)
    max_u_plus_1 = case['logits'].shape[2]
    losses, starts, grads = _pruned_losses(case, prune_range=max_u_plus_1)
    self.assertAllEqual(starts, np.zeros_like(starts))
    expected, expected_grad = rnnt_loss_test.loss_and_grad(
        case['logits'], case['labels'], case['logit_lengths'],
        case['label_lengths'], jit=False)
    self.assertAllClose(losses.pruned, expected, rtol=1e-5)
    self.assertAllClose(grads['logits'], expected_grad, atol=1e-6)

  def test_starts_leave_a_path_through_the_bands(self):
    rng = np.random.default_rng(1)
    for prune_range in (2, 3, 5):
      step = prune_range - 1
      batch, max_t, max_u = 6, 12, 15
      logit_lengths = rng.integers(3, max_t + 1, size=batch)
      label_lengths = np.minimum(rng.integers(0, max_u + 1, size=batch),
                                 step * logit_lengths)
      occupancy = rng.random((batch, max_t, max_u + 1)).astype(np.float32)
      starts = rnnt_pruned.pruning_starts(occupancy, logit_lengths,
                                          label_lengths, prune_range).numpy()
      for b in range(batch):
        s = starts[b, :logit_lengths[b]]
        self.assertEqual(s[0], 0)
        self.assertTrue(np.all(np.diff(s) >= 0))
        self.assertTrue(np.all(np.diff(s) <= step))
        self.assertGreaterEqual(s[-1] + step, label_lengths[b])
        self.assertLessEqual(s.max(), max(label_lengths[b] - step, 0))
        self.assertTrue(np.all(starts[b, logit_lengths[b]:] == s[-1]))

  def test_starts_cover_the_path_that_holds_the_occupancy(self):
    rng = np.random.default_rng(2)
    prune_range, frames, num_labels = 4, 10, 17
    # A monotone alignment: at most prune_range - 1 labels per frame.
    per_frame = rng.multinomial(num_labels, np.ones(frames) / frames)
    while per_frame.max() > prune_range - 1:
      per_frame = rng.multinomial(num_labels, np.ones(frames) / frames)
    occupancy = np.zeros((1, frames, num_labels + 1), np.float32)
    position = 0
    for t, count in enumerate(per_frame):
      occupancy[0, t, position:position + count + 1] = 1.0
      position += count
    starts = rnnt_pruned.pruning_starts(occupancy, [frames], [num_labels],
                                        prune_range).numpy()
    band = _band_mask(starts, prune_range, num_labels + 1)
    self.assertTrue(np.all(band[occupancy > 0]))

  def test_more_labels_than_the_bands_hold_is_infinite_unless_zeroed(self):
    case = _random_batch(30, batch=2, max_t=2, max_u=5)
    case['logit_lengths'][:] = 2
    case['label_lengths'][:] = [5, 2]
    losses, _, _ = _pruned_losses(case, prune_range=2)
    self.assertTrue(np.isinf(losses.pruned[0]))
    self.assertTrue(np.isfinite(losses.pruned[1]))
    losses, _, grads = _pruned_losses(case, prune_range=2,
                                      zero_infinity=True)
    self.assertEqual(float(losses.pruned[0]), 0.0)
    self.assertAllEqual(grads['logits'][0], np.zeros_like(grads['logits'][0]))
    self.assertTrue(np.all(np.isfinite(grads['logits'])))

  def test_runs_in_a_graph_and_rejects_a_one_position_band(self):
    case = _random_batch(40)
    eager, _, _ = _pruned_losses(case, prune_range=3)

    @tf.function
    def graph_loss(logits, am_logits, lm_logits, labels, logit_lengths,
                   label_lengths):
      return rnnt_pruned.pruned_rnnt_loss(
          am_logits, lm_logits,
          lambda index: tf.gather(logits, index, batch_dims=2), labels,
          logit_lengths, label_lengths, prune_range=3, blank=BLANK)

    graph = graph_loss(case['logits'], case['am_logits'], case['lm_logits'],
                       case['labels'], case['logit_lengths'],
                       case['label_lengths'])
    self.assertAllClose(graph.pruned, eager.pruned, rtol=1e-6)
    self.assertAllClose(graph.simple, eager.simple, rtol=1e-6)
    with self.assertRaisesRegex(ValueError, 'prune_range must be >= 2'):
      rnnt_pruned.pruning_starts(np.zeros([1, 2, 3], np.float32), [2], [2], 1)

  def test_simple_log_probs_of_logits_too_large_for_exp(self):
    # exp(am + lm) overflows float32 (above e^88) at every entry.
    am = tf.constant([[[100.0, 90.0, 60.0], [70.0, 100.0, 95.0]]])
    lm = tf.constant([[[95.0, 100.0, 40.0], [50.0, 60.0, 90.0]]])
    padded_labels = rnnt.pad_labels(tf.constant([[2]]))
    blank_lp, label_lp = rnnt_pruned.simple_log_probs(am, lm, padded_labels,
                                                      BLANK)
    expected = tf.nn.log_softmax(
        tf.cast(am[:, :, None] + lm[:, None], tf.float64))
    self.assertAllClose(blank_lp, expected[..., BLANK], atol=1e-4)
    self.assertAllClose(label_lp[..., 0], expected[:, :, 0, 2], atol=1e-4)


if __name__ == '__main__':
  tf.test.main()
