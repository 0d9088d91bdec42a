"""Soft-target KL terms over an RNN-T lattice, with analytic gradients.

Both terms compare the teacher's and the student's next-symbol distributions
at every valid node (t, u) of the target sequence's lattice (t < T_b,
u <= U_b) and return one sum per example. The teacher is a constant: no
gradient ever flows to it. The student's gradient is written out analytically
(see docs/distillation.md, "Losses") instead of being left to autodiff, so
the backward pass is one fused elementwise kernel and nothing else of size
B*T*(U+1)*V is kept between the passes.

* `full_vocab_kl`: KL(P_teacher^tau || P_student^tau) over the whole
  vocabulary, blank included.
* `three_class_kl`: KL over the distributions collapsed to the classes
  {y_(u+1), blank, rest} (Panchapagesan et al., Interspeech 2021). At the
  last row u == U_b there is no next label, so the classes are {blank, rest}.

The kernels are XLA-compiled (`tf.function(jit_compile=True)`).
"""

import functools
from typing import Callable, Optional, Tuple

import tensorflow as tf

# Class ids of the three-class collapse.
LABEL_CLASS = 0
BLANK_CLASS = 1
REST_CLASS = 2
NUM_CLASSES = 3


def lattice_node_mask(logit_lengths: tf.Tensor, label_lengths: tf.Tensor,
                      num_frames, num_label_rows) -> tf.Tensor:
  """Marks the valid nodes of each example's RNN-T lattice.

  Args:
    logit_lengths: [B] int, valid encoder frames per example.
    label_lengths: [B] int, labels per example (U_b).
    num_frames: T, the padded number of frames.
    num_label_rows: U + 1, the padded number of label rows.

  Returns:
    [B, T, U + 1] bool, True where t < logit_lengths[b] and
    u <= label_lengths[b].
  """
  frame_valid = tf.range(num_frames)[None, :] < tf.cast(
      logit_lengths, tf.int32)[:, None]
  row_valid = tf.range(num_label_rows)[None, :] <= tf.cast(
      label_lengths, tf.int32)[:, None]
  return frame_valid[:, :, None] & row_valid[:, None, :]


def tempered_log_probs(logits: tf.Tensor, temperature: float) -> tf.Tensor:
  """log softmax(logits / temperature) in float32."""
  return tf.nn.log_softmax(tf.cast(logits, tf.float32) / temperature, axis=-1)


def three_class_ids(labels: tf.Tensor, label_lengths: tf.Tensor,
                    vocab_size, blank: int = 0) -> tf.Tensor:
  """Assigns every vocabulary entry to a class at every label row.

  Args:
    labels: [B, U] int target labels (padded entries are ignored).
    label_lengths: [B] int, U_b.
    vocab_size: V.
    blank: the blank id. Labels equal to blank are treated as absent (their
      row gets the classes {blank, rest}).

  Returns:
    [B, 1, U + 1, V] int32 in {LABEL_CLASS, BLANK_CLASS, REST_CLASS}; the
    frame axis has size 1 and broadcasts over T.
  """
  labels = tf.cast(labels, tf.int32)
  batch_size = tf.shape(labels)[0]
  # Row u predicts y_(u+1) = labels[:, u]; the last row U has no next label.
  next_labels = tf.concat(
      [labels, tf.fill([batch_size, 1], tf.constant(blank, tf.int32))], axis=1)
  rows = tf.range(tf.shape(next_labels)[1])
  has_next_label = rows[None, :] < tf.cast(label_lengths, tf.int32)[:, None]
  next_labels = tf.where(has_next_label, next_labels, -1)
  vocab_ids = tf.range(vocab_size)[None, None, :]
  class_ids = tf.where(
      vocab_ids == blank, BLANK_CLASS,
      tf.where(vocab_ids == next_labels[:, :, None], LABEL_CLASS, REST_CLASS))
  return class_ids[:, None, :, :]


def _node_weights(node_mask: tf.Tensor, scale: float) -> tf.Tensor:
  return tf.cast(node_mask, tf.float32) * scale


@functools.partial(tf.function, jit_compile=True)
def full_vocab_kl_and_grad(student_logits: tf.Tensor,
                           teacher_log_probs: tf.Tensor, node_mask: tf.Tensor,
                           temperature: float,
                           scale: float) -> Tuple[tf.Tensor, tf.Tensor]:
  """Full-vocabulary KL per example and its gradient w.r.t. student logits.

  Args:
    student_logits: [B, T, U + 1, V] raw student logits.
    teacher_log_probs: [B, T, U + 1, V] teacher log-probabilities, already at
      `temperature`.
    node_mask: [B, T, U + 1] bool, valid lattice nodes.
    temperature: tau, divides the student logits.
    scale: factor on every node's KL (tau**2 or 1).

  Returns:
    kl: [B] float32, scale * sum over valid nodes of KL(teacher || student).
    grad: [B, T, U + 1, V] float32, d kl / d student_logits; zero on padded
      nodes.
  """
  student_log_probs = tempered_log_probs(student_logits, temperature)
  teacher_probs = tf.exp(teacher_log_probs)
  node_kl = tf.reduce_sum(
      teacher_probs * (teacher_log_probs - student_log_probs), axis=-1)
  weights = _node_weights(node_mask, scale)
  # tf.where (not a product) so that garbage in padded logits cannot leak NaN.
  kl = tf.reduce_sum(tf.where(node_mask, node_kl * weights, 0.0), axis=[1, 2])
  grad = tf.where(
      node_mask[..., None],
      (tf.exp(student_log_probs) - teacher_probs) *
      (weights / temperature)[..., None], 0.0)
  return kl, grad


