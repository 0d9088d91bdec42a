"""The training objective: the one place that weighs every term of the loss.

  L_b = transducer_b + ctc_weight * CTC_b
        + intermediate_ctc_weight * CTC_intermediate_b
        + prediction_lm_weight * LM_b

where the transducer term is the RNN-T negative log-likelihood (full lattice,
fused or not), the pruned RNN-T loss plus simple_loss_weight times its simple
joint's loss (`loss.pruned_range`), or, with soft targets, the RNN-T loss plus
alpha times the KL to the teacher, online or stored in the batch
(docs/distillation.md). Both tasks call
it: `RnntTask` without soft targets, `DistillationTask` with its teacher's
outputs for the batch.
"""

from typing import Callable, Dict, NamedTuple, Optional, Tuple

import tensorflow as tf

from asr_kd.configs import distillation_config
from asr_kd.configs import task_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.losses import ctc as ctc_lib
from asr_kd.losses import distillation as distillation_lib
from asr_kd.losses import distillation_frames
from asr_kd.losses import distillation_kl
from asr_kd.losses import prediction_lm as prediction_lm_lib
from asr_kd.losses import rnnt as rnnt_lib
from asr_kd.losses import rnnt_pruned
from asr_kd.losses import sparse_kl

RNNT_NAME = 'rnnt_loss_per_utterance'
KL_NAME = 'kl_per_utterance'
# The simple joint's loss, reported in training with loss.pruned_range.
SIMPLE_NAME = 'simple_rnnt_loss_per_utterance'
CTC_NAME = 'ctc_loss_per_utterance'
INTERMEDIATE_CTC_NAME = 'intermediate_ctc_loss_per_utterance'
PREDICTION_LM_NAME = 'prediction_lm_loss_per_utterance'

# {reported name: [B] values}
Reported = Dict[str, tf.Tensor]


class TeacherOutputs(NamedTuple):
  """What the soft-target term needs of the teacher for one batch."""
  outputs: Dict[str, tf.Tensor]  # The teacher's `call` outputs, no gradient.
  joint_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
  frame_ratio: int  # Teacher encoder frames per student encoder frame.


