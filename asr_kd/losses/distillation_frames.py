"""Maps a teacher's lattice onto a student's encoder frames.

A teacher whose encoder emits `ratio` frames for every student frame (e.g. a
4x-subsampled Conformer teacher and an 8x-subsampled streaming student:
ratio 2) and a streaming student that emits `right_shift` frames later than
the teacher are distilled as follows. For student frame t:

  g = clip(t - right_shift, 0, M_b - 1),  M_b = ceil(teacher_length_b / ratio)
  P_mapped(. | t, u) = mean over the valid teacher frames
                       k in [g * ratio, (g + 1) * ratio) of P_teacher(. | k, u)

i.e. the log of the mean of the teacher's probabilities over each group of
`ratio` frames (a mixture, so every mapped distribution still sums to 1),
delayed by `right_shift` frames. The first `right_shift` student frames,
which have no earlier teacher frame, get copies of the first mapped frame
(edge padding: no assumption about which id is blank, and the first frames of
an utterance are silence for both models anyway); student frames past the
teacher's end get copies of its last mapped frame. A last group cut short by
the teacher's length averages only its valid frames.
"""

from typing import Optional, Tuple

import tensorflow as tf


def check_frame_mapping(ratio, right_shift) -> None:
  """Raises ValueError unless ratio is an int >= 1 and right_shift an int >= 0.

  A teacher with fewer frames than the student (ratio < 1) is not supported.
  """
  if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
    raise ValueError(
        f'teacher frame ratio must be an integer >= 1 (teacher frames per '
        f'student frame), got {ratio!r}.')
  if (isinstance(right_shift, bool) or not isinstance(right_shift, int) or
      right_shift < 0):
    raise ValueError(
        f'teacher right shift must be an integer >= 0 (student frames), got '
        f'{right_shift!r}.')


def mapped_lengths(teacher_lengths: tf.Tensor, ratio: int, right_shift: int,
                   num_student_frames) -> tf.Tensor:
  """Student-rate lengths of the mapped teacher: ceil(L / ratio) + shift.

  Args:
    teacher_lengths: [B] int, valid teacher frames.
    ratio: teacher frames per student frame.
    right_shift: delay in student frames.
    num_student_frames: Ts; lengths are clipped to it.

  Returns:
    [B] int32.
  """
  teacher_lengths = tf.cast(teacher_lengths, tf.int32)
  return tf.minimum((teacher_lengths + ratio - 1) // ratio + right_shift,
                    num_student_frames)