def _collapse(log_probs: tf.Tensor, class_ids: tf.Tensor) -> tf.Tensor:
  """log of the probability mass of each class: [..., V] -> [..., 3].

  An empty class (no next label at the last row; no "rest" when V == 2) gets
  log mass -inf.
  """
  return tf.stack([
      tf.reduce_logsumexp(
          tf.where(class_ids == class_id, log_probs, float('-inf')), axis=-1)
      for class_id in range(NUM_CLASSES)
  ], axis=-1)


@functools.partial(tf.function, jit_compile=True)
def three_class_kl_and_grad(student_logits: tf.Tensor,
                            teacher_log_probs: tf.Tensor, node_mask: tf.Tensor,
                            class_ids: tf.Tensor, temperature: float,
                            scale: float) -> Tuple[tf.Tensor, tf.Tensor]:
  """Three-class KL per example and its gradient w.r.t. student logits.

  With q = softmax(z / tau), Q_c = sum_{v in c} q_v and teacher class masses
  P_c, KL = sum_c P_c log(P_c / Q_c) and

    d KL / d z_v = (q_v - P_c(v) * q_v / Q_c(v)) / tau,

  where c(v) is the class of v (derivation in docs/distillation.md). The
  ratio q_v / Q_c is evaluated in log space so that it cannot overflow.

  Args:
    student_logits: [B, T, U + 1, V] raw student logits.
    teacher_log_probs: [B, T, U + 1, V] teacher log-probabilities, already at
      `temperature`.
    node_mask: [B, T, U + 1] bool, valid lattice nodes.
    class_ids: [B, 1 or T, U + 1, V] int32 from `three_class_ids`.
    temperature: tau, divides the student logits.
    scale: factor on every node's KL (tau**2 or 1).

  Returns:
    kl: [B] float32 and grad: [B, T, U + 1, V] float32, as in
    `full_vocab_kl_and_grad`.
  """
  student_log_probs = tempered_log_probs(student_logits, temperature)
  student_class_log_probs = _collapse(student_log_probs, class_ids)
  teacher_class_log_probs = _collapse(teacher_log_probs, class_ids)
  teacher_class_present = teacher_class_log_probs > float('-inf')
  # log(P_c / Q_c); -inf where the teacher gives the class no mass, which also
  # covers classes that are empty for both models.
  log_ratio = tf.where(teacher_class_present,
                       teacher_class_log_probs - student_class_log_probs,
                       float('-inf'))
  node_kl = tf.reduce_sum(
      tf.where(teacher_class_present,
               tf.exp(teacher_class_log_probs) * log_ratio, 0.0), axis=-1)
  weights = _node_weights(node_mask, scale)
  kl = tf.reduce_sum(tf.where(node_mask, node_kl * weights, 0.0), axis=[1, 2])
  log_ratio_of_entry = tf.where(
      class_ids == LABEL_CLASS, log_ratio[..., LABEL_CLASS:LABEL_CLASS + 1],
      tf.where(class_ids == BLANK_CLASS,
               log_ratio[..., BLANK_CLASS:BLANK_CLASS + 1],
               log_ratio[..., REST_CLASS:REST_CLASS + 1]))
  grad = tf.where(
      node_mask[..., None],
      (tf.exp(student_log_probs) -
       tf.exp(student_log_probs + log_ratio_of_entry)) *
      (weights / temperature)[..., None], 0.0)
  return kl, grad


KlKernel = Callable[[tf.Tensor, tf.Tensor, tf.Tensor], Tuple[tf.Tensor,
                                                             tf.Tensor]]


def kl_with_analytic_gradient(kernel: KlKernel, student_logits: tf.Tensor,
                              teacher_log_probs: tf.Tensor,
                              node_mask: tf.Tensor) -> tf.Tensor:
  """Runs `kernel` and attaches its analytic gradient to `student_logits`.

  Args:
    kernel: maps (student_logits, teacher_log_probs, node_mask) to
      (kl [B], d kl / d student_logits).
    student_logits: [B, T, U + 1, V].
    teacher_log_probs: [B, T, U + 1, V]; treated as a constant.
    node_mask: [B, T, U + 1] bool.

  Returns:
    [B] KL per example, differentiable w.r.t. `student_logits` only.
  """
  teacher_log_probs = tf.stop_gradient(teacher_log_probs)

  @tf.custom_gradient
  def kl_of_student(logits):
    kl, grad = kernel(logits, teacher_log_probs, node_mask)

    def grad_fn(upstream):
      return tf.cast(upstream[:, None, None, None] * grad, logits.dtype)

    return kl, grad_fn

  return kl_of_student(student_logits)