class Objective:
  """Per-utterance training loss and the parts of it to report."""

  def __init__(self, loss: task_config.RnntLossConfig, blank: int,
               jit_compile: bool,
               soft_targets: Optional[
                   distillation_config.SoftTargetConfig] = None):
    """The objective of a task.

    Args:
      loss: task.loss.
      blank: the blank id.
      jit_compile: task.jit_compile (picks the CTC loss's implementation).
      soft_targets: task.distillation of a distillation task (its KL is
        reported, as zeros for kind 'none'); None for plain RNN-T training.
    """
    self._loss = loss
    self._blank = blank
    self._jit_compile = jit_compile
    self._soft_targets = soft_targets

  @property
  def uses_teacher(self) -> bool:
    """Whether the transducer term needs `TeacherOutputs`."""
    return (self._soft_targets is not None and
            self._soft_targets.kind != 'none' and
            self._soft_targets.targets == 'online')

  @property
  def uses_stored_targets(self) -> bool:
    """Whether the batches must carry stored teacher targets."""
    return (self._soft_targets is not None and
            self._soft_targets.kind != 'none' and
            self._soft_targets.targets == 'stored')

  def transducer_names(self) -> Tuple[str, ...]:
    """The names `transducer_terms` reports."""
    names = (RNNT_NAME,)
    if self._soft_targets is not None:
      names += (KL_NAME,)
    if self._loss.pruned_range:
      names += (SIMPLE_NAME,)
    return names

  def auxiliary_weights(self) -> Dict[str, float]:
    """{reported name: weight} of the enabled auxiliary terms."""
    weights = {CTC_NAME: self._loss.ctc_weight,
               INTERMEDIATE_CTC_NAME: self._loss.intermediate_ctc_weight,
               PREDICTION_LM_NAME: self._loss.prediction_lm_weight}
    return {name: weight for name, weight in weights.items() if weight}

  def needs_labels(self, with_transducer: bool) -> bool:
    """Whether the model must run its prediction network on the labels."""
    return with_transducer or bool(self._loss.prediction_lm_weight)

  def rnnt_nll(self, model, inputs: Dict[str, tf.Tensor],
               outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """RNN-T negative log-likelihood per utterance, float32 [B] (the
    validation loss)."""
    encoder_outputs = outputs['encoder_outputs']
    prediction_outputs = outputs['prediction_outputs']
    common = dict(labels=inputs['labels'],
                  logit_lengths=outputs['encoder_lengths'],
                  label_lengths=inputs['label_lengths'],
                  blank=self._blank,
                  fastemit_lambda=self._loss.fastemit_lambda,
                  zero_infinity=self._loss.zero_infinity)
    if self._loss.fused:
      return rnnt_lib.rnnt_loss_from_joint(
          encoder_outputs, prediction_outputs, model.joint_fn,
          time_chunk_size=self._loss.time_chunk_size, **common)
    return rnnt_lib.rnnt_loss(
        _full_logits(model.joint_fn, outputs), **common)

  def transducer_terms(self, model, inputs: Dict[str, tf.Tensor],
                       outputs: Dict[str, tf.Tensor],
                       teacher: Optional[TeacherOutputs] = None
                      ) -> Tuple[tf.Tensor, Reported]:
    """The transducer term [B] and its reported parts (`transducer_names`).

    Args:
      model: the model being trained (an RnntModel).
      inputs: the batch's numeric inputs.
      outputs: `model(inputs, training=True)`.
      teacher: the teacher's outputs on the batch; required when
        `uses_teacher`.

    Returns:
      (loss [B], {name: [B]}).
    """
    if self.uses_stored_targets:
      total, reported = self._stored_target_terms(model, inputs, outputs)
    elif self.uses_teacher:
      if teacher is None:
        raise ValueError('the soft-target objective needs the teacher\'s '
                         'outputs for the batch.')
      total, reported = self._soft_target_terms(model, inputs, outputs,
                                                teacher)
    elif self._loss.pruned_range:
      total, reported = self._pruned_terms(model, inputs, outputs)
    else:
      total = self.rnnt_nll(model, inputs, outputs)
      reported = {RNNT_NAME: total}
    if self._soft_targets is not None and KL_NAME not in reported:
      reported[KL_NAME] = tf.zeros_like(total)
    return total, reported

  def auxiliary_terms(self, model, inputs: Dict[str, tf.Tensor],
                      outputs: Dict[str, tf.Tensor]
                     ) -> Dict[str, Tuple[float, tf.Tensor]]:
    """{reported name: (weight, float32 [B] loss)} of the enabled terms."""
    weights = self.auxiliary_weights()
    terms = {}

    def ctc_loss(encoder_outputs):
      return ctc_lib.ctc_loss(
          model.ctc_logits(encoder_outputs), inputs['labels'],
          outputs['encoder_lengths'], inputs['label_lengths'],
          blank=self._blank, sparse_kernel=self._ctc_sparse_kernel())

    if CTC_NAME in weights:
      terms[CTC_NAME] = (weights[CTC_NAME],
                         ctc_loss(outputs['encoder_outputs']))
    if INTERMEDIATE_CTC_NAME in weights:
      terms[INTERMEDIATE_CTC_NAME] = (
          weights[INTERMEDIATE_CTC_NAME],
          ctc_loss(outputs['intermediate_encoder_outputs']))
    if PREDICTION_LM_NAME in weights:
      terms[PREDICTION_LM_NAME] = (
          weights[PREDICTION_LM_NAME],
          prediction_lm_lib.next_label_cross_entropy(
              model.prediction_lm_logits(outputs['prediction_outputs']),
              inputs['labels'], inputs['label_lengths']))
    return terms

  def __call__(self, model, inputs: Dict[str, tf.Tensor],
               outputs: Dict[str, tf.Tensor], with_transducer: bool,
               teacher: Optional[TeacherOutputs] = None
              ) -> Tuple[tf.Tensor, Reported]:
    """The per-utterance training loss and every reported term, float32.

    Without the transducer (the first `loss.ctc_only_steps` steps) only the
    auxiliary terms count, and the transducer's reported terms are NaN,
    which the metrics skip.
    """
    if with_transducer:
      per_example, reported = self.transducer_terms(model, inputs, outputs,
                                                    teacher)
    else:
      per_example = tf.zeros(tf.shape(inputs['labels'])[:1])
      reported = {name: per_example + float('nan')
                  for name in self.transducer_names()}
    per_example = tf.cast(per_example, tf.float32)
    for name, (weight, values) in self.auxiliary_terms(
        model, inputs, outputs).items():
      per_example += weight * values
      reported[name] = values
    return per_example, {name: tf.cast(values, tf.float32)
                         for name, values in reported.items()}

  def _pruned_terms(self, model, inputs, outputs):
    encoder_outputs = outputs['encoder_outputs']
    prediction_outputs = outputs['prediction_outputs']
    am_logits, lm_logits = model.simple_joint_logits(encoder_outputs,
                                                     prediction_outputs)
    losses = rnnt_pruned.pruned_rnnt_loss(
        am_logits, lm_logits,
        model.band_joint_fn(encoder_outputs, prediction_outputs),
        labels=inputs['labels'], logit_lengths=outputs['encoder_lengths'],
        label_lengths=inputs['label_lengths'],
        prune_range=self._loss.pruned_range, blank=self._blank,
        fastemit_lambda=self._loss.fastemit_lambda,
        zero_infinity=self._loss.zero_infinity)
    return (losses.pruned + self._loss.simple_loss_weight * losses.simple,
            {RNNT_NAME: losses.pruned, SIMPLE_NAME: losses.simple})

  def _soft_target_terms(self, model, inputs, outputs,
                         teacher: TeacherOutputs):
    kd = self._soft_targets
    if kd.online_top_k:
      return self._online_top_k_terms(model, inputs, outputs, teacher)
    common = dict(
        labels=inputs['labels'],
        logit_lengths=outputs['encoder_lengths'],
        label_lengths=inputs['label_lengths'],
        kind=kd.kind, alpha=kd.alpha, temperature=kd.temperature,
        scale_by_temperature_squared=kd.scale_by_temperature_squared,
        blank=self._blank,
        teacher_lengths=teacher.outputs['encoder_lengths'],
        teacher_frame_ratio=teacher.frame_ratio,
        teacher_right_shift=kd.teacher_right_shift,
        rnnt_options=dict(fastemit_lambda=self._loss.fastemit_lambda,
                          zero_infinity=self._loss.zero_infinity))
    if self._loss.fused:
      loss = distillation_lib.distillation_loss_from_joint(
          outputs['encoder_outputs'], outputs['prediction_outputs'],
          model.joint_fn, teacher.outputs['encoder_outputs'],
          teacher.outputs['prediction_outputs'], teacher.joint_fn,
          time_chunk_size=self._loss.time_chunk_size, **common)
    else:
      loss = distillation_lib.distillation_loss(
          _full_logits(model.joint_fn, outputs),
          _full_logits(teacher.joint_fn, teacher.outputs), **common)
    # Weighed here, with the other terms (loss.total is the same sum).
    return loss.rnnt + kd.alpha * loss.kl, {RNNT_NAME: loss.rnnt,
                                            KL_NAME: loss.kl}

  def _online_top_k_terms(self, model, inputs, outputs,
                          teacher: TeacherOutputs):
    """The online teacher's targets cut to the stored targets' form: its
    top `online_top_k` tokens per node and the rest as one class, at the
    student's frame rate, then the stored targets' loss."""
    kd = self._soft_targets
    log_probs, target_frames = (
        distillation_frames.map_teacher_log_probs_to_student_frames(
            distillation_kl.tempered_log_probs(
                _full_logits(teacher.joint_fn, teacher.outputs),
                kd.temperature),
            teacher.outputs['encoder_lengths'], teacher.frame_ratio))
    return self._top_k_target_terms(
        model, inputs, outputs,
        sparse_kl.top_k_targets(log_probs, kd.online_top_k), target_frames,
        start_offset_frames=None)

  def _stored_target_terms(self, model, inputs, outputs):
    start_offset_frames = None
    if input_pipeline.TARGET_START_OFFSET in inputs:
      # The nearest whole student frame: the targets were computed on the
      # audio without the zeros, at one framing phase.
      samples_per_frame = (
          features_lib.frame_step_samples(model.frontend.config) *
          model.encoder.subsampling_factor)
      start_offset_frames = tf.cast(tf.round(
          tf.cast(inputs[input_pipeline.TARGET_START_OFFSET], tf.float32) /
          samples_per_frame), tf.int32)
    return self._top_k_target_terms(
        model, inputs, outputs,
        sparse_kl.TopKTargets(inputs[input_pipeline.TARGET_LOG_PROBS],
                              inputs[input_pipeline.TARGET_IDS],
                              inputs[input_pipeline.TARGET_REST_LOG_PROB]),
        inputs[input_pipeline.TARGET_FRAMES], start_offset_frames)

  def _top_k_target_terms(self, model, inputs, outputs,
                          targets: sparse_kl.TopKTargets,
                          target_frames: tf.Tensor,
                          start_offset_frames: Optional[tf.Tensor]):
    kd = self._soft_targets
    loss = distillation_lib.stored_target_loss(
        outputs['encoder_outputs'], outputs['prediction_outputs'],
        model.joint_fn, targets, target_frames, inputs['labels'],
        outputs['encoder_lengths'], inputs['label_lengths'],
        alpha=kd.alpha, temperature=kd.temperature,
        scale_by_temperature_squared=kd.scale_by_temperature_squared,
        blank=self._blank, teacher_right_shift=kd.teacher_right_shift,
        start_offset_frames=start_offset_frames,
        time_chunk_size=(self._loss.time_chunk_size if self._loss.fused
                         else None),
        rnnt_options=dict(fastemit_lambda=self._loss.fastemit_lambda,
                          zero_infinity=self._loss.zero_infinity))
    return loss.rnnt + kd.alpha * loss.kl, {RNNT_NAME: loss.rnnt,
                                            KL_NAME: loss.kl}

  def _ctc_sparse_kernel(self) -> bool:
    """Whether the auxiliary CTC loss can use TF's C++ kernel.

    It is about 10x faster than the pure-TF path on CPU, which the step
    needs only where it is compiled: under XLA or on TPUs.
    """
    return not (self._jit_compile or isinstance(
        tf.distribute.get_strategy(), tf.distribute.TPUStrategy))


def _full_logits(joint_fn, outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
  """[B, T, U + 1, V] joint logits of a model's outputs."""
  return joint_fn(outputs['encoder_outputs'][:, :, tf.newaxis],
                  outputs['prediction_outputs'][:, tf.newaxis])
