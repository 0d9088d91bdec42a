"""Model Garden Task for RNN-T training and WER evaluation."""

from typing import Dict, List, Optional, Tuple

from absl import logging
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory

from asr_kd.configs import data_config
from asr_kd.configs import task_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.decoding import decoder
from asr_kd.decoding import wer as wer_lib
from asr_kd.modeling import rnnt_model
from asr_kd.tasks import objective as objective_lib
from asr_kd.tasks import task_metrics

NONFINITE_MESSAGE = 'asr_kd: non-finite loss or gradients'
SIMPLE_LOSS_NAME = objective_lib.SIMPLE_NAME
# runtime.mixed_precision_dtype spellings -> Model Garden's dtype names.
_MIXED_PRECISION_DTYPES = {
    None: None, '': None, 'float32': 'float32',
    'float16': 'float16', 'mixed_float16': 'float16',
    'bfloat16': 'bfloat16', 'mixed_bfloat16': 'bfloat16',
}
# The numeric inputs of a train step (XLA takes no strings); the mask and
# the stored teacher targets only in batches that have them.
MODEL_INPUT_KEYS = ('features', 'feature_lengths', 'labels', 'label_lengths',
                    input_pipeline.FEATURE_MASK) + input_pipeline.TARGET_KEYS


def canonical_mixed_precision(dtype: Optional[str]) -> Optional[str]:
  """'float16', 'bfloat16', 'float32' or None for a mixed_precision_dtype.

  Accepts Keras policy names ('mixed_bfloat16') as well as Model Garden's
  ('bfloat16'); Model Garden itself only understands the latter.

  Args:
    dtype: runtime.mixed_precision_dtype.

  Returns:
    The dtype name `performance.set_mixed_precision_policy` expects.

  Raises:
    ValueError: for an unknown name.
  """
  if dtype not in _MIXED_PRECISION_DTYPES:
    raise ValueError(f'runtime.mixed_precision_dtype must be one of '
                     f'{sorted(k for k in _MIXED_PRECISION_DTYPES if k)}, '
                     f'got {dtype!r}')
  return _MIXED_PRECISION_DTYPES[dtype]


def _apply_reduced_gradients(optimizer, grads_and_vars):
  """Applies gradients that were already summed over replicas."""
  inner = getattr(optimizer, 'inner_optimizer', optimizer)
  if isinstance(inner, tf_keras.optimizers.legacy.Optimizer):
    optimizer.apply_gradients(grads_and_vars,
                              experimental_aggregate_gradients=False)
  else:
    optimizer.apply_gradients(grads_and_vars, skip_gradients_aggregation=True)