def teacher_frames_for_student_frames(
    student_frames: tf.Tensor, teacher_lengths: tf.Tensor, ratio: int,
    right_shift: int, num_teacher_frames) -> Tuple[tf.Tensor, tf.Tensor]:
  """Teacher frames pooled into each student frame (see module docstring).

  Args:
    student_frames: [N] int32 student frame indices.
    teacher_lengths: [B] int, valid teacher frames.
    ratio: teacher frames per student frame.
    right_shift: delay in student frames.
    num_teacher_frames: Tt, the teacher's padded number of frames.

  Returns:
    teacher_frames: [B, N, ratio] int32 indices into [0, Tt).
    valid: [B, N, ratio] bool, which of them are pooled (at least the first
      of every group, so a group is never empty).
  """
  teacher_lengths = tf.cast(teacher_lengths, tf.int32)
  groups_per_example = tf.maximum((teacher_lengths + ratio - 1) // ratio, 1)
  groups = tf.minimum(
      tf.maximum(tf.cast(student_frames, tf.int32)[None, :] - right_shift, 0),
      groups_per_example[:, None] - 1)
  offsets = tf.range(ratio)
  teacher_frames = groups[:, :, None] * ratio + offsets
  valid = ((teacher_frames < teacher_lengths[:, None, None]) |
           (offsets == 0)[None, None, :])
  teacher_frames = tf.minimum(teacher_frames, num_teacher_frames - 1)
  return teacher_frames, valid


def pool_log_probs(grouped_log_probs: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
  """log mean_k exp(log_probs[:, :, k]) over the valid k of each group.

  Args:
    grouped_log_probs: [B, N, ratio, U + 1, V].
    valid: [B, N, ratio] bool.

  Returns:
    [B, N, U + 1, V] log-probabilities.
  """
  masked = tf.where(valid[:, :, :, None, None], grouped_log_probs,
                    float('-inf'))
  counts = tf.reduce_sum(tf.cast(valid, grouped_log_probs.dtype), axis=2)
  return (tf.reduce_logsumexp(masked, axis=2) -
          tf.math.log(counts)[:, :, None, None])


def gather_and_pool(per_teacher_frame_fn, teacher_values: tf.Tensor,
                    student_frames: tf.Tensor, teacher_lengths: tf.Tensor,
                    ratio: int, right_shift: int) -> tf.Tensor:
  """Gathers teacher frames for `student_frames` and pools their log-probs.

  Args:
    per_teacher_frame_fn: maps gathered [B, N * ratio, ...] teacher values to
      log-probs [B, N * ratio, U + 1, V] (identity for log-probs; the joint
      network plus log-softmax for encoder outputs).
    teacher_values: [B, Tt, ...] teacher log-probs or encoder outputs.
    student_frames: [N] int32 student frame indices.
    teacher_lengths: [B] int, valid teacher frames.
    ratio: teacher frames per student frame.
    right_shift: delay in student frames.

  Returns:
    [B, N, U + 1, V] mapped teacher log-probs.
  """
  teacher_frames, valid = teacher_frames_for_student_frames(
      student_frames, teacher_lengths, ratio, right_shift,
      tf.shape(teacher_values)[1])
  batch_size = tf.shape(teacher_frames)[0]
  num_frames = tf.shape(teacher_frames)[1]
  gathered = tf.gather(
      teacher_values, tf.reshape(teacher_frames, [batch_size, -1]), axis=1,
      batch_dims=1)
  log_probs = per_teacher_frame_fn(gathered)
  if ratio == 1:
    return log_probs  # Groups of one frame: pooling is the identity.
  tail_shape = tf.shape(log_probs)[2:]
  grouped = tf.reshape(
      log_probs, tf.concat([[batch_size, num_frames, ratio], tail_shape], 0))
  return pool_log_probs(grouped, valid)


def map_teacher_log_probs_to_student_frames(
    teacher_log_probs: tf.Tensor,
    teacher_lengths: tf.Tensor,
    ratio: int,
    right_shift: int = 0,
    num_student_frames: Optional[int] = None) -> Tuple[tf.Tensor, tf.Tensor]:
  """Maps teacher log-probs at the teacher's frame rate onto student frames.

  Args:
    teacher_log_probs: [B, Tt, U + 1, V] teacher log-probabilities (already at
      the distillation temperature).
    teacher_lengths: [B] int, valid teacher frames.
    ratio: int >= 1, teacher frames per student frame.
    right_shift: int >= 0, delay of the student in student frames.
    num_student_frames: Ts; default ceil(Tt / ratio) + right_shift. Frames
      past it are dropped.

  Returns:
    log_probs: [B, Ts, U + 1, V] teacher log-probs on the student's frames.
    lengths: [B] int32, min(ceil(teacher_lengths / ratio) + right_shift, Ts).

  Raises:
    ValueError: if ratio or right_shift is not a valid integer.
  """
  check_frame_mapping(ratio, right_shift)
  if num_student_frames is None:
    num_teacher_frames = tf.shape(teacher_log_probs)[1]
    num_student_frames = (num_teacher_frames + ratio - 1) // ratio + right_shift
  log_probs = gather_and_pool(lambda gathered: gathered, teacher_log_probs,
                              tf.range(num_student_frames), teacher_lengths,
                              ratio, right_shift)
  return log_probs, mapped_lengths(teacher_lengths, ratio, right_shift,
                                   num_student_frames)
