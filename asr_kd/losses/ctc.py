"""Auxiliary CTC loss on the encoder outputs.

A linear CTC head on the encoder, trained next to the transducer
(`task.loss.ctc_weight`), gives the encoder a direct frame-level signal from
the first step; the RNN-T loss alone learns its alignment slowly while the
prediction network still dominates. The head is used in training only.

CTC needs `T >= U + (number of adjacent repeated labels)` frames (a blank
separates repeats). With 6x or 8x subsampling, fast speech can break that,
and TF's CTC then returns +inf; such utterances get a zero CTC loss (their
labels are treated as empty and the result is masked) so they train on the
transducer loss alone instead of producing a non-finite step.

Labels are passed dense, so `tf.nn.ctc_loss` takes its pure-TF path, which
XLA and TPUs compile (the sparse path is a CPU/cuDNN kernel).
"""

import tensorflow as tf


def ctc_feasible(labels: tf.Tensor, logit_lengths: tf.Tensor,
                 label_lengths: tf.Tensor) -> tf.Tensor:
  """bool [B]: whether a CTC path of `logit_lengths` frames can emit labels.

  Args:
    labels: int [B, U] padded label ids.
    logit_lengths: int [B] valid frames.
    label_lengths: int [B] valid labels.
  """
  labels = tf.convert_to_tensor(labels)
  label_lengths = tf.cast(label_lengths, tf.int32)
  positions = tf.range(tf.shape(labels)[1] - 1)[tf.newaxis]
  repeats = tf.logical_and(tf.equal(labels[:, 1:], labels[:, :-1]),
                           positions + 1 < label_lengths[:, tf.newaxis])
  required = label_lengths + tf.reduce_sum(tf.cast(repeats, tf.int32), axis=1)
  return tf.cast(logit_lengths, tf.int32) >= required


def ctc_loss(logits: tf.Tensor, labels: tf.Tensor, logit_lengths: tf.Tensor,
             label_lengths: tf.Tensor, blank: int = 0) -> tf.Tensor:
  """CTC negative log-likelihood per utterance, 0 where CTC is infeasible.

  Args:
    logits: float [B, T, V] (any float dtype; computed in float32).
    labels: int [B, U] label ids, padded past `label_lengths`.
    logit_lengths: int [B] valid frames of `logits`.
    label_lengths: int [B] valid labels.
    blank: blank id (shared with the transducer's blank).

  Returns:
    float32 [B].
  """
  labels = tf.cast(labels, tf.int32)
  logit_lengths = tf.cast(logit_lengths, tf.int32)
  label_lengths = tf.cast(label_lengths, tf.int32)
  feasible = ctc_feasible(labels, logit_lengths, label_lengths)
  # An empty label sequence is always feasible, so infeasible utterances
  # contribute a finite value (masked below) and finite gradients.
  safe_label_lengths = tf.where(feasible, label_lengths, 0)
  per_example = tf.nn.ctc_loss(
      labels=labels, logits=tf.cast(logits, tf.float32),
      label_length=safe_label_lengths, logit_length=logit_lengths,
      logits_time_major=False, blank_index=blank)
  return tf.where(feasible, per_example, tf.zeros_like(per_example))
