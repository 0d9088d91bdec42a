"""Soft-target knowledge distillation loss for RNN-T students.

  L_b = L_rnnt(student; y_b) + alpha * KL_b

where KL_b sums, over every valid node (t, u) of the lattice of the target
y_b (ground truth or the teacher's pseudo-label), either the full-vocabulary
KL(P_teacher^tau || P_student^tau) (`kind='full'`) or the KL between the
distributions collapsed to {y_(u+1), blank, rest} (`kind='three_class'`).
See docs/distillation.md ("Losses") for the definitions, gradients and the
teacher-to-student frame mapping.

`distillation_loss` takes both models' full logits;
`distillation_loss_from_joint` takes encoder and prediction network outputs and
computes the student's logits chunk by chunk, once per chunk for both terms
(`chunked_joint`; no B*T*(U+1)*V tensor is kept).

The KL terms themselves live in `distillation_kl` (unfused),
`distillation_fused` (chunked) and `distillation_frames` (frame-rate mapping);
they are re-exported here.
"""

from typing import Any, Mapping, NamedTuple, Optional

import tensorflow as tf

from asr_kd.losses import chunked_joint
from asr_kd.losses import distillation_frames
from asr_kd.losses import distillation_fused
from asr_kd.losses import distillation_kl
from asr_kd.losses import rnnt
from asr_kd.losses import sparse_kl

full_vocab_kl = distillation_kl.full_vocab_kl
three_class_kl = distillation_kl.three_class_kl
full_vocab_kl_from_joint = distillation_fused.full_vocab_kl_from_joint
three_class_kl_from_joint = distillation_fused.three_class_kl_from_joint
map_teacher_log_probs_to_student_frames = (
    distillation_frames.map_teacher_log_probs_to_student_frames)

KINDS = ('full', 'three_class')


class DistillationLoss(NamedTuple):
  """Per-example parts of the loss, each [B] float32."""
  total: tf.Tensor  # rnnt + alpha * kl.
  rnnt: tf.Tensor  # The student's RNN-T negative log-likelihood.
  kl: tf.Tensor  # The soft-target KL (already tau**2-scaled if asked).


def _check_kind_and_alpha(kind: str, alpha: float) -> None:
  if kind not in KINDS:
    raise ValueError(f'distillation kind must be one of {KINDS}, got '
                     f'{kind!r}.')
  if alpha < 0:
    raise ValueError(f'distillation alpha must be >= 0, got {alpha}.')


def _default_teacher_lengths(teacher_lengths, logit_lengths, ratio,
                             num_teacher_frames):
  if teacher_lengths is not None:
    return teacher_lengths
  return tf.minimum(tf.cast(logit_lengths, tf.int32) * ratio,
                    num_teacher_frames)


def distillation_loss(student_logits: tf.Tensor,
                      teacher_logits: tf.Tensor,
                      labels: tf.Tensor,
                      logit_lengths: tf.Tensor,
                      label_lengths: tf.Tensor,
                      kind: str = 'full',
                      alpha: float = 0.01,
                      temperature: float = 1.0,
                      scale_by_temperature_squared: bool = True,
                      blank: int = 0,
                      teacher_lengths: Optional[tf.Tensor] = None,
                      teacher_frame_ratio: int = 1,
                      teacher_right_shift: int = 0,
                      rnnt_options: Optional[Mapping[str, Any]] = None
                     ) -> DistillationLoss:
  """RNN-T loss of the student plus alpha times the soft-target KL.

  Args:
    student_logits: [B, T, U + 1, V] student joint logits.
    teacher_logits: [B, Tt, U + 1, V] teacher joint logits on the same labels;
      Tt = T unless `teacher_frame_ratio` > 1.
    labels: [B, U] int targets (ground truth or pseudo-labels), non-blank.
    logit_lengths: [B] int, valid student frames.
    label_lengths: [B] int, labels per example.
    kind: 'full' (whole vocabulary) or 'three_class'.
    alpha: KL weight (the paper's scale: 0.01-0.001).
    temperature: tau > 0 for both models.
    scale_by_temperature_squared: multiply the KL by tau**2.
    blank: the blank id.
    teacher_lengths: [B] int, valid teacher frames; default
      min(logit_lengths * teacher_frame_ratio, Tt).
    teacher_frame_ratio: teacher frames per student frame (int >= 1).
    teacher_right_shift: student delay in student frames (int >= 0).
    rnnt_options: extra keyword arguments of `rnnt.rnnt_loss` (e.g.
      fastemit_lambda, clamp).

  Returns:
    DistillationLoss of [B] tensors; gradients reach the student only.

  Raises:
    ValueError: for an unknown kind, negative alpha, bad temperature or bad
      frame mapping.
  """
  _check_kind_and_alpha(kind, alpha)
  distillation_frames.check_frame_mapping(teacher_frame_ratio,
                                          teacher_right_shift)
  kl_options = dict(
      temperature=temperature,
      scale_by_temperature_squared=scale_by_temperature_squared)
  if teacher_frame_ratio == 1 and teacher_right_shift == 0:
    # The kernels temper and normalise the teacher's logits on the fly.
    kl_options.update(teacher_logits=teacher_logits)
  else:
    teacher_log_probs, _ = (
        distillation_frames.map_teacher_log_probs_to_student_frames(
            distillation_kl.tempered_log_probs(
                tf.stop_gradient(teacher_logits), temperature),
            _default_teacher_lengths(teacher_lengths, logit_lengths,
                                     teacher_frame_ratio,
                                     tf.shape(teacher_logits)[1]),
            teacher_frame_ratio, teacher_right_shift,
            num_student_frames=tf.shape(student_logits)[1]))
    kl_options.update(teacher_logits=None,
                      teacher_log_probs=teacher_log_probs)
  if kind == 'full':
    kl = distillation_kl.full_vocab_kl(student_logits,
                                       logit_lengths=logit_lengths,
                                       label_lengths=label_lengths,
                                       **kl_options)
  else:
    kl = distillation_kl.three_class_kl(student_logits, labels=labels,
                                        logit_lengths=logit_lengths,
                                        label_lengths=label_lengths,
                                        blank=blank, **kl_options)
  rnnt_nll = rnnt.rnnt_loss(student_logits, labels, logit_lengths,
                            label_lengths, blank=blank,
                            **(rnnt_options or {}))
  return DistillationLoss(total=rnnt_nll + alpha * kl, rnnt=rnnt_nll, kl=kl)


