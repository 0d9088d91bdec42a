"""Tests for asr_kd.optimization (Muon + Adam) against float64 NumPy."""

import tempfile

from absl.testing import parameterized
import numpy as np
from official.core import exp_factory
from official.modeling.optimization import optimizer_factory
import tensorflow as tf
import tf_keras

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.optimization import muon
from asr_kd.optimization import optimization_config
from asr_kd.tasks import rnnt_task
from tests import testing_utils


def _newton_schulz_reference(matrix, steps=5):
  """The quintic iteration in float64, written out on the long orientation."""
  a, b, c = 3.4445, -4.7750, 2.0315
  x = np.asarray(matrix, np.float64)
  tall = x.shape[0] > x.shape[1]
  x = x.T if tall else x
  x = x / (np.sqrt(np.sum(x * x)) + 1e-7)
  for _ in range(steps):
    gram = x @ x.T
    x = a * x + (b * gram + c * gram @ gram) @ x
  return x.T if tall else x


def _reference_steps(values, grads_per_step, muon_names, lr, momentum=0.95,
                     beta_1=0.9, beta_2=0.98, epsilon=1e-9,
                     global_clipnorm=None):
  """Float64 Muon (Nesterov) / Adam updates of named arrays, step by step."""
  values = {k: np.asarray(v, np.float64) for k, v in values.items()}
  state = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in values.items()}
  for step, grads in enumerate(grads_per_step, start=1):
    grads = {k: np.asarray(g, np.float64) for k, g in grads.items()}
    if global_clipnorm is not None:
      norm = np.sqrt(sum(np.sum(g * g) for g in grads.values()))
      grads = {k: g * min(1.0, global_clipnorm / norm)
               for k, g in grads.items()}
    for name, grad in grads.items():
      first, second = state[name]
      if name in muon_names:
        rows, cols = muon_names[name]
        first = momentum * first + grad
        direction = (grad + momentum * first).reshape(rows, cols)
        update = _newton_schulz_reference(direction)
        values[name] = values[name] - lr * 0.2 * np.sqrt(max(rows, cols)) * (
            update.reshape(values[name].shape))
      else:
        first = beta_1 * first + (1 - beta_1) * grad
        second = beta_2 * second + (1 - beta_2) * grad * grad
        step_lr = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        values[name] = values[name] - step_lr * first / (
            np.sqrt(second) + epsilon)
      state[name] = (first, second)
  return values


class OrthogonalizeTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((6, 6), (5, 9), (12, 4))
  def test_matches_float64_iteration_and_flattens_the_spectrum(self, rows,
                                                                cols):
    rng = np.random.default_rng(rows * 100 + cols)
    # A spread of singular values (1e-2 .. 1e1), as in real gradients.
    left, _ = np.linalg.qr(rng.normal(size=(rows, rows)))
    right, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
    singular = np.zeros((rows, cols))
    np.fill_diagonal(singular, np.logspace(1, -2, min(rows, cols)))
    matrix = left @ singular @ right
    result = muon.orthogonalize(tf.constant(matrix, tf.float32)).numpy()
    self.assertAllClose(result, _newton_schulz_reference(matrix),
                        atol=2e-5, rtol=1e-4)
    # The iteration keeps the singular vectors and moves the singular values
    # of all but the tiniest directions into about [0.5, 1.25].
    got = np.linalg.svd(result, compute_uv=False)
    self.assertLess(got.max(), 1.25)
    self.assertGreater(np.sort(got)[-(min(rows, cols) - 1):].min(), 0.3)
    polar = left[:, :min(rows, cols)] @ right[:min(rows, cols), :]
    cosine = np.sum(result * polar) / (
        np.linalg.norm(result) * np.linalg.norm(polar))
    self.assertGreater(cosine, 0.95)

  def test_matrix_shape_groups_head_axes_with_their_side(self):
    self.assertEqual(muon.matrix_shape('b/ffn/expand/kernel:0', [8, 16]),
                     (8, 16))
    self.assertEqual(
        muon.matrix_shape('b/attention/query/kernel:0', [8, 2, 4]), (8, 8))
    self.assertEqual(
        muon.matrix_shape('b/attention/output/kernel:0', [2, 4, 8]), (8, 8))


