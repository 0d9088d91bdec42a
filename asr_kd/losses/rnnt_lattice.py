"""Forward-backward recursions over the RNN-T (T, U+1) lattice.

This module works on per-node log-probabilities only (`blank_log_probs` and
`label_log_probs`, both [B, T, U+1] float32); it never sees the vocabulary
axis. `asr_kd.losses.rnnt` builds those inputs from logits and turns the
transition occupancies computed here into logit gradients.

The recursions run as an anti-diagonal wavefront: all nodes with t + u = n
are independent given diagonal n - 1, so one `tf.while_loop` step updates a
whole diagonal ([B, U+1] vectors) and the loop has T + U + 1 steps instead of
T * (U + 1). The lattice is stored "skewed", diagonal-major: `skewed[n, b, u]`
holds node (t = n - u, u) of example b.

Numerics: every diagonal of alpha and beta is rescaled by its maximum, so the
stored values stay close to 0 and keep float32 precision however long the
utterance (plain log-space alpha reaches -1e3, where a float32 ulp is 6e-5).
The scales are accumulated only for alpha (they give the log-likelihood).
Occupancies are normalised per diagonal, which is exact because every complete
path visits exactly one node of each diagonal n <= T_b - 1 + U_b; the large
per-diagonal scale factors then cancel without ever being added together.
"""

from typing import NamedTuple

import tensorflow as tf

_NEG_INF = float('-inf')


def lattice_mask(logit_lengths, label_lengths, max_t, max_u_plus_1):
  """Marks the lattice nodes that lie on some complete alignment path.

  Args:
    logit_lengths: int [B], number of valid frames T_b.
    label_lengths: int [B], number of labels U_b.
    max_t: int, padded number of frames T.
    max_u_plus_1: int, padded number of label positions U + 1.

  Returns:
    bool [B, T, U+1], True where t < T_b and u <= U_b.
  """
  frames = tf.range(max_t)[tf.newaxis, :, tf.newaxis]
  label_positions = tf.range(max_u_plus_1)[tf.newaxis, tf.newaxis, :]
  logit_lengths = tf.cast(logit_lengths, tf.int32)[:, tf.newaxis, tf.newaxis]
  label_lengths = tf.cast(label_lengths, tf.int32)[:, tf.newaxis, tf.newaxis]
  return (frames < logit_lengths) & (label_positions <= label_lengths)


def skew(lattice, fill_value):
  """Reorders a [B, T, U+1] lattice into diagonal-major [T+U, B, U+1].

  Out-of-lattice cells (t < 0 or t >= T) get `fill_value`. Pure pad/reshape,
  no gather: row u of the [B, U+1, T] transpose is shifted right by u.

  Args:
    lattice: [B, T, U+1] tensor.
    fill_value: scalar of `lattice.dtype` for cells outside the lattice.

  Returns:
    [T + U, B, U+1] tensor, `out[n, b, u] = lattice[b, n - u, u]`.
  """
  batch, max_t, max_u_plus_1 = _dims(lattice)
  by_label = tf.transpose(lattice, [0, 2, 1])  # [B, U+1, T]
  padded = tf.pad(by_label, [[0, 0], [0, 0], [0, max_u_plus_1]],
                  constant_values=fill_value)  # [B, U+1, T+U+1]
  flat = tf.reshape(padded, [batch, max_u_plus_1 * (max_t + max_u_plus_1)])
  num_diagonals = max_t + max_u_plus_1 - 1
  flat = flat[:, :max_u_plus_1 * num_diagonals]
  skewed = tf.reshape(flat, [batch, max_u_plus_1, num_diagonals])
  return tf.transpose(skewed, [2, 0, 1])


def unskew(skewed, max_t):
  """Inverse of `skew`: [T+U, B, U+1] diagonal-major back to [B, T, U+1]."""
  num_diagonals, batch, max_u_plus_1 = _dims(skewed)
  by_label = tf.transpose(skewed, [1, 2, 0])  # [B, U+1, T+U]
  flat = tf.reshape(by_label, [batch, max_u_plus_1 * num_diagonals])
  flat = tf.pad(flat, [[0, 0], [0, max_u_plus_1]])
  rows = tf.reshape(flat, [batch, max_u_plus_1, num_diagonals + 1])
  return tf.transpose(rows[:, :, :max_t], [0, 2, 1])


def _dims(tensor):
  """Static dimensions where known, dynamic scalars otherwise."""
  static = tensor.shape.as_list()
  dynamic = tf.unstack(tf.shape(tensor))
  return [s if s is not None else d for s, d in zip(static, dynamic)]


