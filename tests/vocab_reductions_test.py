"""Tests for asr_kd.losses.vocab_reductions against float64 NumPy."""

import re

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from asr_kd.losses import vocab_reductions


def _numpy_logsumexp(scores):
  with np.errstate(divide='ignore', invalid='ignore'):
    top = np.max(scores, axis=-1, keepdims=True)
    shift = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(scores - shift).sum(-1)) + shift[..., 0]


def _full_size_results_outside_fusions(hlo_text, num_elements):
  """Instructions of the optimized HLO, outside fused computations, that
  write a float32 value of `num_elements` (parameters, and views of them,
  excepted)."""
  found = []
  in_fusion = False
  for line in hlo_text.splitlines():
    if line and not line.startswith(' '):
      in_fusion = line.lstrip('%').startswith('fused_computation')
      continue
    match = re.match(r'\s+(?:ROOT )?\S+ = f32\[([\d,]*)\]', line)
    if in_fusion or not match or any(
        view in line for view in ('parameter(', 'get-tuple-element(',
                                  'bitcast(')):
      continue
    if np.prod([int(d) for d in match.group(1).split(',') if d]) == (
        num_elements):
      found.append(line.strip()[:120])
  return found


class VocabReductionsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((7,), (32,), (33,), (64,), (100,), (1024,))
  def test_sum_matches_float64_in_graph_and_under_xla(self, vocab_size):
    rng = np.random.default_rng(vocab_size)
    values = rng.normal(size=(3, 5, vocab_size)).astype(np.float32)
    expected = values.astype(np.float64).sum(-1)
    for jit_compile in (False, True):
      # Unknown leading dimensions, as in a train step's graph.
      summed = tf.function(
          vocab_reductions.sum_over_vocab, jit_compile=jit_compile,
          input_signature=[tf.TensorSpec([None, None, vocab_size])])(values)
      self.assertAllClose(summed, expected, rtol=1e-5, atol=1e-4)

  @parameterized.parameters((29,), (96,), (1000,), (1024,))
  def test_logsumexp_and_gradient_match_float64(self, vocab_size):
    rng = np.random.default_rng(vocab_size)
    scores = rng.normal(size=(4, 6, vocab_size)) * 10
    # The first block (the shift) far below the rest: exp would overflow.
    scores[0, 0, :32] -= 300.0
    # The first block far above the rest: their exps underflow harmlessly.
    scores[0, 1, 32:] -= 300.0
    scores[1, 0, :vocab_size // 2] = -np.inf  # Impossible entries.
    scores[1, 1, :] = -np.inf  # A row with no mass.
    scores[2, 0, 3] = np.inf
    scores = scores.astype(np.float32).astype(np.float64)
    expected = _numpy_logsumexp(scores)
    finite_rows = np.isfinite(expected)
    with np.errstate(invalid='ignore'):
      softmax = np.exp(scores - expected[..., None])
    softmax[~finite_rows] = 0.0
    weights = rng.normal(size=expected.shape)
    weights[~finite_rows] = 0.0
    for jit_compile in (False, True):

      @tf.function(jit_compile=jit_compile)
      def value_and_gradient(scores):
        with tf.GradientTape() as tape:
          tape.watch(scores)
          lse = vocab_reductions.logsumexp_over_vocab(scores)
          weighted = tf.reduce_sum(tf.where(tf.math.is_finite(lse),
                                            lse * weights, 0.0))
        return lse, tape.gradient(weighted, scores)

      lse, gradient = value_and_gradient(tf.constant(scores, tf.float32))
      with self.subTest(jit_compile=jit_compile):
        self.assertAllEqual(lse[1, 1], -np.inf)
        self.assertAllEqual(lse[2, 0], np.inf)
        self.assertAllClose(lse[finite_rows], expected[finite_rows],
                            rtol=1e-6)
        self.assertAllClose(gradient.numpy()[finite_rows],
                            (softmax * weights[..., None])[finite_rows],
                            rtol=1e-5, atol=1e-7)

  def test_nan_stays_nan(self):
    scores = np.zeros([2, 64], np.float32)
    scores[1, 40] = np.nan
    lse = vocab_reductions.logsumexp_over_vocab(tf.constant(scores)).numpy()
    self.assertAllClose(lse[0], np.log(64.0))
    self.assertTrue(np.isnan(lse[1]))

  def test_xla_keeps_no_full_size_temporary(self):
    # The point of the module: XLA:CPU writes exp(scores - max) out in full
    # for tf.reduce_logsumexp (openxla/xla#16792), not for this one.
    shape = [8, 16, 1024]
    scores = tf.random.normal(shape, seed=1)
    num_elements = np.prod(shape)

    def optimized_hlo(fn):
      return tf.function(fn, jit_compile=True).experimental_get_compiler_ir(
          scores)(stage='optimized_hlo')

    self.assertEqual(_full_size_results_outside_fusions(
        optimized_hlo(vocab_reductions.logsumexp_over_vocab), num_elements),
                     [])
    self.assertNotEmpty(
        _full_size_results_outside_fusions(
            optimized_hlo(lambda x: tf.reduce_logsumexp(x, axis=-1)),
            num_elements),
        'tf.reduce_logsumexp no longer writes a full-size temporary: '
        'this XLA may not need vocab_reductions any more.')


if __name__ == '__main__':
  tf.test.main()