def scale_for(temperature: float, scale_by_temperature_squared: bool) -> float:
  """The per-node factor: tau**2 keeps gradient magnitudes tau-independent."""
  if temperature <= 0:
    raise ValueError(f'temperature must be > 0, got {temperature}.')
  return float(temperature)**2 if scale_by_temperature_squared else 1.0


def resolve_teacher_log_probs(teacher_logits: Optional[tf.Tensor],
                              teacher_log_probs: Optional[tf.Tensor],
                              temperature: float) -> tf.Tensor:
  """Returns tempered teacher log-probs from exactly one of the two inputs."""
  if (teacher_logits is None) == (teacher_log_probs is None):
    raise ValueError('Pass exactly one of teacher_logits and '
                     'teacher_log_probs.')
  if teacher_log_probs is not None:
    return tf.cast(teacher_log_probs, tf.float32)
  return tempered_log_probs(teacher_logits, temperature)


def full_vocab_kl(student_logits: tf.Tensor,
                  teacher_logits: Optional[tf.Tensor],
                  logit_lengths: tf.Tensor,
                  label_lengths: tf.Tensor,
                  temperature: float = 1.0,
                  scale_by_temperature_squared: bool = True,
                  teacher_log_probs: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Sum over valid lattice nodes of KL(P_teacher^tau || P_student^tau).

  Args:
    student_logits: [B, T, U + 1, V] student joint logits.
    teacher_logits: [B, T, U + 1, V] teacher joint logits on the same lattice
      (or None when `teacher_log_probs` is given).
    logit_lengths: [B] int, valid frames per example.
    label_lengths: [B] int, labels per example.
    temperature: tau > 0; both distributions are softmax(logits / tau).
    scale_by_temperature_squared: multiply the KL by tau**2.
    teacher_log_probs: alternatively, teacher log-probs already at `tau` (e.g.
      from `map_teacher_log_probs_to_student_frames`).

  Returns:
    [B] float32 KL summed over the valid (t, u) nodes of each example. Its
    gradient reaches the student logits only.
  """
  scale = scale_for(temperature, scale_by_temperature_squared)
  teacher_log_probs = resolve_teacher_log_probs(teacher_logits,
                                                teacher_log_probs, temperature)
  shape = tf.shape(student_logits)
  node_mask = lattice_node_mask(logit_lengths, label_lengths, shape[1],
                                shape[2])
  kernel = functools.partial(
      full_vocab_kl_and_grad, temperature=float(temperature), scale=scale)
  return kl_with_analytic_gradient(kernel, student_logits, teacher_log_probs,
                                   node_mask)


def three_class_kl(student_logits: tf.Tensor,
                   teacher_logits: Optional[tf.Tensor],
                   labels: tf.Tensor,
                   logit_lengths: tf.Tensor,
                   label_lengths: tf.Tensor,
                   blank: int = 0,
                   temperature: float = 1.0,
                   scale_by_temperature_squared: bool = True,
                   teacher_log_probs: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Sum over valid lattice nodes of the KL between collapsed distributions.

  At node (t, u) with u < U_b the classes are {y_(u+1), blank, rest}; at the
  last row u == U_b they are {blank, rest}.

  Args:
    student_logits: [B, T, U + 1, V] student joint logits.
    teacher_logits: [B, T, U + 1, V] teacher joint logits (or None when
      `teacher_log_probs` is given).
    labels: [B, U] int target labels (non-blank ids).
    logit_lengths: [B] int, valid frames per example.
    label_lengths: [B] int, labels per example.
    blank: the blank id.
    temperature: tau > 0, applied to the full distributions before collapsing.
    scale_by_temperature_squared: multiply the KL by tau**2.
    teacher_log_probs: alternatively, teacher log-probs already at `tau`.

  Returns:
    [B] float32 KL per example; gradient to the student logits only.
  """
  scale = scale_for(temperature, scale_by_temperature_squared)
  teacher_log_probs = resolve_teacher_log_probs(teacher_logits,
                                                teacher_log_probs, temperature)
  shape = tf.shape(student_logits)
  node_mask = lattice_node_mask(logit_lengths, label_lengths, shape[1],
                                shape[2])
  class_ids = three_class_ids(labels, label_lengths, shape[3], blank)
  kernel = functools.partial(
      three_class_kl_and_grad,
      class_ids=class_ids,
      temperature=float(temperature),
      scale=scale)
  return kl_with_analytic_gradient(kernel, student_logits, teacher_log_probs,
                                   node_mask)