def distillation_loss_from_joint(student_encoder_out: tf.Tensor,
                                 student_pred_out: tf.Tensor,
                                 student_joint_fn: distillation_fused.JointFn,
                                 teacher_encoder_out: tf.Tensor,
                                 teacher_pred_out: tf.Tensor,
                                 teacher_joint_fn: distillation_fused.JointFn,
                                 labels: tf.Tensor,
                                 logit_lengths: tf.Tensor,
                                 label_lengths: tf.Tensor,
                                 kind: str = 'full',
                                 alpha: float = 0.01,
                                 temperature: float = 1.0,
                                 scale_by_temperature_squared: bool = True,
                                 blank: int = 0,
                                 time_chunk_size: int = 16,
                                 teacher_lengths: Optional[tf.Tensor] = None,
                                 teacher_frame_ratio: int = 1,
                                 teacher_right_shift: int = 0,
                                 rnnt_options: Optional[Mapping[str,
                                                                Any]] = None
                                ) -> DistillationLoss:
  """`distillation_loss` from joint inputs, logits built chunk by chunk.

  The RNN-T loss and the KL are two terms of one `chunked_joint.fused_losses`
  pass: the student's joint runs once per chunk in the forward and once in
  the backward pass, whose single tape.gradient per chunk back-propagates
  the sum of both logit gradients. At most [B, time_chunk_size, U + 1, V]
  logits per model are alive.

  Args:
    student_encoder_out: [B, T, Ds] student encoder outputs.
    student_pred_out: [B, U + 1, Ps] student prediction network outputs.
    student_joint_fn: (encoder [B, Tc, 1, Ds], pred [B, 1, U + 1, Ps]) ->
      logits [B, Tc, U + 1, V]; pure (no dropout).
    teacher_encoder_out: [B, Tt, Dt] teacher encoder outputs.
    teacher_pred_out: [B, U + 1, Pt] teacher prediction network outputs.
    teacher_joint_fn: the teacher's joint, same contract.
    time_chunk_size: frames per joint evaluation (both losses).
    (The other arguments are those of `distillation_loss`; `rnnt_options`
    takes the keyword arguments of `rnnt.rnnt_loss_from_joint` but
    time_chunk_size.)

  Returns:
    DistillationLoss of [B] tensors; gradients reach the student's encoder
    and prediction outputs and joint variables only.
  """
  _check_kind_and_alpha(kind, alpha)
  student_encoder_out = tf.convert_to_tensor(student_encoder_out)
  student_pred_out = tf.convert_to_tensor(student_pred_out)
  rnnt_term = rnnt.ChunkedRnntTerm(
      student_encoder_out, student_pred_out, labels, logit_lengths,
      label_lengths, blank=blank, **(rnnt_options or {}))
  kl_term = distillation_fused.ChunkedKlTerm(
      kind, teacher_encoder_out, teacher_pred_out, teacher_joint_fn, labels,
      logit_lengths, label_lengths, blank, temperature,
      scale_by_temperature_squared, teacher_lengths, teacher_frame_ratio,
      teacher_right_shift)
  rnnt_nll, kl = chunked_joint.fused_losses(
      student_encoder_out, student_pred_out, student_joint_fn,
      [rnnt_term, kl_term], time_chunk_size)
  return DistillationLoss(total=rnnt_nll + alpha * kl, rnnt=rnnt_nll, kl=kl)


