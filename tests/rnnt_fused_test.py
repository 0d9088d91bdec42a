"""rnnt_loss_from_joint (chunked joint) against the unfused rnnt_loss path."""

import numpy as np
import tensorflow as tf

from asr_kd.losses import rnnt


class TinyJoint(tf.Module):
  """tanh(enc W_e + pred W_p + b) W_o: the usual RNN-T joint, with variables."""

  def __init__(self, encoder_dim, predictor_dim, hidden, vocab, seed):
    rng = np.random.default_rng(seed)
    def weight(*shape):
      return tf.Variable(rng.normal(scale=0.5, size=shape).astype(np.float32))
    self.encoder_proj = weight(encoder_dim, hidden)
    self.predictor_proj = weight(predictor_dim, hidden)
    self.bias = weight(hidden)
    self.output_proj = weight(hidden, vocab)

  def __call__(self, encoder_frames, predictor_states):
    hidden = tf.tanh(tf.matmul(encoder_frames, self.encoder_proj) +
                     tf.matmul(predictor_states, self.predictor_proj) +
                     self.bias)
    return tf.matmul(hidden, self.output_proj)


def fused_and_unfused(case, joint, jit, **kwargs):
  """(loss, [d enc, d pred] + d variables) for both paths, in one function."""
  encoder_out, predictor_out, labels, logit_lengths, label_lengths = case
  variables = list(joint.trainable_variables)

  @tf.function(jit_compile=jit)
  def run(encoder_out, predictor_out, labels, logit_lengths, label_lengths):
    results = []
    for fused in (True, False):
      with tf.GradientTape() as tape:
        tape.watch([encoder_out, predictor_out])
        if fused:
          loss = rnnt.rnnt_loss_from_joint(
              encoder_out, predictor_out, joint, labels, logit_lengths,
              label_lengths, **kwargs)
        else:
          logits = joint(encoder_out[:, :, None], predictor_out[:, None])
          loss = rnnt.rnnt_loss(logits, labels, logit_lengths, label_lengths,
                                **{k: v for k, v in kwargs.items()
                                   if k != 'time_chunk_size'})
        # Non-uniform weights check that the upstream gradient is applied.
        weighted = tf.reduce_sum(loss * tf.range(1.0, 1.0 + len(case[2])))
      results.append((loss, tape.gradient(
          weighted, [encoder_out, predictor_out] + variables)))
    return results

  return run(*[tf.constant(x) for x in case])


def random_case(rng, batch, max_t, max_u, encoder_dim, predictor_dim, vocab):
  logit_lengths = rng.integers(1, max_t + 1, size=batch).astype(np.int32)
  label_lengths = rng.integers(0, max_u + 1, size=batch).astype(np.int32)
  logit_lengths[0], label_lengths[0] = max_t, max_u
  labels = rng.integers(1, vocab, size=(batch, max_u)).astype(np.int32)
  encoder_out = rng.normal(size=(batch, max_t, encoder_dim)).astype(np.float32)
  predictor_out = rng.normal(
      size=(batch, max_u + 1, predictor_dim)).astype(np.float32)
  return encoder_out, predictor_out, labels, logit_lengths, label_lengths


class RnntFusedTest(tf.test.TestCase):

  def test_fused_matches_unfused_loss_and_all_gradients(self):
    rng = np.random.default_rng(0)
    settings = [  # (shape, chunk, jit, extra kwargs)
        ((3, 13, 5, 6, 4, 11), 4, True, {}),  # 13 frames: ragged last chunk.
        ((2, 9, 3, 5, 7, 8), 9, False, dict(fastemit_lambda=0.2)),
        ((2, 7, 4, 3, 3, 6), 1, True, dict(blank=5)),
        # V > 32: the blocked sums of vocab_reductions, per chunk.
        ((2, 6, 3, 5, 4, 70), 4, True, {}),
    ]
    for shape, chunk, jit, kwargs in settings:
      batch, max_t, max_u, encoder_dim, predictor_dim, vocab = shape
      case = random_case(rng, batch, max_t, max_u, encoder_dim,
                         predictor_dim, vocab)
      if kwargs.get('blank') == vocab - 1:
        case[2][case[2] == vocab - 1] = 1
      joint = TinyJoint(encoder_dim, predictor_dim, 8, vocab, seed=1)
      with self.subTest(shape=shape, chunk=chunk, jit=jit, **kwargs):
        (fused_loss, fused_grads), (loss, grads) = fused_and_unfused(
            case, joint, jit, time_chunk_size=chunk, **kwargs)
        np.testing.assert_allclose(fused_loss, loss, rtol=1e-5)
        self.assertLen(fused_grads, 2 + len(joint.trainable_variables))
        for fused_grad, grad in zip(fused_grads, grads):
          np.testing.assert_allclose(fused_grad, grad, rtol=1e-5, atol=1e-5)
        # Frames past each example's length get no encoder gradient.
        frames = np.arange(max_t)[None, :] >= case[3][:, None]
        self.assertTrue(np.all(fused_grads[0].numpy()[frames] == 0.0))

  def test_bad_chunk_size_is_a_value_error(self):
    joint = TinyJoint(2, 2, 2, 3, seed=0)
    with self.assertRaisesRegex(ValueError, 'time_chunk_size'):
      rnnt.rnnt_loss_from_joint(
          np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 2), np.float32),
          joint, [[1]], [2], [1], time_chunk_size=0)


if __name__ == '__main__':
  tf.test.main()