def log_add_exp(a, b):
  """log(exp(a) + exp(b)) that returns -inf (not NaN) when both are -inf."""
  larger = tf.maximum(a, b)
  safe_larger = tf.where(tf.math.is_inf(larger) & (larger < 0),
                         tf.zeros_like(larger), larger)
  return safe_larger + tf.math.log(tf.exp(a - safe_larger) +
                                   tf.exp(b - safe_larger))


def _shift_right(diagonal):
  """[B, U+1] -> [B, U+1] with column u holding column u-1; -inf at u=0."""
  return tf.pad(diagonal[:, :-1], [[0, 0], [1, 0]], constant_values=_NEG_INF)


def _shift_left(diagonal):
  """[B, U+1] -> [B, U+1] with column u holding column u+1; -inf at u=U."""
  # A roll and a select, not a slice and a pad: XLA:CPU runs the backward
  # loop about 3x slower with the pad of its loop-carried diagonal.
  num_columns = tf.shape(diagonal)[1]
  return tf.where(tf.range(num_columns) == num_columns - 1, _NEG_INF,
                  tf.roll(diagonal, -1, axis=1))


def _rescale(diagonal):
  """Subtracts the per-example maximum; returns (scaled, log_scale [B])."""
  log_scale = tf.reduce_max(diagonal, axis=1)
  # A diagonal without any reachable node (past the end of a short example)
  # keeps its -inf entries and contributes nothing to the scale.
  log_scale = tf.where(tf.math.is_finite(log_scale), log_scale,
                       tf.zeros_like(log_scale))
  return diagonal - log_scale[:, tf.newaxis], log_scale


class SkewedLattice(NamedTuple):
  """Per-node inputs of the recursions, diagonal-major [N, B, U+1].

  N = T + U + 1: the lattice is padded with one frame of -inf so that the
  diagonal holding the virtual end node (T_b, U_b) always exists.
  """
  blank_log_probs: tf.Tensor
  label_log_probs: tf.Tensor
  valid: tf.Tensor  # bool, node on some complete path (t < T_b, u <= U_b).
  end_diagonal: tf.Tensor  # int32 [B], T_b + U_b, holds the virtual end node.
  label_lengths: tf.Tensor  # int32 [B].


def skew_lattice(blank_log_probs, label_log_probs, logit_lengths,
                 label_lengths):
  """Builds the diagonal-major inputs of `forward` and `backward`.

  Args:
    blank_log_probs: float32 [B, T, U+1], log P(blank | t, u).
    label_log_probs: float32 [B, T, U+1], log P(y_{u+1} | t, u); column U is
      ignored.
    logit_lengths: int [B], T_b.
    label_lengths: int [B], U_b.

  Returns:
    A `SkewedLattice`.
  """
  one_frame = [[0, 0], [0, 1], [0, 0]]
  blank_log_probs = tf.pad(blank_log_probs, one_frame,
                           constant_values=_NEG_INF)
  label_log_probs = tf.pad(label_log_probs, one_frame,
                           constant_values=_NEG_INF)
  _, max_t_plus_1, max_u_plus_1 = _dims(blank_log_probs)
  valid = lattice_mask(logit_lengths, label_lengths, max_t_plus_1,
                       max_u_plus_1)
  logit_lengths = tf.cast(logit_lengths, tf.int32)
  label_lengths = tf.cast(label_lengths, tf.int32)
  return SkewedLattice(
      blank_log_probs=skew(blank_log_probs, _NEG_INF),
      label_log_probs=skew(label_log_probs, _NEG_INF),
      valid=skew(valid, False),
      end_diagonal=logit_lengths + label_lengths,
      label_lengths=label_lengths)


def forward(lattice):
  """Alpha recursion, alpha(t, u) = log P(reach node (t, u)).

  alpha(t, u) = logaddexp(alpha(t-1, u) + blank(t-1, u),
                          alpha(t, u-1) + label(t, u-1)),  alpha(0, 0) = 0.

  Args:
    lattice: a `SkewedLattice`.

  Returns:
    (scaled_alpha [N, B, U+1], log_likelihood [B]): each diagonal of
    `scaled_alpha` is alpha minus that diagonal's scale; `log_likelihood` is
    log P(y | x) = alpha(T_b - 1, U_b) + blank(T_b - 1, U_b), -inf if T_b = 0.
  """
  num_diagonals, batch, max_u_plus_1 = _dims(lattice.blank_log_probs)
  first = tf.concat([tf.zeros([batch, 1]),
                     tf.fill([batch, max_u_plus_1 - 1], _NEG_INF)], axis=1)
  alphas = tf.TensorArray(tf.float32, size=num_diagonals,
                          element_shape=first.shape).write(0, first)
  # log_likelihood is taken at the end diagonal, where the virtual end node
  # (T_b, U_b) is reached from (T_b - 1, U_b) by the final blank.
  end_column = tf.one_hot(lattice.label_lengths, max_u_plus_1,
                          on_value=True, off_value=False)

  def step(n, previous, total_log_scale, log_likelihood, alphas):
    from_blank = previous + lattice.blank_log_probs[n - 1]
    from_label = _shift_right(previous + lattice.label_log_probs[n - 1])
    at_end = tf.equal(lattice.end_diagonal, n)
    end_value = tf.reduce_logsumexp(
        tf.where(end_column, from_blank, _NEG_INF), axis=1) + total_log_scale
    log_likelihood = tf.where(at_end, end_value, log_likelihood)
    current, log_scale = _rescale(log_add_exp(from_blank, from_label))
    return (n + 1, current, total_log_scale + log_scale, log_likelihood,
            alphas.write(n, current))

  _, _, _, log_likelihood, alphas = tf.while_loop(
      lambda n, *_: n < num_diagonals, step,
      (tf.constant(1), first, tf.zeros([batch]), tf.fill([batch], _NEG_INF),
       alphas),
      maximum_iterations=num_diagonals - 1)
  return alphas.stack(), log_likelihood


