"""Tests for asr_kd.tasks.rnnt_task: train step, non-finite policy, dtypes."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tf_keras

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.dataloaders import input_pipeline
from asr_kd.losses import rnnt as rnnt_lib
from asr_kd.modeling import rnnt_model
from asr_kd.tasks import rnnt_task
from tests import testing_utils

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# argv[1] that makes this file run `_mirrored_step_main` instead of tests.
_MIRRORED_COMMAND = 'mirrored_step'


def _build(config):
  """Task, model, optimizer and training metrics for an ExperimentConfig."""
  task = rnnt_task.RnntTask(config.task)
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)
  return task, model, optimizer, task.build_metrics(training=True)


def _weights(model, optimizer):
  """Copies of the model weights and the optimizer slots."""
  return ([v.numpy().copy() for v in model.weights],
          [v.numpy().copy() for v in optimizer.variables()
           if 'iter' not in v.name and 'loss_scale' not in v.name
           and 'good_steps' not in v.name])


class RnntTaskTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.corpus_dir = tempfile.mkdtemp()
    cls.corpus = testing_utils.write_tiny_corpus(cls.corpus_dir)

  def _config(self, **task_overrides):
    config = testing_utils.tiny_experiment(self.corpus)
    config.task.jit_compile = False  # XLA is covered by the binary test.
    config.task.override(task_overrides)
    return config

  def _batch(self, task, config):
    return next(iter(task.build_inputs(config.task.train_data)))

  def _first_step(self, config):
    """Task, model, optimizer, metrics, a batch and (loss, reported, grads)."""
    task, model, optimizer, metrics = _build(config)
    batch = self._batch(task, config)
    return (task, model, optimizer, metrics, batch,
            task._forward_backward(model, batch, optimizer))  # pylint: disable=protected-access

  def test_skip_policy_leaves_weights_untouched_on_nan_batch(self):
    config = self._config(nonfinite_policy='skip')
    task, model, optimizer, metrics = _build(config)
    by_name = {metric.name: metric for metric in metrics}
    train_step = tf.function(
        lambda batch: task.train_step(batch, model, optimizer, metrics))
    batch = self._batch(task, config)
    nan_batch = dict(batch)
    # A SpecAugment mask over the cell would hide the NaN.
    nan_batch[input_pipeline.FEATURE_MASK] = tf.zeros_like(
        batch[input_pipeline.FEATURE_MASK])
    nan_batch['features'] = tf.tensor_scatter_nd_update(
        batch['features'], [[1, 3, 5]], [np.nan])

    train_step(batch)
    before = _weights(model, optimizer)
    logs = train_step(nan_batch)
    after = _weights(model, optimizer)
    self.assertEqual(float(logs[task.loss]), 0.0)
    self.assertEqual(float(by_name['nonfinite_steps'].result()), 1.0)
    for expected, actual in zip(before[0] + before[1], after[0] + after[1]):
      self.assertAllEqual(expected, actual)

    logs = train_step(batch)
    trained = _weights(model, optimizer)
    self.assertTrue(np.isfinite(float(logs[task.loss])))
    self.assertEqual(float(by_name['nonfinite_steps'].result()), 1.0)
    self.assertTrue(any(not np.array_equal(old, new)
                        for old, new in zip(after[0], trained[0])))
    self.assertTrue(all(np.all(np.isfinite(w)) for w in trained[0]))

  def test_stop_policy_raises_inside_tf_function(self):
    config = self._config(nonfinite_policy='stop')
    task, model, optimizer, metrics = _build(config)
    self.assertNotIsInstance(optimizer,
                             tf_keras.mixed_precision.LossScaleOptimizer)
    batch = self._batch(task, config)
    batch['features'] = tf.fill(tf.shape(batch['features']), np.inf)
    train_step = tf.function(
        lambda batch: task.train_step(batch, model, optimizer, metrics))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                rnnt_task.NONFINITE_MESSAGE):
      train_step(batch)

  def test_gradient_norm_metric_is_norm_of_applied_gradient(self):
    config = self._config()
    task, model, optimizer, metrics = _build(config)
    batch = self._batch(task, config)
    by_name = {metric.name: metric for metric in metrics}
    _, _, grads = task._forward_backward(model, batch, optimizer)  # pylint: disable=protected-access
    expected = np.sqrt(sum(np.sum(np.square(
        tf.convert_to_tensor(g).numpy().astype(np.float64)))
                           for g in grads))
    task.train_step(batch, model, optimizer, metrics)
    self.assertAllClose(by_name['gradient_norm'].result(), expected,
                        rtol=1e-4)
    self.assertGreater(float(by_name['audio_seconds_per_second'].result()),
                       0.0)

  def test_fused_and_unfused_loss_give_the_same_loss_and_gradients(self):
    losses, gradients = [], []
    for fused in (True, False):
      config = self._config()
      config.task.loss.fused = fused
      tf_keras.utils.set_random_seed(0)
      task, model, optimizer, _ = _build(config)
      loss, _, grads = task._forward_backward(  # pylint: disable=protected-access
          model, self._batch(task, config), optimizer)
      losses.append(float(loss))
      gradients.append([tf.convert_to_tensor(g).numpy() for g in grads])
    self.assertGreater(losses[0], 0.0)
    self.assertAllClose(losses[0], losses[1], rtol=1e-5)
    for fused_grad, grad in zip(*gradients):
      self.assertAllClose(fused_grad, grad, rtol=1e-4, atol=1e-5)

  def test_auxiliary_losses_add_weighted_terms_and_train_their_heads(self):
    config = self._config()
    config.task.loss.ctc_weight = 0.5
    config.task.loss.prediction_lm_weight = 0.2
    task, model, optimizer, metrics = _build(config)
    self.assertIsNotNone(model.ctc_head)
    self.assertIsNotNone(model.prediction_lm_head)
    batch = self._batch(task, config)
    by_name = {metric.name: metric for metric in metrics}
    loss, reported, grads = task._forward_backward(model, batch, optimizer)  # pylint: disable=protected-access
    self.assertAllClose(
        loss, np.mean(reported['rnnt_loss_per_utterance'] +
                      0.5 * reported['ctc_loss_per_utterance'] +
                      0.2 * reported['prediction_lm_loss_per_utterance']),
        rtol=1e-5)
    for name, head in (('ctc_loss_per_utterance', 'ctc_head'),
                       ('prediction_lm_loss_per_utterance',
                        'prediction_lm_head')):
      self.assertTrue(np.all(reported[name].numpy() >= 0))
      head_grads = [g for g, v in zip(grads, model.trainable_variables)
                    if head in v.name]
      self.assertLen(head_grads, 2)
      self.assertGreater(float(tf.linalg.global_norm(head_grads)), 0.0)
    # The language-model term reaches the prediction network, not the
    # encoder: with only that term, encoder gradients are zero.
    with tf.GradientTape() as tape:
      outputs = model(batch, training=True)
      lm_only = tf.reduce_sum(task.objective.auxiliary_terms(
          model, batch, outputs)['prediction_lm_loss_per_utterance'][1])
    variables = model.trainable_variables
    lm_grads = dict(zip([v.name for v in variables],
                        tape.gradient(lm_only, variables)))
    self.assertTrue(all(g is None for name, g in lm_grads.items()
                        if 'encoder' in name))
    self.assertGreater(float(tf.linalg.global_norm(
        [g for name, g in lm_grads.items()
         if 'prediction_network' in name])), 0.0)
    task.train_step(batch, model, optimizer, metrics)
    self.assertGreater(float(by_name['ctc_loss_per_utterance'].result()), 0.0)
    self.assertGreater(
        float(by_name['prediction_lm_loss_per_utterance'].result()), 0.0)

  def test_intermediate_ctc_reads_the_named_block_through_the_ctc_head(self):
    config = self._config()
    config.task.model.encoder.num_layers = 3
    config.task.loss.ctc_weight = 0.3
    config.task.loss.intermediate_ctc_weight = 0.2
    config.task.loss.intermediate_ctc_layer = 2
    task, model, optimizer, metrics, batch, (loss, reported, _) = (
        self._first_step(config))
    intermediate = reported['intermediate_ctc_loss_per_utterance'].numpy()
    self.assertAllClose(
        loss, np.mean(reported['rnnt_loss_per_utterance'] +
                      0.3 * reported['ctc_loss_per_utterance'] +
                      0.2 * intermediate), rtol=1e-5)
    # Reference: a two-block encoder holding the first two blocks' weights,
    # the same CTC head, and TF's CTC loss.
    two_blocks = model.encoder.config.replace(num_layers=2)
    reference = rnnt_model.conformer.ConformerEncoder(two_blocks)
    # What the model's frontend gives its encoder.
    features = model.frontend.normalize(
        batch['features'], batch.get(input_pipeline.FEATURE_MASK))
    reference(features, batch['feature_lengths'])
    for target, source in zip(
        [reference._subsampling] + reference.blocks,  # pylint: disable=protected-access
        [model.encoder._subsampling] + model.encoder.blocks[:2]):  # pylint: disable=protected-access
      target.set_weights(source.get_weights())
    reference_outputs, reference_lengths = reference(
        features, batch['feature_lengths'])
    expected = tf.nn.ctc_loss(
        labels=batch['labels'], logits=model.ctc_head(reference_outputs),
        label_length=batch['label_lengths'], logit_length=reference_lengths,
        logits_time_major=False, blank_index=task.tokenizer.blank_id).numpy()
    # CTC needs a frame per label and one more per repeated label; the
    # task's loss is 0 where the frames are too few.
    feasible = []
    for labels, length, frames in zip(batch['labels'].numpy(),
                                      batch['label_lengths'].numpy(),
                                      reference_lengths.numpy()):
      labels = labels[:length]
      feasible.append(
          frames >= length + np.sum(labels[1:] == labels[:-1]))
    feasible = np.array(feasible)
    self.assertTrue(feasible.any())
    self.assertAllClose(intermediate[feasible], expected[feasible],
                        rtol=1e-4)
    self.assertAllEqual(intermediate[~feasible], 0 * intermediate[~feasible])
    self.assertNotAllClose(intermediate,
                           reported['ctc_loss_per_utterance'].numpy())
    # The intermediate term trains the blocks below it and the head only.
    with tf.GradientTape() as tape:
      outputs = model(batch, training=True)
      intermediate_only = tf.reduce_sum(task.objective.auxiliary_terms(
          model, batch, outputs)['intermediate_ctc_loss_per_utterance'][1])
    gradients = tape.gradient(intermediate_only, model.trainable_variables)
    by_block = {
        index: [g for g, v in zip(gradients, model.trainable_variables)
                if any(v is w for w in block.trainable_variables)]
        for index, block in enumerate(model.encoder.blocks)}
    self.assertNotEmpty(by_block[2])
    self.assertTrue(all(g is None for g in by_block[2]))
    for index in (0, 1):
      self.assertGreater(float(tf.linalg.global_norm(by_block[index])), 0.0)
    by_name = {metric.name: metric for metric in metrics}
    task.train_step(batch, model, optimizer, metrics)
    self.assertGreater(
        float(by_name['intermediate_ctc_loss_per_utterance'].result()), 0.0)
    config.task.loss.intermediate_ctc_layer = 3
    with self.assertRaisesRegex(ValueError, 'blocks 1 .. 2'):
      rnnt_task.RnntTask(config.task)
    config.task.loss.intermediate_ctc_layer = 0
    self.assertEqual(config.task.intermediate_ctc_layer(), 1)

  def test_pruned_loss_trains_the_band_and_the_simple_joint(self):
    config = self._config(loss={'pruned_range': 2, 'simple_loss_weight': 0.25,
                                'ctc_weight': 0.3})
    task, model, optimizer, metrics, batch, (loss, reported, grads) = (
        self._first_step(config))
    pruned = reported['rnnt_loss_per_utterance'].numpy()
    simple = reported[rnnt_task.SIMPLE_LOSS_NAME].numpy()
    self.assertAllClose(
        loss, np.mean(pruned + 0.25 * simple +
                      0.3 * reported['ctc_loss_per_utterance']), rtol=1e-5)
    outputs = model(batch, training=True)
    # The simple loss is the RNN-T loss of the joint am[t] + lm[u].
    am_logits, lm_logits = model.simple_joint_logits(
        outputs['encoder_outputs'], outputs['prediction_outputs'])
    expected_simple = rnnt_lib.rnnt_loss(
        am_logits[:, :, None] + lm_logits[:, None], batch['labels'],
        outputs['encoder_lengths'], batch['label_lengths'])
    self.assertAllClose(simple, expected_simple, rtol=1e-5)
    # The band holds fewer paths than the full lattice (validation's loss).
    full = task.per_example_loss(model, batch, outputs).numpy()
    self.assertTrue(np.all(pruned >= full - 1e-3))
    self.assertTrue(np.any(pruned > full + 1e-2))
    by_variable = {v.name: g for g, v in zip(grads, model.trainable_variables)}
    for name in ('simple_am_head', 'simple_lm_head', 'joint_network'):
      trained = [g for n, g in by_variable.items() if name in n]
      self.assertNotEmpty(trained)
      self.assertGreater(float(tf.linalg.global_norm(trained)), 0.0)
    by_name = {metric.name: metric for metric in metrics}
    task.train_step(batch, model, optimizer, metrics)
    self.assertAllClose(by_name[rnnt_task.SIMPLE_LOSS_NAME].result(),
                        np.mean(simple), rtol=1e-4)
    # A band as wide as the longest label sequence + 1 is the full lattice.
    config.task.loss.pruned_range = int(batch['labels'].shape[1]) + 1
    wide = rnnt_task.RnntTask(config.task)
    _, reported, _ = wide._forward_backward(model, batch, optimizer)  # pylint: disable=protected-access
    self.assertAllClose(reported['rnnt_loss_per_utterance'],
                        task.per_example_loss(model, batch, outputs),
                        rtol=1e-4)
    config.task.loss.pruned_range = 1
    with self.assertRaisesRegex(ValueError, 'pruned_range must be 0'):
      rnnt_task.RnntTask(config.task)

  def test_ctc_only_steps_train_the_encoder_alone_then_the_transducer(self):
    config = self._config()
    config.task.loss.ctc_weight = 0.5
    config.task.loss.ctc_only_steps = 3
    task, model, optimizer, metrics = _build(config)
    batch = self._batch(task, config)
    by_name = {metric.name: metric for metric in metrics}
    loss, reported, grads = task._forward_backward(model, batch, optimizer)  # pylint: disable=protected-access
    ctc = reported['ctc_loss_per_utterance'].numpy()
    self.assertAllClose(loss, np.mean(0.5 * ctc), rtol=1e-5)
    self.assertTrue(np.all(np.isnan(reported['rnnt_loss_per_utterance'])))
    trained = {v.ref() for v in (model.encoder.trainable_variables +
                                 model.ctc_head.trainable_variables)}
    untouched = [tf.convert_to_tensor(g)
                 for g, v in zip(grads, model.trainable_variables)
                 if v.ref() not in trained]
    self.assertNotEmpty(untouched)  # Prediction and joint networks.
    self.assertEqual(float(tf.linalg.global_norm(untouched)), 0.0)
    self.assertGreater(float(tf.linalg.global_norm(
        [g for g, v in zip(grads, model.trainable_variables)
         if v.ref() in trained])), 0.0)
    # The step counter, not the call count, switches the transducer on.
    task.train_step(batch, model, optimizer, metrics)
    self.assertEqual(float(by_name['rnnt_loss_per_utterance'].result()), 0.0)
    self.assertGreater(float(by_name['ctc_loss_per_utterance'].result()), 0.0)
    optimizer.iterations.assign(3)
    loss, reported, _ = task._forward_backward(model, batch, optimizer)  # pylint: disable=protected-access
    self.assertTrue(np.all(np.isfinite(reported['rnnt_loss_per_utterance'])))
    self.assertAllClose(
        loss, np.mean(reported['rnnt_loss_per_utterance'] +
                      0.5 * reported['ctc_loss_per_utterance']), rtol=1e-5)
    config.task.loss.ctc_weight = 0.0
    with self.assertRaisesRegex(ValueError, 'ctc_only_steps needs'):
      rnnt_task.RnntTask(config.task)

  def test_ctc_kernels_agree_in_graph_mode_and_under_xla(self):
    # Graph mode runs TF's C++ CTC kernel; XLA needs the pure-TF path.
    config = self._config()
    config.task.loss.ctc_weight = 0.5
    task, model, optimizer, _ = _build(config)
    batch = self._batch(task, config)
    self.assertTrue(task.objective._ctc_sparse_kernel())  # pylint: disable=protected-access
    _, graph_reported, graph_grads = task._forward_backward(  # pylint: disable=protected-access
        model, batch, optimizer)
    config.task.jit_compile = True
    xla_task = rnnt_task.RnntTask(config.task)
    self.assertFalse(xla_task.objective._ctc_sparse_kernel())  # pylint: disable=protected-access
    _, xla_reported, xla_grads = xla_task._forward_backward(  # pylint: disable=protected-access
        model, batch, optimizer)
    self.assertAllClose(xla_reported['ctc_loss_per_utterance'],
                        graph_reported['ctc_loss_per_utterance'], rtol=1e-4)
    head_index = [i for i, v in enumerate(model.trainable_variables)
                  if 'ctc_head' in v.name]
    for i in head_index:
      self.assertAllClose(xla_grads[i], graph_grads[i], rtol=1e-3, atol=1e-5)

  def test_token_normalization_divides_summed_loss_by_label_tokens(self):
    config = self._config()
    config.task.loss.ctc_weight = 0.0  # The loss is then the RNN-T loss.
    task, model, optimizer, _ = _build(config)
    batch = self._batch(task, config)
    by_utterance = task._forward_backward(model, batch, optimizer)  # pylint: disable=protected-access
    config.task.loss.normalization = 'token'
    token_task = rnnt_task.RnntTask(config.task)
    tokens = float(np.sum(batch['label_lengths']))
    utterances = int(batch['labels'].shape[0])
    self.assertGreater(tokens, utterances)
    loss, reported, grads = token_task._forward_backward(  # pylint: disable=protected-access
        model, batch, optimizer, tf.constant(tokens))
    per_utterance = reported['rnnt_loss_per_utterance'].numpy()
    self.assertAllClose(loss, np.sum(per_utterance.astype(np.float64)) /
                        tokens, rtol=1e-5)
    # Same weights, same batch: only the divisor changes.
    self.assertAllClose(per_utterance, by_utterance[1]['rnnt_loss_per_utterance'])
    for grad, utterance_grad in zip(grads, by_utterance[2]):
      self.assertAllClose(tf.convert_to_tensor(grad),
                          tf.convert_to_tensor(utterance_grad) *
                          (utterances / tokens), rtol=1e-4, atol=1e-7)

  def test_unknown_loss_normalization_is_rejected(self):
    config = self._config()
    config.task.loss.normalization = 'frame'
    with self.assertRaisesRegex(ValueError, 'loss.normalization'):
      rnnt_task.RnntTask(config.task)

  def test_auxiliary_heads_are_absent_without_weights_and_weights_checked(self):
    config = self._config()
    config.task.loss.ctc_weight = 0.0
    config.task.loss.prediction_lm_weight = 0.0
    task, model, _, metrics = _build(config)
    self.assertIsNone(model.ctc_head)
    self.assertIsNone(model.prediction_lm_head)
    self.assertEmpty({'ctc_loss_per_utterance',
                      'prediction_lm_loss_per_utterance'} &
                     {m.name for m in metrics})
    with self.assertRaisesRegex(ValueError, 'ctc_head=True'):
      model.ctc_logits(tf.zeros([1, 2, model.encoder.output_dim]))
    with self.assertRaisesRegex(ValueError, 'prediction_lm_head=True'):
      model.prediction_lm_logits(
          tf.zeros([1, 2, model.prediction_network.output_dim]))
    del task
    for name in ('ctc_weight', 'prediction_lm_weight'):
      negative = self._config()
      negative.task.loss.override({name: -0.1})
      with self.assertRaisesRegex(ValueError, f'{name} must be >= 0'):
        rnnt_task.RnntTask(negative.task)

  def test_mixed_bfloat16_step_has_float32_loss(self):
    config = self._config()
    config.runtime.mixed_precision_dtype = 'mixed_bfloat16'
    tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
    try:
      task, model, optimizer, metrics = _build(config)
      batch = self._batch(task, config)
      logs = task.train_step(batch, model, optimizer, metrics)
      outputs = model(batch, training=False)
    finally:
      tf_keras.mixed_precision.set_global_policy('float32')
    self.assertEqual(outputs['encoder_outputs'].dtype, tf.bfloat16)
    self.assertEqual(logs[task.loss].dtype, tf.float32)
    self.assertTrue(np.isfinite(float(logs[task.loss])))
    self.assertTrue(all(v.dtype == tf.float32
                        for v in model.trainable_variables))

  def test_float16_gets_loss_scale_optimizer(self):
    for dtype in ('mixed_float16', 'float16'):
      config = self._config(nonfinite_policy='stop')
      config.runtime.mixed_precision_dtype = dtype
      optimizer = _build(config)[2]
      self.assertIsInstance(optimizer,
                            tf_keras.mixed_precision.LossScaleOptimizer)
      self.assertTrue(optimizer.dynamic)
    config.runtime.loss_scale = 128.0
    optimizer = _build(config)[2]
    self.assertFalse(optimizer.dynamic)
    self.assertEqual(float(optimizer.loss_scale), 128.0)

  def test_canonical_mixed_precision(self):
    self.assertEqual(rnnt_task.canonical_mixed_precision('mixed_bfloat16'),
                     'bfloat16')
    self.assertEqual(rnnt_task.canonical_mixed_precision('float16'),
                     'float16')
    self.assertIsNone(rnnt_task.canonical_mixed_precision(None))
    with self.assertRaisesRegex(ValueError, 'mixed_precision_dtype'):
      rnnt_task.canonical_mixed_precision('int8')

  def test_mirrored_two_cpus_matches_one_device(self):
    # Logical devices must be configured before TF initializes, hence a
    # fresh process.
    work_dir = tempfile.mkdtemp()
    corpus_path = os.path.join(work_dir, 'corpus.json')
    output_path = os.path.join(work_dir, 'out.json')
    with open(corpus_path, 'w') as f:
      json.dump(self.corpus, f)
    env = dict(os.environ, PYTHONPATH=_REPO_ROOT)
    result = subprocess.run(
        [sys.executable, os.path.abspath(__file__), _MIRRORED_COMMAND,
         corpus_path, output_path],
        cwd=_REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    with open(output_path) as f:
      results = json.load(f)
    # The halves hold different numbers of tokens, so 'token' matches one
    # device only if the token count is the global one.
    self.assertNotEqual(*results['token']['replica_tokens'])
    for normalization in ('utterance', 'token'):
      with self.subTest(normalization=normalization):
        out = results[normalization]
        self.assertEqual(out['num_replicas'], 2)
        self.assertAllClose(out['mirrored_loss'], out['single_loss'],
                            rtol=1e-5)
        self.assertAllClose(out['mirrored_gradient_norm'],
                            out['single_gradient_norm'], rtol=1e-4)
        self.assertLess(out['max_weight_difference'], 1e-5)
        self.assertGreater(out['max_weight_change'], 1e-6)


def _mirrored_step_main(corpus_path: str, output_path: str):
  """One train step on 2 logical CPUs and on one device, same batch.

  Both start from the same weights; writes losses, gradient norms and the
  largest weight difference after the step to `output_path` (JSON), for
  each task.loss.normalization.

  Args:
    corpus_path: JSON of `testing_utils.write_tiny_corpus`'s result.
    output_path: where the JSON result goes.
  """
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  with open(corpus_path) as f:
    corpus = json.load(f)
  strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
  results = {normalization: _mirrored_step(corpus, strategy, normalization)
             for normalization in ('utterance', 'token')}
  with open(output_path, 'w') as f:
    json.dump(results, f)


def _mirrored_step(corpus, strategy, normalization: str):
  """`_mirrored_step_main`'s result for one loss normalization."""
  config = testing_utils.tiny_experiment(corpus)
  config.task.loss.normalization = normalization
  config.task.jit_compile = False
  # The demo schedule's rate is 0 at step 0 (warmup); the step must move.
  # Plain SGD: Adam's first step is ~lr * sign(g), which turns float
  # rounding in near-zero gradients into lr-sized weight differences.
  config.trainer.optimizer_config.override({
      'optimizer': {'type': 'sgd', 'sgd': {'momentum': 0.0}},
      'learning_rate': {'type': 'constant',
                        'constant': {'learning_rate': 0.01}},
      'warmup': {'type': None}}, is_strict=False)
  single = _build(config)
  initial_weights = single[1].get_weights()
  batch = next(iter(single[0].build_inputs(config.task.train_data)))

  with strategy.scope():
    mirrored = _build(config)
  mirrored[1].set_weights(initial_weights)
  size = 4 // strategy.num_replicas_in_sync

  def replica_batch(context):
    # Contiguous halves of the global batch, as dataset sharding would give.
    start = context.replica_id_in_sync_group * size
    return {key: value[start:start + size] for key, value in batch.items()}

  task, model, optimizer, metrics = mirrored
  distributed_batch = strategy.experimental_distribute_values_from_function(
      replica_batch)
  per_replica_logs = strategy.run(
      tf.function(lambda b: task.train_step(b, model, optimizer, metrics)),
      args=(distributed_batch,))
  mirrored_loss = strategy.reduce(
      tf.distribute.ReduceOp.MEAN, per_replica_logs[task.loss], axis=None)

  task, model, optimizer, metrics = single
  single_logs = tf.function(
      lambda b: task.train_step(b, model, optimizer, metrics))(batch)

  def gradient_norm(metrics):
    return float({m.name: m for m in metrics}['gradient_norm'].result())

  return {
      'num_replicas': strategy.num_replicas_in_sync,
      'replica_tokens': [int(np.sum(batch['label_lengths'][start:start + size]))
                         for start in range(0, 4, size)],
      'mirrored_loss': float(mirrored_loss),
      'single_loss': float(single_logs[task.loss]),
      'mirrored_gradient_norm': gradient_norm(mirrored[3]),
      'single_gradient_norm': gradient_norm(single[3]),
      'max_weight_difference': max(
          float(np.max(np.abs(a - b))) for a, b in zip(
              mirrored[1].get_weights(), single[1].get_weights())),
      'max_weight_change': max(
          float(np.max(np.abs(a - b))) for a, b in zip(
              single[1].get_weights(), initial_weights)),
  }


if __name__ == '__main__':
  if len(sys.argv) == 4 and sys.argv[1] == _MIRRORED_COMMAND:
    _mirrored_step_main(sys.argv[2], sys.argv[3])
  else:
    tf.test.main()
