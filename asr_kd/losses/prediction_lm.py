"""Auxiliary language-model loss on the prediction network.

The counterpart of the encoder's auxiliary CTC loss (`asr_kd.losses.ctc`): a
linear head over the prediction network's outputs is trained to predict the
next label from the labels before it (`task.loss.prediction_lm_weight`), so
the prediction network learns the spelling of the training transcripts from
a direct per-token signal instead of only through the transducer's joint.
The head is used in training only.
"""

import tensorflow as tf


def next_label_cross_entropy(logits: tf.Tensor, labels: tf.Tensor,
                             label_lengths: tf.Tensor) -> tf.Tensor:
  """Summed next-label cross-entropy per utterance.

  Position u of the prediction network has seen the start symbol and
  labels[:, :u]; its logits are scored against labels[:, u]. The last
  position (all labels seen) has no target: there is no end-of-sentence
  label.

  Args:
    logits: float [B, U + 1, V] (any float dtype; computed in float32).
    labels: int [B, U] label ids, padded past `label_lengths`.
    label_lengths: int [B] valid labels.

  Returns:
    float32 [B], -sum_u log P(labels[b, u] | labels[b, :u]) over valid u.
  """
  labels = tf.cast(labels, tf.int32)
  max_labels = tf.shape(labels)[1]
  logits = tf.cast(logits[:, :max_labels], tf.float32)
  per_token = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits)
  valid = tf.sequence_mask(label_lengths, max_labels, tf.float32)
  return tf.reduce_sum(per_token * valid, axis=1)
