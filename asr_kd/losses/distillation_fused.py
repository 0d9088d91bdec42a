"""Memory-efficient soft-target KL computed from both models' joint inputs.

The unfused KL needs both models' [B, T, U + 1, V] logits at once. Here
`ChunkedKlTerm` is a `chunked_joint` term: the student's logits are built
one time chunk at a time by `chunked_joint.fused_losses`, the teacher's
tempered log-probs for the same chunk here, and each chunk is reduced to a
[B] KL and dropped; the backward pass recomputes the student's chunk logits,
applies the analytic gradient of the KL and back-propagates it through the
student's joint network only. Peak memory is O(B * time_chunk_size * (U + 1)
* V) per model (times the frame ratio for the teacher). The teacher gets no
gradient: its joint runs outside every gradient tape and its inputs are
stop_gradient'ed.
"""

from typing import Optional

import tensorflow as tf

from asr_kd.losses import chunked_joint
from asr_kd.losses import distillation_frames
from asr_kd.losses import distillation_kl

JointFn = chunked_joint.JointFn


class ChunkedKlTerm(chunked_joint.Term):
  """A KL of the student's chunk logits against the teacher's, as a term.

  The teacher's logits are tempered and mapped to the student's frames here,
  chunk by chunk, in the forward and again in the backward pass; the KL and
  its analytic gradient are a distillation_kl.KlKernel's on teacher
  log-probs.
  """
  num_example_values = 1

  def __init__(self, kind, teacher_encoder_out, teacher_pred_out,
               teacher_joint_fn, labels, logit_lengths, label_lengths,
               blank=0, temperature=1.0, scale_by_temperature_squared=True,
               teacher_lengths=None, teacher_frame_ratio=1,
               teacher_right_shift=0):
    """Binds the KL kernel of `kind` and the teacher.

    Args:
      kind: 'full' or 'three_class' (only the latter reads labels and blank).
      (The others are the arguments of `three_class_kl_from_joint`.)

    Raises:
      ValueError: for a bad temperature or frame mapping.
    """
    distillation_frames.check_frame_mapping(teacher_frame_ratio,
                                            teacher_right_shift)
    scale = distillation_kl.scale_for(temperature,
                                      scale_by_temperature_squared)
    if kind == 'full':
      self.kernel = distillation_kl.full_vocab_kernel(temperature, None, scale)
    else:
      self.kernel = distillation_kl.three_class_kernel(
          labels, label_lengths, blank, temperature, None, scale)
    self.teacher_encoder_out = tf.stop_gradient(teacher_encoder_out)
    self.teacher_pred_out = tf.stop_gradient(teacher_pred_out)
    self.teacher_joint_fn = teacher_joint_fn
    self.logit_lengths = tf.cast(logit_lengths, tf.int32)
    self.label_lengths = label_lengths
    self.temperature = temperature
    if teacher_lengths is None:
      teacher_lengths = tf.minimum(
          self.logit_lengths * teacher_frame_ratio,
          tf.shape(self.teacher_encoder_out)[1])
    self.teacher_lengths = teacher_lengths
    self.ratio = teacher_frame_ratio
    self.right_shift = teacher_right_shift

  def _teacher_and_mask(self, chunk):
    """The teacher's log-probs on the chunk's frames, and its node mask."""
    frames = chunk.start + tf.range(chunk.size)
    teacher_log_probs = distillation_frames.gather_and_pool(
        lambda encoder_frames: distillation_kl.tempered_log_probs(
            self.teacher_joint_fn(encoder_frames[:, :, None],
                                  self.teacher_pred_out[:, None]),
            self.temperature),
        self.teacher_encoder_out, frames, self.teacher_lengths, self.ratio,
        self.right_shift)
    node_mask = distillation_kl.chunk_node_mask(
        self.logit_lengths, self.label_lengths, chunk.start, chunk.size,
        tf.shape(chunk.logits)[2])
    return teacher_log_probs, node_mask

  def reduce_chunk(self, chunk):
    kl, _ = self.kernel.forward(chunk.logits, *self._teacher_and_mask(chunk))
    return (), (kl,)

  def output(self, frame_values, example_totals, vocab_size):
    del frame_values, vocab_size  # No per-frame values; V is the kernel's.
    return example_totals[0]

  def logits_gradient_fn(self, upstream, split):
    del split  # The teacher is recomputed per chunk, not kept.

    def gradient(chunk):
      teacher_log_probs, node_mask = self._teacher_and_mask(chunk)
      _, residuals = self.kernel.forward(chunk.logits, teacher_log_probs,
                                         node_mask)
      return self.kernel.backward(chunk.logits, teacher_log_probs, node_mask,
                                  residuals, upstream)

    return gradient


