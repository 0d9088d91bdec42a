"""Memory-efficient soft-target KL computed from both models' joint inputs.

The unfused KL needs both models' [B, T, U + 1, V] logits at once. Here the
logits are built one time chunk at a time from the encoder and prediction
network outputs, reduced to a [B] KL and dropped; the backward pass walks the
chunks again, recomputes them, applies the analytic gradient of the KL to the
student's chunk logits and back-propagates it through the student's joint
network only. Peak memory is O(B * time_chunk_size * (U + 1) * V) per model
(times the frame ratio for the teacher). The teacher gets no gradient: its
joint runs outside every gradient tape and its inputs are stop_gradient'ed.
"""

from typing import Callable, Optional

import tensorflow as tf

from asr_kd.losses import distillation_frames
from asr_kd.losses import distillation_kl

JointFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def _chunked_kl_from_joint(kernel, student_encoder_out, student_pred_out,
                           student_joint_fn, teacher_encoder_out,
                           teacher_pred_out, teacher_joint_fn, logit_lengths,
                           label_lengths, temperature, time_chunk_size,
                           teacher_lengths, teacher_frame_ratio,
                           teacher_right_shift):
  """Shared driver of the fused KLs.

  `kernel` is a distillation_kl.KlKernel that takes teacher log-probs
  (teacher_temperature None): the teacher's logits are tempered and mapped to
  the student's frames here, chunk by chunk.

  Returns:
    [B] KL per example.
  """
  if not isinstance(time_chunk_size, int) or time_chunk_size < 1:
    raise ValueError(
        f'time_chunk_size must be an integer >= 1, got {time_chunk_size!r}.')
  distillation_frames.check_frame_mapping(teacher_frame_ratio,
                                          teacher_right_shift)
  teacher_encoder_out = tf.stop_gradient(teacher_encoder_out)
  teacher_pred_out = tf.stop_gradient(teacher_pred_out)
  if teacher_lengths is None:
    teacher_lengths = tf.minimum(
        tf.cast(logit_lengths, tf.int32) * teacher_frame_ratio,
        tf.shape(teacher_encoder_out)[1])
  num_frames = tf.shape(student_encoder_out)[1]
  num_label_rows = tf.shape(student_pred_out)[1]
  num_chunks = (num_frames + time_chunk_size - 1) // time_chunk_size

  def teacher_log_probs(frames):
    return distillation_frames.gather_and_pool(
        lambda encoder_frames: distillation_kl.tempered_log_probs(
            teacher_joint_fn(encoder_frames[:, :, None],
                             teacher_pred_out[:, None]), temperature),
        teacher_encoder_out, frames, teacher_lengths, teacher_frame_ratio,
        teacher_right_shift)

  def chunk_inputs(padded_encoder_out, chunk_index):
    """Student encoder chunk, teacher log-probs and node mask of a chunk."""
    start = chunk_index * time_chunk_size
    frames = start + tf.range(time_chunk_size)
    encoder_shape = tf.shape(padded_encoder_out)
    # tf.slice with a static size compiles to an XLA dynamic slice.
    encoder_chunk = tf.slice(
        padded_encoder_out, [0, start, 0],
        [encoder_shape[0], time_chunk_size, encoder_shape[2]])
    # Frames in the padding beyond T are invalid for every example.
    node_mask = distillation_kl.lattice_node_mask(
        tf.clip_by_value(
            tf.cast(logit_lengths, tf.int32) - start, 0, time_chunk_size),
        label_lengths, time_chunk_size, num_label_rows)
    return encoder_chunk, teacher_log_probs(frames), node_mask

  @tf.custom_gradient
  def fused_kl(encoder_out, pred_out):
    # Gradients come from grad_fn only; cut the inputs so that an eager tape
    # does not record the forward chunks (it still records the joint's
    # variable reads: the O(chunk) memory bound holds inside tf.function).
    encoder_out = tf.stop_gradient(encoder_out)
    pred_out = tf.stop_gradient(pred_out)
    padded_encoder_out = tf.pad(
        encoder_out,
        [[0, 0], [0, num_chunks * time_chunk_size - num_frames], [0, 0]])

    def forward_step(chunk_index, kl_sum):
      encoder_chunk, teacher_chunk, node_mask = chunk_inputs(
          padded_encoder_out, chunk_index)
      chunk_kl, _ = kernel.forward(
          student_joint_fn(encoder_chunk[:, :, None], pred_out[:, None]),
          teacher_chunk, node_mask)
      return chunk_index + 1, kl_sum + chunk_kl

    batch_size = tf.shape(pred_out)[0]
    _, kl = tf.while_loop(lambda chunk_index, _: chunk_index < num_chunks,
                          forward_step, (0, tf.zeros([batch_size])))

    def grad_fn(upstream, variables=None):
      variables = list(variables or [])
      # Which variables the student's joint reads is only known once the
      # backward step is traced; the teacher's ones get None.
      unused_variables = set()

      def backward_step(chunk_index, encoder_grads, pred_grad, *var_grads):
        encoder_chunk, teacher_chunk, node_mask = chunk_inputs(
            padded_encoder_out, chunk_index)
        with tf.GradientTape() as tape:
          tape.watch([encoder_chunk, pred_out])
          student_chunk_logits = student_joint_fn(encoder_chunk[:, :, None],
                                                  pred_out[:, None])
        _, residuals = kernel.forward(student_chunk_logits, teacher_chunk,
                                      node_mask)
        logits_grad = tf.cast(
            kernel.backward(student_chunk_logits, teacher_chunk, node_mask,
                            residuals, upstream), student_chunk_logits.dtype)
        grads = tape.gradient(
            student_chunk_logits, [encoder_chunk, pred_out] + variables,
            output_gradients=logits_grad,
            unconnected_gradients=tf.UnconnectedGradients.NONE)
        new_var_grads = []
        for index, (grad, total) in enumerate(zip(grads[2:], var_grads)):
          if grad is None:
            unused_variables.add(index)
            new_var_grads.append(total)
          else:
            new_var_grads.append(total + tf.convert_to_tensor(grad))
        encoder_grads = encoder_grads.write(chunk_index, grads[0])
        return (chunk_index + 1, encoder_grads, pred_grad + grads[1],
                *new_var_grads)

      initial = (0,
                 tf.TensorArray(padded_encoder_out.dtype, size=num_chunks,
                                element_shape=None),
                 tf.zeros_like(pred_out),
                 *[tf.zeros_like(variable) for variable in variables])
      results = tf.while_loop(
          lambda chunk_index, *_: chunk_index < num_chunks, backward_step,
          initial)
      chunk_grads = results[1].stack()  # [num_chunks, B, chunk, D]
      encoder_grad = tf.reshape(
          tf.transpose(chunk_grads, [1, 0, 2, 3]),
          [batch_size, num_chunks * time_chunk_size, -1])[:, :num_frames]
      var_grads = [
          None if index in unused_variables else grad
          for index, grad in enumerate(results[3:])
      ]
      return [encoder_grad, results[2]], var_grads

    return kl, grad_fn

  return fused_kl(student_encoder_out, student_pred_out)


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
  kernel = distillation_kl.full_vocab_kernel(
      temperature, None,
      distillation_kl.scale_for(temperature, scale_by_temperature_squared))
  return _chunked_kl_from_joint(
      kernel, student_encoder_out, student_pred_out, student_joint_fn,
      teacher_encoder_out, teacher_pred_out, teacher_joint_fn, logit_lengths,
      label_lengths, temperature, time_chunk_size, teacher_lengths,
      teacher_frame_ratio, teacher_right_shift)


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
  kernel = distillation_kl.three_class_kernel(
      labels, label_lengths, blank, temperature, None,
      distillation_kl.scale_for(temperature, scale_by_temperature_squared))
  return _chunked_kl_from_joint(
      kernel, student_encoder_out, student_pred_out, student_joint_fn,
      teacher_encoder_out, teacher_pred_out, teacher_joint_fn, logit_lengths,
      label_lengths, temperature, time_chunk_size, teacher_lengths,
      teacher_frame_ratio, teacher_right_shift)