@task_factory.register_task_cls(task_config.RnntTaskConfig)
class RnntTask(base_task.Task):
  """Trains an RNN-T model on (audio, transcript) TFRecords."""

  def __init__(self, params: task_config.RnntTaskConfig,
               logging_dir: Optional[str] = None, name: Optional[str] = None):
    super().__init__(params, logging_dir=logging_dir, name=name)
    params.validate()
    if not params.tokenizer_model_path:
      raise ValueError('task.tokenizer_model_path is not set.')
    self.tokenizer = tokenizer_lib.Tokenizer(params.tokenizer_model_path)
    self.objective = objective_lib.Objective(
        params.loss, self.tokenizer.blank_id, params.jit_compile)
    self._forward_backward_fn = None
    self._resume_step = 0

  def create_optimizer(self, optimizer_config, runtime_config=None,
                       dp_config=None):
    """Model Garden's optimizer, with loss scaling where it is needed.

    float16 runs get a LossScaleOptimizer (dynamic unless
    runtime.loss_scale is a number), for either spelling of the dtype.
    With nonfinite_policy 'skip' any other run also gets a dynamic
    LossScaleOptimizer starting at scale 1: it applies no update (weights
    and Adam slots untouched) when any gradient is inf/NaN, which is
    exactly a skipped step. Scales are powers of two, so finite steps are
    bit-identical to unscaled ones.

    Args:
      optimizer_config: trainer.optimizer_config.
      runtime_config: runtime (mixed_precision_dtype, loss_scale).
      dp_config: differential privacy options, passed through.

    Returns:
      The optimizer.
    """
    optimizer = super().create_optimizer(optimizer_config, None, dp_config)
    dtype = canonical_mixed_precision(
        runtime_config.mixed_precision_dtype if runtime_config else None)
    loss_scale = runtime_config.loss_scale if runtime_config else None
    if dtype == 'float16':
      if loss_scale in (None, 'dynamic'):
        optimizer = tf_keras.mixed_precision.LossScaleOptimizer(optimizer)
      else:
        optimizer = tf_keras.mixed_precision.LossScaleOptimizer(
            optimizer, dynamic=False, initial_scale=float(loss_scale))
    elif self.task_config.nonfinite_policy == 'skip':
      optimizer = tf_keras.mixed_precision.LossScaleOptimizer(
          optimizer, dynamic=True, initial_scale=1.0,
          dynamic_growth_steps=2**30)
    if self.task_config.loss.ctc_only_steps:
      # The step counter is created on first access; train_step reads it
      # before any update, and created inside the compiled training loop
      # under MirroredStrategy it broke the loop (TF 2.17: unfed
      # placeholders). Create it now, in the strategy's scope.
      _ = optimizer.iterations
    return optimizer

  def build_model(self) -> rnnt_model.RnntModel:
    model = rnnt_model.RnntModel(
        self.task_config.model, vocab_size=self.tokenizer.vocab_size,
        ctc_head=(self.task_config.loss.ctc_weight > 0 or
                  self.task_config.loss.intermediate_ctc_weight > 0),
        prediction_lm_head=self.task_config.loss.prediction_lm_weight > 0,
        intermediate_ctc_layer=self.task_config.intermediate_ctc_layer(),
        simple_joint_heads=self.task_config.loss.pruned_range > 0,
        name='rnnt')
    model.build_for_checkpoint()
    stats_file = self.task_config.model.feature_stats_file
    if stats_file:
      model.set_feature_stats(*features_lib.load_feature_stats(stats_file))
    return model

  def resume_data_at(self, step: int):
    """Training data will start where `step` steps of this run left it.

    The training binary calls this with the step of the checkpoint it
    resumes from, before the trainer builds the data: the same seeded
    pipeline is rebuilt and the batches those steps consumed are drawn and
    dropped (their features are computed again, so this costs a share of
    the time those steps took). Everything random in the pipeline is
    stateless from its seed and the element's position, so the run then
    sees the batches an uninterrupted run would.
    """
    if step < 0:
      raise ValueError(f'step must be >= 0, got {step}')
    self._resume_step = step

  def build_inputs(self, params, input_context=None) -> tf.data.Dataset:
    """The batches of `params`; training data seeded from task.seed."""
    if params.is_training:
      params = params.replace(seed=task_config.train_data_seed(
          self.task_config.seed, params.seed))
      if self.task_config.jit_compile:
        params = data_config.with_static_shapes(params)
      if self.objective.uses_stored_targets:
        soft_targets = self.task_config.distillation
        params = params.replace(
            teacher_targets=True,
            teacher_targets_temperature=soft_targets.temperature,
            teacher_targets_top_k=soft_targets.top_k)
    dataset = input_pipeline.AsrInputPipeline(
        params, self.tokenizer, self.task_config.model.features)(input_context)
    resume_step = self._resume_step
    if params.is_training and resume_step:
      # Each step takes one batch per replica; a pipeline feeds the
      # replicas of its worker.
      batches_per_step = 1 if input_context is None else (
          input_context.num_replicas_in_sync //
          input_context.num_input_pipelines)
      logging.info('Resuming the training data at step %d: skipping the %d '
                   'batches it consumed.', resume_step,
                   resume_step * batches_per_step)
      dataset = dataset.skip(resume_step * batches_per_step)
    return dataset

  def per_example_loss(self, model: rnnt_model.RnntModel,
                       inputs: Dict[str, tf.Tensor],
                       outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """RNN-T negative log-likelihood per utterance, float32 [B]."""
    return self.objective.rnnt_nll(model, inputs, outputs)

  def teacher_outputs(self, inputs: Dict[str, tf.Tensor]
                     ) -> Optional[objective_lib.TeacherOutputs]:
    """The teacher's outputs on a batch; None: this task has no teacher."""
    del inputs
    return None

  def per_example_losses(self, model: rnnt_model.RnntModel,
                         inputs: Dict[str, tf.Tensor],
                         outputs: Dict[str, tf.Tensor]
                        ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """The transducer term of the training loss per utterance, and its parts.

    Args:
      model: the model being trained.
      inputs: the numeric inputs of a batch (MODEL_INPUT_KEYS).
      outputs: `model(inputs, training=True)`.

    Returns:
      (loss [B], {training metric name: [B] values}), from the objective
      (`objective.Objective.transducer_terms`).
    """
    return self.objective.transducer_terms(
        model, inputs, outputs,
        self.teacher_outputs(inputs) if self.objective.uses_teacher
        else None)

  def build_losses(self, labels, model_outputs, aux_losses=None):
    raise NotImplementedError('RnntTask computes its loss in train_step.')

  def build_metrics(self, training: bool = True) -> List[tf_keras.metrics.Metric]:
    metrics = [tf_keras.metrics.Mean(objective_lib.RNNT_NAME)]
    if training:
      metrics += [tf_keras.metrics.Mean(name) for name in
                  self.objective.transducer_names()[1:] +
                  tuple(self.objective.auxiliary_weights())]
      metrics += [
          tf_keras.metrics.Mean('gradient_norm'),
          tf_keras.metrics.Sum('nonfinite_steps'),
          task_metrics.Throughput('examples_per_second'),
          task_metrics.Throughput('audio_seconds_per_second'),
      ]
    else:
      metrics += [task_metrics.ErrorRate('wer'), task_metrics.ErrorRate('cer')]
    return metrics

  def _forward_backward(self, model, inputs, optimizer, global_tokens=None):
    """Loss, reported per-utterance losses and this replica's gradients.

    XLA-compiled when task.jit_compile is set. The loss is float32 whatever
    the mixed precision policy. With task.loss.normalization 'utterance'
    it is this replica's mean per utterance and the gradients are of
    loss / num_replicas; with 'token' the gradients are of this replica's
    summed loss / `global_tokens` (the label tokens of all replicas'
    batches) and the loss is that times num_replicas. Either way, summing
    the gradients over replicas gives those of the global loss, and the
    mean of the replicas' losses is the global loss.
    """
    if self._forward_backward_fn is None:
      def forward_backward(inputs, global_tokens, with_transducer):
        with tf.GradientTape() as tape:
          if self.task_config.loss.ctc_only_steps:
            per_example, reported = tf.cond(
                with_transducer,
                lambda: self._training_losses(model, inputs, True),
                lambda: self._training_losses(model, inputs, False))
          else:
            per_example, reported = self._training_losses(model, inputs,
                                                           True)
          num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
          if global_tokens is None:
            loss = tf.reduce_mean(per_example)
          else:
            loss = tf.reduce_sum(per_example) * (num_replicas / global_tokens)
          if model.losses:
            loss += tf.cast(tf.add_n(model.losses), tf.float32)
          scaled_loss = loss / num_replicas
          if isinstance(optimizer,
                        tf_keras.mixed_precision.LossScaleOptimizer):
            scaled_loss = optimizer.get_scaled_loss(scaled_loss)
        grads = tape.gradient(scaled_loss, model.trainable_variables)
        if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
          grads = optimizer.get_unscaled_gradients(grads)
        return loss, reported, grads
      self._forward_backward_fn = tf.function(
          forward_backward, jit_compile=self.task_config.jit_compile)
    ctc_only_steps = self.task_config.loss.ctc_only_steps
    # Read the step counter only where create_optimizer made it: one first
    # created inside the compiled loop breaks two-replica training.
    with_transducer = (optimizer.iterations >= ctc_only_steps
                       if ctc_only_steps else True)
    return self._forward_backward_fn(
        {key: inputs[key] for key in MODEL_INPUT_KEYS if key in inputs},
        global_tokens, with_transducer)

  def _training_losses(self, model, inputs, with_transducer: bool
                      ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """Per-utterance training loss and reported losses, float32 [B] each."""
    if self.objective.needs_labels(with_transducer):
      outputs = model(inputs, training=True)
    else:
      outputs = model({key: value for key, value in inputs.items()
                       if key not in ('labels', 'label_lengths')},
                      training=True)
    teacher = (self.teacher_outputs(inputs)
               if with_transducer and self.objective.uses_teacher else None)
    return self.objective(model, inputs, outputs, with_transducer, teacher)

  def _global_tokens(self, inputs) -> Optional[tf.Tensor]:
    """Label tokens in all replicas' batches ('token' normalization)."""
    if self.task_config.loss.normalization != 'token':
      return None
    tokens = tf.cast(tf.reduce_sum(inputs['label_lengths']), tf.float32)
    total = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.SUM, tokens)
    # An all-empty batch has no tokens; its per-utterance losses (blanks
    # only) are then weighed as one token's.
    return tf.maximum(total, 1.0)

  def train_step(self, inputs, model, optimizer, metrics=None):
    """One optimizer step; non-finite steps are skipped or stop the run.

    Args:
      inputs: a batch from `build_inputs`.
      model: the RnntModel.
      optimizer: from `create_optimizer`.
      metrics: from `build_metrics(training=True)`.

    Returns:
      {task.loss: this replica's mean loss}. A skipped step reports 0, not
      NaN: Model Garden's recovery would otherwise restore the last
      checkpoint although the weights were never touched.
    """
    # Taken before the forward pass so the throughput of a loop includes
    # its first step (tf.timestamp is stateful, so it is not reordered).
    step_start_time = tf.timestamp()
    loss, reported, grads = self._forward_backward(
        model, inputs, optimizer, self._global_tokens(inputs))
    # Sum over replicas here (instead of inside apply_gradients) so that
    # the logged norm is that of the gradient actually applied.
    replica_context = tf.distribute.get_replica_context()
    # Embedding gradients come as IndexedSlices with one row per label of
    # the replica's batch; replicas with different batch shapes (buckets)
    # would hand the all-gather behind their all-reduce different shapes,
    # which collective ops reject. The dense [vocab, dim] sum is small.
    grads = [tf.convert_to_tensor(grad)
             if isinstance(grad, tf.IndexedSlices) else grad
             for grad in grads]
    grads = replica_context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    gradient_norm = tf.linalg.global_norm(grads)
    finite = tf.logical_and(tf.math.is_finite(loss),
                            tf.math.is_finite(gradient_norm))
    if self.task_config.nonfinite_policy == 'stop':
      tf.debugging.Assert(finite, [NONFINITE_MESSAGE, loss, gradient_norm])
    # The LossScaleOptimizer skips the update itself when `finite` is False.
    _apply_reduced_gradients(optimizer,
                             list(zip(grads, model.trainable_variables)))
    if metrics:
      by_name = {metric.name: metric for metric in metrics}
      for name, values in reported.items():
        by_name[name].update_state(
            tf.boolean_mask(values, tf.math.is_finite(values)))
      by_name['gradient_norm'].update_state(
          tf.where(finite, gradient_norm, 0.0))
      # Every replica sees the same (all-reduced) verdict; count it once.
      by_name['nonfinite_steps'].update_state(
          (1.0 - tf.cast(finite, tf.float32)) /
          replica_context.num_replicas_in_sync)
      by_name['examples_per_second'].update_state(
          tf.shape(inputs['features'])[0], step_start_time)
      by_name['audio_seconds_per_second'].update_state(
          tf.cast(tf.reduce_sum(inputs['num_samples']), tf.float32) /
          float(self.task_config.model.features.sample_rate),
          step_start_time)
    return {self.loss: tf.where(finite, loss, 0.0)}

  def decode_texts(self, model: rnnt_model.RnntModel,
                   outputs: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Hypothesis strings [B] for encoder outputs."""
    tokens, lengths = decoder.decode(
        outputs['encoder_outputs'], outputs['encoder_lengths'],
        model.prediction_network, model.joint_network,
        self.task_config.decoding)
    return self.tokenizer.detokenize(
        tf.RaggedTensor.from_tensor(tokens, lengths=lengths))

  def validation_step(self, inputs, model, metrics=None):
    outputs = model(inputs, training=False)
    per_example = self.per_example_loss(model, inputs, outputs)
    hypotheses = self.decode_texts(model, outputs)
    if metrics:
      by_name = {metric.name: metric for metric in metrics}
      by_name['rnnt_loss_per_utterance'].update_state(per_example)
      by_name['wer'].update_state(
          *wer_lib.word_error_counts(hypotheses, inputs['transcript']))
      by_name['cer'].update_state(
          *wer_lib.char_error_counts(hypotheses, inputs['transcript']))
    return {self.loss: tf.reduce_mean(per_example)}

  def inference_step(self, inputs, model):
    return self.decode_texts(model, model(inputs, training=False))


def log_nonfinite_help(error: Exception) -> bool:
  """True (after logging why) when `error` is the 'stop' policy's assert."""
  if NONFINITE_MESSAGE in str(error):
    logging.error('%s: the run stopped (task.nonfinite_policy=stop).',
                  NONFINITE_MESSAGE)
    return True
  return False