class MuonWithAdamTest(tf.test.TestCase):

  def _variables(self, rng):
    shapes = {
        'enc/block_0/first_ffn/expand/kernel': (4, 6),
        'enc/block_0/attention/output/kernel': (2, 3, 5),
        'enc/block_0/attention/query/kernel': (5, 2, 3),
        'lstm_cell/kernel': (4, 8),
        'enc/block_0/first_ffn/expand/bias': (6,),
    }
    return {name: tf.Variable(rng.normal(size=shape).astype(np.float32),
                              name=name) for name, shape in shapes.items()}

  def _run(self, optimizer, variables, grads_per_step):
    for grads in grads_per_step:
      optimizer.apply_gradients(
          [(tf.constant(grads[name], tf.float32), variable)
           for name, variable in variables.items()])
    return {name: v.numpy() for name, v in variables.items()}

  def test_steps_match_float64_reference_with_global_clipping(self):
    rng = np.random.default_rng(0)
    variables = self._variables(rng)
    initial = {name: v.numpy() for name, v in variables.items()}
    grads_per_step = [
        {name: rng.normal(scale=3.0, size=v.shape) for name, v in
         variables.items()} for _ in range(3)]
    optimizer = muon.MuonWithAdam(learning_rate=0.01, global_clipnorm=2.0)
    got = self._run(optimizer, variables, grads_per_step)
    muon_names = {
        'enc/block_0/first_ffn/expand/kernel': (4, 6),
        'enc/block_0/attention/output/kernel': (6, 5),
        'enc/block_0/attention/query/kernel': (5, 6),
    }
    self.assertEqual(
        {name for name, v in variables.items() if optimizer.uses_muon(v)},
        set(muon_names))
    expected = _reference_steps(initial, grads_per_step, muon_names, lr=0.01,
                                global_clipnorm=2.0)
    for name in variables:
      self.assertAllClose(got[name], expected[name], atol=1e-5, rtol=1e-5,
                          msg=name)

  def test_muon_update_has_the_scaled_spectral_size_adam_has_not(self):
    # One step from zero momentum: each Muon matrix moves by lr * 0.2 *
    # sqrt(max dim) * (near-orthogonal matrix), whatever the gradient scale.
    rng = np.random.default_rng(1)
    for scale in (1e-4, 1e2):
      variables = self._variables(rng)
      before = variables['enc/block_0/first_ffn/expand/kernel'].numpy()
      grads = {name: rng.normal(scale=scale, size=v.shape)
               for name, v in variables.items()}
      self._run(muon.MuonWithAdam(learning_rate=0.1), variables, [grads])
      moved = (before - variables['enc/block_0/first_ffn/expand/kernel']
               .numpy()) / (0.1 * 0.2 * np.sqrt(6))
      singular = np.linalg.svd(moved, compute_uv=False)
      self.assertAllInRange(singular, 0.5, 1.25)

  def test_sparse_gradient_equals_dense(self):
    table = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    results = []
    for sparse in (True, False):
      variable = tf.Variable(table, name='embedding/embeddings')
      optimizer = muon.MuonWithAdam(learning_rate=0.1)
      for _ in range(2):
        with tf.GradientTape() as tape:
          rows = (tf.gather(variable, [0, 3, 3]) if sparse else
                  tf.matmul(tf.one_hot([0, 3, 3], 5), variable))
          loss = tf.reduce_sum(rows * tf.constant([[1.0, -2.0, 0.5]]))
        grad = tape.gradient(loss, variable)
        self.assertEqual(isinstance(grad, tf.IndexedSlices), sparse)
        optimizer.apply_gradients([(grad, variable)])
      results.append(variable.numpy())
    self.assertAllClose(results[0], results[1], atol=1e-6)

  def test_checkpoint_restores_momentum_and_adam_slots(self):
    rng = np.random.default_rng(3)
    grads_per_step = None
    outcomes = []
    directory = tempfile.mkdtemp()
    for resume in (False, True):
      variables = self._variables(np.random.default_rng(4))
      if grads_per_step is None:
        grads_per_step = [{name: rng.normal(size=v.shape) for name, v in
                           variables.items()} for _ in range(3)]
      optimizer = muon.MuonWithAdam(learning_rate=0.05)
      checkpoint = tf.train.Checkpoint(optimizer=optimizer, **{
          name.replace('/', '_'): v for name, v in variables.items()})
      if resume:
        self._run(optimizer, variables, grads_per_step[:1])
        path = checkpoint.save(directory + '/ckpt')
        variables = self._variables(np.random.default_rng(5))
        optimizer = muon.MuonWithAdam(learning_rate=0.05)
        self._run(optimizer, variables, grads_per_step[:1])  # Builds slots.
        checkpoint = tf.train.Checkpoint(optimizer=optimizer, **{
            name.replace('/', '_'): v for name, v in variables.items()})
        checkpoint.restore(path).assert_consumed()
        outcomes.append(self._run(optimizer, variables, grads_per_step[1:]))
      else:
        outcomes.append(self._run(optimizer, variables, grads_per_step))
    for name in outcomes[0]:
      self.assertAllClose(outcomes[0][name], outcomes[1][name], atol=1e-6)


