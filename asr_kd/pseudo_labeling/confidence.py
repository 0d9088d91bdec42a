"""Utterance confidence of a beam-search hypothesis.

The confidence of the chosen hypothesis is its posterior within the final
beam: softmax over the K beam scores (log-probabilities of distinct label
prefixes, each summed over its alignments), taken at the chosen hypothesis:

  confidence = exp(score_best - logsumexp_k score_k)

It lies in (0, 1]; empty beam slots (score -inf) contribute nothing. It is
close to 1 when the teacher puts nearly all the beam's mass on one label
sequence and drops when competing transcripts are nearly as likely, which
is what a pseudo-label filter needs. It is relative to the beam, not a
calibrated probability: with beam_size=1 it is always 1.
"""

import tensorflow as tf


def beam_posterior(scores: tf.Tensor, chosen: tf.Tensor) -> tf.Tensor:
  """Posterior of the chosen hypothesis among the beam's hypotheses.

  Args:
    scores: float [B, K] beam log-probabilities, -inf for empty slots; at
      least one finite score per row.
    chosen: int [B] index of the chosen hypothesis of each row.

  Returns:
    float32 [B] confidences in (0, 1].
  """
  scores = tf.cast(scores, tf.float32)
  log_posteriors = scores - tf.reduce_logsumexp(scores, axis=1,
                                                keepdims=True)
  chosen_log_posterior = tf.gather(log_posteriors, tf.cast(chosen, tf.int32),
                                   batch_dims=1)
  # Rounding can put exp() a hair above 1 when one hypothesis has it all.
  return tf.minimum(tf.exp(chosen_log_posterior), 1.0)