def backward(lattice):
  """Beta recursion, beta(t, u) = log P(complete the path from (t, u)).

  beta(t, u) = logaddexp(beta(t+1, u) + blank(t, u),
                         beta(t, u+1) + label(t, u)),
  with beta = 0 at the virtual end node (T_b, U_b) and -inf off the lattice.

  Args:
    lattice: a `SkewedLattice`.

  Returns:
    scaled_beta [N + 1, B, U+1]: each diagonal of beta minus its own scale;
    diagonal N is all -inf.
  """
  num_diagonals, batch, max_u_plus_1 = _dims(lattice.blank_log_probs)
  last = tf.fill([batch, max_u_plus_1], _NEG_INF)
  betas = tf.TensorArray(tf.float32, size=num_diagonals + 1,
                         element_shape=last.shape).write(num_diagonals, last)
  end_column = tf.one_hot(lattice.label_lengths, max_u_plus_1,
                          on_value=True, off_value=False)

  def step(n, following, betas):
    current = log_add_exp(
        following + lattice.blank_log_probs[n],
        _shift_left(following) + lattice.label_log_probs[n])
    current = tf.where(lattice.valid[n], current, _NEG_INF)
    at_end = tf.equal(lattice.end_diagonal, n)[:, tf.newaxis] & end_column
    current, _ = _rescale(tf.where(at_end, 0.0, current))
    return n - 1, current, betas.write(n, current)

  _, _, betas = tf.while_loop(
      lambda n, *_: n >= 0, step,
      (num_diagonals - 1, last, betas),
      maximum_iterations=num_diagonals)
  return betas.stack()


def transition_occupancies(lattice, scaled_alpha, scaled_beta):
  """Posterior probabilities of every blank and label transition.

  blank_occ(t, u) = P(path uses (t, u) -> (t+1, u) | x, y)
                  = exp(alpha(t, u) + blank(t, u) + beta(t+1, u) - log P),
  label_occ(t, u) = exp(alpha(t, u) + label(t, u) + beta(t, u+1) - log P).
  Both are normalised per diagonal (they sum to 1 over the transitions
  leaving diagonal n), which makes the per-diagonal scales cancel.

  Args:
    lattice: a `SkewedLattice`.
    scaled_alpha: [N, B, U+1] from `forward`.
    scaled_beta: [N + 1, B, U+1] from `backward`.

  Returns:
    (blank_occ, label_occ), float32 [N, B, U+1] each, exactly 0 off the
    lattice and on label transitions out of u = U_b.
  """
  num_diagonals, _, max_u_plus_1 = _dims(lattice.blank_log_probs)
  next_beta = scaled_beta[1:]
  blank_terms = scaled_alpha + lattice.blank_log_probs + next_beta
  label_terms = (scaled_alpha + lattice.label_log_probs +
                 tf.pad(next_beta[:, :, 1:], [[0, 0], [0, 0], [0, 1]],
                        constant_values=_NEG_INF))
  has_label = tf.range(max_u_plus_1)[tf.newaxis, :] < (
      lattice.label_lengths[:, tf.newaxis])
  blank_terms = tf.where(lattice.valid, blank_terms, _NEG_INF)
  label_terms = tf.where(lattice.valid & has_label, label_terms, _NEG_INF)
  del num_diagonals
  log_norm = tf.reduce_logsumexp(
      tf.concat([blank_terms, label_terms], axis=2), axis=2, keepdims=True)
  log_norm = tf.where(tf.math.is_inf(log_norm) & (log_norm < 0),
                      tf.zeros_like(log_norm), log_norm)
  return tf.exp(blank_terms - log_norm), tf.exp(label_terms - log_norm)