def full_vocab_kl_from_joint(student_encoder_out: tf.Tensor,
                             student_pred_out: tf.Tensor,
                             student_joint_fn: JointFn,
                             teacher_encoder_out: tf.Tensor,
                             teacher_pred_out: tf.Tensor,
                             teacher_joint_fn: JointFn,
                             logit_lengths: tf.Tensor,
                             label_lengths: tf.Tensor,
                             temperature: float = 1.0,
                             scale_by_temperature_squared: bool = True,
                             time_chunk_size: int = 16,
                             teacher_lengths: Optional[tf.Tensor] = None,
                             teacher_frame_ratio: int = 1,
                             teacher_right_shift: int = 0) -> tf.Tensor:
  """`full_vocab_kl` from joint inputs, one time chunk of logits at a time.

  Args:
    student_encoder_out: [B, T, Ds] student encoder outputs.
    student_pred_out: [B, U + 1, Ps] student prediction network outputs.
    student_joint_fn: (encoder [B, Tc, 1, Ds], pred [B, 1, U + 1, Ps]) ->
      logits [B, Tc, U + 1, V], the contract of
      `asr_kd.losses.rnnt.rnnt_loss_from_joint`; a pure function of its
      inputs and tf.Variables (no dropout: the backward pass calls it again).
      Its variables receive gradients.
    teacher_encoder_out: [B, Tt, Dt] teacher encoder outputs.
    teacher_pred_out: [B, U + 1, Pt] teacher prediction network outputs.
    teacher_joint_fn: the teacher's joint, same contract; gets no gradient.
    logit_lengths: [B] int, valid student frames.
    label_lengths: [B] int, labels per example.
    temperature: tau > 0.
    scale_by_temperature_squared: multiply the KL by tau**2.
    time_chunk_size: student frames per chunk.
    teacher_lengths: [B] int, valid teacher frames; default
      min(logit_lengths * teacher_frame_ratio, Tt).
    teacher_frame_ratio: teacher frames per student frame (int >= 1).
    teacher_right_shift: student delay in student frames (int >= 0).

  Returns:
    [B] KL per example, differentiable w.r.t. the student's encoder and
    prediction outputs and the variables its joint reads.
  """
  term = ChunkedKlTerm(
      'full', teacher_encoder_out, teacher_pred_out, teacher_joint_fn, None,
      logit_lengths, label_lengths, temperature=temperature,
      scale_by_temperature_squared=scale_by_temperature_squared,
      teacher_lengths=teacher_lengths,
      teacher_frame_ratio=teacher_frame_ratio,
      teacher_right_shift=teacher_right_shift)
  return chunked_joint.fused_losses(student_encoder_out, student_pred_out,
                                    student_joint_fn, [term],
                                    time_chunk_size)[0]


def three_class_kl_from_joint(student_encoder_out: tf.Tensor,
                              student_pred_out: tf.Tensor,
                              student_joint_fn: JointFn,
                              teacher_encoder_out: tf.Tensor,
                              teacher_pred_out: tf.Tensor,
                              teacher_joint_fn: JointFn,
                              labels: tf.Tensor,
                              logit_lengths: tf.Tensor,
                              label_lengths: tf.Tensor,
                              blank: int = 0,
                              temperature: float = 1.0,
                              scale_by_temperature_squared: bool = True,
                              time_chunk_size: int = 16,
                              teacher_lengths: Optional[tf.Tensor] = None,
                              teacher_frame_ratio: int = 1,
                              teacher_right_shift: int = 0) -> tf.Tensor:
  """`three_class_kl` from joint inputs, one time chunk at a time.

  Args:
    labels: [B, U] int target labels (non-blank ids).
    blank: the blank id.
    (The other arguments are those of `full_vocab_kl_from_joint`.)

  Returns:
    [B] KL per example, differentiable as in `full_vocab_kl_from_joint`.
  """
  term = ChunkedKlTerm('three_class', teacher_encoder_out, teacher_pred_out,
                       teacher_joint_fn, labels, logit_lengths, label_lengths,
                       blank, temperature, scale_by_temperature_squared,
                       teacher_lengths, teacher_frame_ratio,
                       teacher_right_shift)
  return chunked_joint.fused_losses(student_encoder_out, student_pred_out,
                                    student_joint_fn, [term],
                                    time_chunk_size)[0]