# Stored frames farther than this from the student's are targets of another
# frame rate (a wrong --frame_ratio), which the mapping would stretch silently.
STORED_FRAME_TOLERANCE = 2


def _check_stored_frames(target_frames: tf.Tensor, logit_lengths: tf.Tensor,
                         start_offset_frames: Optional[tf.Tensor]) -> None:
  """Fails the step where M_b is not the student's frames T_b (+- 2).

  XLA ignores assertions, so a compiled step does not check.
  """
  student_frames = tf.cast(logit_lengths, tf.int32)
  if start_offset_frames is not None:
    student_frames -= tf.cast(start_offset_frames, tf.int32)
  tf.debugging.assert_less_equal(
      tf.abs(tf.cast(target_frames, tf.int32) - student_frames),
      STORED_FRAME_TOLERANCE,
      message=('stored teacher targets have a frame count unlike the '
               "student's encoder frames; were they written with the "
               "--frame_ratio of this student's subsampling? "
               '(teacher_target_frames vs encoder frames)'))


def stored_target_loss(student_encoder_out: tf.Tensor,
                       student_pred_out: tf.Tensor,
                       student_joint_fn: distillation_fused.JointFn,
                       targets: sparse_kl.TopKTargets,
                       target_frames: tf.Tensor,
                       labels: tf.Tensor,
                       logit_lengths: tf.Tensor,
                       label_lengths: tf.Tensor,
                       alpha: float = 0.01,
                       temperature: float = 1.0,
                       scale_by_temperature_squared: bool = True,
                       blank: int = 0,
                       teacher_right_shift: int = 0,
                       start_offset_frames: Optional[tf.Tensor] = None,
                       time_chunk_size: Optional[int] = None,
                       rnnt_options: Optional[Mapping[str, Any]] = None
                      ) -> DistillationLoss:
  """The student's RNN-T loss plus alpha times the KL to stored targets.

  Args:
    student_encoder_out, student_pred_out, student_joint_fn: as in
      `distillation_loss_from_joint`.
    targets: TopKTargets [B, M, U + 1, k] at the student's frame rate
      (asr_kd.bin.teacher_targets), tempered at `temperature`.
    target_frames: [B] int, stored frames M_b per example.
    start_offset_frames: [B] int, student frames of zeros the input
      pipeline's start offset put before the audio the targets are of
      (added to teacher_right_shift per example); None: none.
    time_chunk_size: frames per joint evaluation: both terms in one
      `chunked_joint` pass; None: on the full logits.
    (The others are those of `distillation_loss`.)

  Returns:
    DistillationLoss of [B] tensors.
  """
  _check_kind_and_alpha('full', alpha)
  distillation_frames.check_frame_mapping(1, teacher_right_shift)
  _check_stored_frames(target_frames, logit_lengths, start_offset_frames)
  right_shift = teacher_right_shift
  if start_offset_frames is not None:
    right_shift = teacher_right_shift + tf.cast(start_offset_frames,
                                                tf.int32)
  kl_options = dict(temperature=temperature,
                    scale_by_temperature_squared=scale_by_temperature_squared)
  if time_chunk_size is None:
    logits = student_joint_fn(student_encoder_out[:, :, tf.newaxis],
                              student_pred_out[:, tf.newaxis])
    mapped = sparse_kl.map_stored_targets(
        targets, target_frames, tf.range(tf.shape(logits)[1]), right_shift)
    kl = sparse_kl.top_k_kl(logits, mapped, logit_lengths, label_lengths,
                            **kl_options)
    rnnt_nll = rnnt.rnnt_loss(logits, labels, logit_lengths, label_lengths,
                              blank=blank, **(rnnt_options or {}))
  else:
    rnnt_term = rnnt.ChunkedRnntTerm(
        student_encoder_out, student_pred_out, labels, logit_lengths,
        label_lengths, blank=blank, **(rnnt_options or {}))
    kl_term = sparse_kl.ChunkedTopKTerm(
        targets, target_frames, logit_lengths, label_lengths,
        right_shift=right_shift, **kl_options)
    rnnt_nll, kl = chunked_joint.fused_losses(
        student_encoder_out, student_pred_out, student_joint_fn,
        [rnnt_term, kl_term], time_chunk_size)
  return DistillationLoss(total=rnnt_nll + alpha * kl, rnnt=rnnt_nll, kl=kl)
