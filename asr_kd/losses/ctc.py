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

Two implementations of the same loss: with dense labels `tf.nn.ctc_loss`
takes its pure-TF path (a `tf.scan` over frames), which XLA and TPUs
compile; with sparse labels it runs TF's C++ CTC kernel, which computes the
gradient in the same pass and is about 10x faster on CPU (docs/losses.md)
but cannot be XLA-compiled.
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
             label_lengths: tf.Tensor, blank: int = 0,
             sparse_kernel: bool = False) -> tf.Tensor:
  """CTC negative log-likelihood per utterance, 0 where CTC is infeasible.

  Args:
    logits: float [B, T, V] (any float dtype; computed in float32).
    labels: int [B, U] label ids, padded past `label_lengths`.
    logit_lengths: int [B] valid frames of `logits`.
    label_lengths: int [B] valid labels.
    blank: blank id (shared with the transducer's blank).
    sparse_kernel: use TF's C++ CTC kernel (CPU and GPU graph mode) instead
      of the pure-TF path (XLA, TPU).

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
  logits = tf.cast(logits, tf.float32)
  if sparse_kernel:
    per_example = _sparse_kernel_loss(logits, labels, logit_lengths,
                                      safe_label_lengths, blank)
  else:
    per_example = tf.nn.ctc_loss(
        labels=labels, logits=logits, label_length=safe_label_lengths,
        logit_length=logit_lengths, logits_time_major=False,
        blank_index=blank)
  return tf.where(feasible, per_example, tf.zeros_like(per_example))


def _sparse_kernel_loss(logits, labels, logit_lengths, label_lengths, blank):
  """`tf.nn.ctc_loss` on sparse labels, empty label sequences included.

  The C++ kernel rejects empty label sequences; those utterances get a
  one-label placeholder (result discarded) and the loss of the all-blank
  path computed here, as the dense path gives them.
  """
  empty = tf.equal(label_lengths, 0)
  placeholder = 1 if blank == 0 else 0
  labels = tf.where(empty[:, tf.newaxis], placeholder, labels)
  kernel_label_lengths = tf.where(empty, 1, label_lengths)
  # Entries past each length are dropped, so padding ids never count.
  valid = tf.sequence_mask(kernel_label_lengths, tf.shape(labels)[1])
  sparse_labels = tf.SparseTensor(
      indices=tf.where(valid), values=tf.boolean_mask(labels, valid),
      dense_shape=tf.cast(tf.shape(labels), tf.int64))
  kernel_loss = tf.nn.ctc_loss(
      labels=sparse_labels, logits=logits, label_length=None,
      logit_length=tf.where(empty, tf.maximum(logit_lengths, 1),
                            logit_lengths),
      logits_time_major=False, blank_index=blank)

  def with_all_blank_loss():
    blank_log_probs = tf.nn.log_softmax(logits)[:, :, blank]
    frames = tf.sequence_mask(logit_lengths, tf.shape(logits)[1], tf.float32)
    all_blank_loss = -tf.reduce_sum(blank_log_probs * frames, axis=1)
    return tf.where(empty, all_blank_loss, kernel_loss)

  # Empty transcripts are rare: skip the [B, T, V] log-softmax otherwise.
  return tf.cond(tf.reduce_any(empty), with_all_blank_loss,
                 lambda: kernel_loss)
