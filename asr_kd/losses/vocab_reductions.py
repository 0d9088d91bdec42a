"""Sums and log-sum-exps over the vocabulary axis in one pass on XLA:CPU.

XLA:CPU rewrites every reduction over more than 32 elements into a tree of
reduce-windows (openxla/xla#16792). Where the reduced values are an
expression, such as exp(logits - max) in a log-sum-exp, the rewrite writes
the expression out at full size [B, T, U + 1, V] and reads it back: two
extra passes over the largest tensor of an RNN-T loss.

Here the last axis is summed in blocks of 32 inside one fusion (a reduction
XLA leaves alone), and the block sums are combined by a matmul with a
[V / 32, 2] matrix of ones: XLA would merge a second reduction back into the
first, and the two output columns keep the fusion's output 2-D, which
XLA:CPU splits over threads (it does not split a 1-D output).

Only on hosts without an accelerator: GPU and TPU backends reduce without
the rewrite, and run float32 matmuls at reduced precision (TF32, bfloat16)
unless told otherwise.
"""

import functools

import tensorflow as tf

BLOCK = 32


@functools.lru_cache(maxsize=None)
def _blocks_pay_off() -> bool:
  """Whether the blocked sums run: only TensorFlow's CPU is present."""
  return not (tf.config.list_logical_devices('GPU') or
              tf.config.list_logical_devices('TPU'))


def _reduces_in_blocks(vocab_size) -> bool:
  """Whether a static last axis of `vocab_size` gets the blocked sums."""
  return vocab_size is not None and vocab_size > BLOCK and _blocks_pay_off()


def sum_over_vocab(values: tf.Tensor) -> tf.Tensor:
  """sum of `values` [..., V] over the last axis, [...].

  The same sum as `tf.reduce_sum(values, -1)` up to float rounding (summed
  in another order).
  """
  vocab_size = values.shape[-1]
  if not _reduces_in_blocks(vocab_size):
    return tf.reduce_sum(values, axis=-1)
  num_blocks = vocab_size // BLOCK
  blocked = values[..., :num_blocks * BLOCK]
  block_sums = tf.reduce_sum(
      tf.reshape(blocked, [-1, num_blocks, BLOCK]), axis=-1)
  totals = tf.matmul(block_sums, tf.ones([num_blocks, 2], values.dtype))
  totals = tf.reshape(totals[:, 0], tf.shape(values)[:-1])
  if vocab_size % BLOCK:
    totals += tf.reduce_sum(values[..., num_blocks * BLOCK:], axis=-1)
  return totals


def _logsumexp_shifted_by_row_max(scores: tf.Tensor) -> tf.Tensor:
  row_max = tf.reduce_max(scores, axis=-1)
  shift = tf.where(tf.math.is_finite(row_max), row_max, tf.zeros_like(row_max))
  return tf.math.log(sum_over_vocab(tf.exp(scores - shift[..., None]))) + shift


def logsumexp_over_vocab(scores: tf.Tensor) -> tf.Tensor:
  """log sum exp of float `scores` [..., V] over the last axis, [...].

  As `tf.reduce_logsumexp`: an all -inf row gives -inf, a +inf entry +inf,
  and the gradient is the softmax (0 on rows of -inf).
  """
  if not _reduces_in_blocks(scores.shape[-1]):
    return tf.reduce_logsumexp(scores, axis=-1)
  return _blocked_logsumexp(scores)


@tf.custom_gradient
def _blocked_logsumexp(scores):
  # The exps are shifted by the maximum of the first block only, which saves
  # a pass over the scores: a float32 sum is as exact for any shift below the
  # row maximum, down to the 88 where exp overflows. Where it overflows (or
  # a row is not finite) the batch is summed again, shifted by its row maxima.
  first_block_max = tf.reduce_max(scores[..., :BLOCK], axis=-1)
  shift = tf.where(tf.math.is_finite(first_block_max), first_block_max,
                   tf.zeros_like(first_block_max))
  fast = tf.math.log(sum_over_vocab(tf.exp(scores - shift[..., None]))) + shift
  lse = tf.cond(tf.reduce_all(tf.math.is_finite(fast)), lambda: fast,
                lambda: _logsumexp_shifted_by_row_max(scores))

  def gradient(upstream):
    # Written out: the gradient through the overflowed sum would be NaN.
    softmax = tf.exp(scores - lse[..., None])
    return tf.where((lse == float('-inf'))[..., None], 0.0,
                    softmax * upstream[..., None])

  return lse, gradient