class MuonConfigTest(tf.test.TestCase):

  def test_factory_builds_muon_from_the_config_with_its_schedule(self):
    config = optimization_config.AsrOptimizationConfig({
        'optimizer': {'type': 'muon',
                      'muon': {'momentum': 0.9, 'global_clipnorm': 5.0}},
        'learning_rate': {'type': 'constant',
                          'constant': {'learning_rate': 0.02}},
    })
    factory = optimizer_factory.OptimizerFactory(config)
    optimizer = factory.build_optimizer(factory.build_learning_rate())
    self.assertIsInstance(optimizer, muon.MuonWithAdam)
    self.assertAlmostEqual(float(optimizer._get_hyper('momentum')), 0.9)  # pylint: disable=protected-access
    self.assertEqual(optimizer.global_clipnorm, 5.0)

  def test_demo_teacher_returns_to_its_adam_recipe_with_one_key(self):
    config = exp_factory.get_exp_config('rnnt_demo_teacher')
    config.override({'trainer': {'optimizer_config': {
        'optimizer': {'type': 'adam'}}}}, is_strict=True)
    factory = optimizer_factory.OptimizerFactory(
        config.trainer.optimizer_config)
    optimizer = factory.build_optimizer(factory.build_learning_rate())
    self.assertIsInstance(optimizer, tf_keras.optimizers.legacy.Adam)
    self.assertEqual((optimizer.global_clipnorm, optimizer.epsilon),
                     (5.0, 1e-9))
    self.assertAlmostEqual(float(optimizer._get_hyper('beta_2')), 0.98,  # pylint: disable=protected-access
                           places=6)

  def test_demo_teacher_puts_the_hidden_matrices_on_muon_and_trains(self):
    corpus = testing_utils.write_tiny_corpus(tempfile.mkdtemp())
    config = testing_utils.tiny_experiment(corpus)
    config.task.jit_compile = False
    # The demo teacher's preset (tiny_experiment keeps its optimizer).
    self.assertEqual(config.trainer.optimizer_config.optimizer.type, 'muon')
    self.assertEqual(
        config.trainer.optimizer_config.optimizer.muon.global_clipnorm, 5.0)
    config.override({'trainer': {'optimizer_config': {
        'learning_rate': {'type': 'constant',
                          'constant': {'learning_rate': 0.01}}}}},
                    is_strict=True)
    task = rnnt_task.RnntTask(config.task)
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                      config.runtime)
    # The task wraps it for the non-finite 'skip' policy.
    inner = getattr(optimizer, 'inner_optimizer', optimizer)
    self.assertIsInstance(inner, muon.MuonWithAdam)
    on_muon = [v.name for v in model.trainable_variables
               if inner.uses_muon(v)]
    layers = config.task.model.encoder.num_layers
    # Per block: two feed-forward modules x 2 kernels, query/key/value/
    # output, the relative-position kernel and two pointwise convolutions;
    # plus the joint network's two input projections.
    self.assertLen(on_muon, 11 * layers + 2)
    for name in on_muon:
      self.assertNotRegex(
          name, 'embedding|lstm|subsampling|depthwise|joint_network/output|'
          'ctc_head|bias')
    metrics = task.build_metrics(training=True)
    train_step = tf.function(
        lambda batch: task.train_step(batch, model, optimizer, metrics))
    batch = next(iter(task.build_inputs(config.task.train_data)))
    losses = [float(train_step(batch)[task.loss]) for _ in range(8)]
    self.assertTrue(np.all(np.isfinite(losses)))
    self.assertLess(losses[-1], 0.8 * losses[0])


if __name__ == '__main__':
  tf.test.main()
