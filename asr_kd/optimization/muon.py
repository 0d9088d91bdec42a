"""Muon for the hidden weight matrices, Adam for every other variable.

Muon (Jordan et al. 2024, "Muon: an optimizer for hidden layers") keeps a
Nesterov momentum of the gradient and replaces each update matrix by the
nearest semi-orthogonal matrix (all singular values near 1), computed by a
few Newton-Schulz iterations. Every direction of the matrix then moves by
the same amount, where Adam's update is dominated by a few directions.

The update is scaled by 0.2 * sqrt(max(rows, cols)) (Liu et al. 2025, "Muon
is scalable for LLM training"), which gives it about the root-mean-square of
an Adam update, so both groups share one learning rate and schedule.

Which variables are matrices to orthogonalize is chosen by name
(`muon_variables_regex`): embeddings, the first and last layers, convolution
kernels and recurrent cells stay with Adam, as in the papers.
"""

import re
from typing import Sequence, Tuple

import tensorflow as tf
import tf_keras

# Quintic iteration coefficients from Jordan et al. 2024: they push singular
# values in (0, 1] towards [0.7, 1.2] in five steps, faster than the cubic
# Newton-Schulz iteration, which converges to exactly 1 but slowly.
_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

# Default selection: the Conformer blocks' feed-forward, attention and
# pointwise-convolution kernels and the joint network's two input
# projections (asr_kd.modeling).
DEFAULT_MUON_VARIABLES_REGEX = (
    r'(ffn|attention|convolution/pointwise_\w+)/.*kernel|position_kernel'
    r'|(encoder|prediction)_projection/kernel')


def matrix_shape(name: str, shape: Sequence[int]) -> Tuple[int, int]:
  """The (inputs, outputs) matrix a kernel of `shape` is reshaped to.

  Dense kernels are [inputs, outputs]. Attention kernels are EinsumDense
  [model, heads, head_dim] (query, key, value, position) or [heads,
  head_dim, model] (output): the head axes belong to the outputs in the first
  case and to the inputs in the second.

  Args:
    name: the variable's name.
    shape: its static shape, rank >= 2.

  Returns:
    (rows, cols) with rows * cols equal to the number of elements.
  """
  shape = list(shape)
  if len(shape) == 3 and re.search(r'attention/output/', name):
    return shape[0] * shape[1], shape[2]
  rows = shape[0]
  cols = 1
  for size in shape[1:]:
    cols *= size
  return rows, cols


def orthogonalize(matrix: tf.Tensor, steps: int = 5) -> tf.Tensor:
  """Approximates U V^T of matrix = U S V^T by Newton-Schulz iterations.

  Args:
    matrix: float [rows, cols].
    steps: iterations; 5 leaves singular values within about [0.7, 1.2].

  Returns:
    float32 [rows, cols].
  """
  a, b, c = _NS_COEFFICIENTS
  x = tf.cast(matrix, tf.float32)
  transposed = x.shape[0] > x.shape[1]
  if transposed:  # Iterate on the smaller Gram matrix.
    x = tf.transpose(x)
  # Frobenius normalization bounds the spectral norm by 1.
  x = x / (tf.norm(x) + 1e-7)
  for _ in range(steps):
    gram = tf.matmul(x, x, transpose_b=True)
    x = a * x + tf.matmul(b * gram + c * tf.matmul(gram, gram), x)
  return tf.transpose(x) if transposed else x


class MuonWithAdam(tf_keras.optimizers.legacy.Optimizer):
  """Muon on the variables named by a regex, Adam on the rest.

  Both groups use `learning_rate` (a float or schedule). The Adam group
  follows tf_keras' legacy Adam; gradient clipping arguments (clipnorm,
  global_clipnorm) apply to all gradients before either rule.
  """

  def __init__(self,
               learning_rate=0.001,
               momentum: float = 0.95,
               nesterov: bool = True,
               ns_steps: int = 5,
               muon_variables_regex: str = DEFAULT_MUON_VARIABLES_REGEX,
               beta_1: float = 0.9,
               beta_2: float = 0.98,
               epsilon: float = 1e-9,
               name: str = 'MuonWithAdam',
               **kwargs):
    super().__init__(name, **kwargs)
    self._set_hyper('learning_rate', kwargs.get('lr', learning_rate))
    self._set_hyper('momentum', momentum)
    self._set_hyper('beta_1', beta_1)
    self._set_hyper('beta_2', beta_2)
    self.nesterov = nesterov
    self.ns_steps = ns_steps
    self.epsilon = epsilon
    self.muon_variables_regex = muon_variables_regex
    self._muon_pattern = re.compile(muon_variables_regex)

  def uses_muon(self, var) -> bool:
    return len(var.shape) >= 2 and bool(self._muon_pattern.search(var.name))

  def _create_slots(self, var_list):
    for var in var_list:
      if self.uses_muon(var):
        self.add_slot(var, 'momentum')
      else:
        self.add_slot(var, 'm')
        self.add_slot(var, 'v')

  def _prepare_local(self, var_device, var_dtype, apply_state):
    super()._prepare_local(var_device, var_dtype, apply_state)
    step = tf.cast(self.iterations + 1, var_dtype)
    beta_1 = tf.identity(self._get_hyper('beta_1', var_dtype))
    beta_2 = tf.identity(self._get_hyper('beta_2', var_dtype))
    lr = apply_state[(var_device, var_dtype)]['lr_t']
    apply_state[(var_device, var_dtype)].update(
        adam_lr=lr * tf.sqrt(1 - tf.pow(beta_2, step)) /
        (1 - tf.pow(beta_1, step)),
        beta_1=beta_1,
        beta_2=beta_2,
        momentum=tf.identity(self._get_hyper('momentum', var_dtype)))

  def _resource_apply_dense(self, grad, var, apply_state=None):
    coefficients = ((apply_state or {}).get((var.device, var.dtype.base_dtype))
                    or self._fallback_apply_state(var.device,
                                                  var.dtype.base_dtype))
    if self.uses_muon(var):
      return self._apply_muon(grad, var, coefficients)
    return self._apply_adam(grad, var, coefficients)

  def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
    # Embedding rows: densify (the tables here are small) and use Adam.
    dense = tf.math.unsorted_segment_sum(grad, indices, tf.shape(var)[0])
    return self._resource_apply_dense(dense, var, apply_state)

  def _apply_adam(self, grad, var, coefficients):
    m = self.get_slot(var, 'm')
    v = self.get_slot(var, 'v')
    beta_1, beta_2 = coefficients['beta_1'], coefficients['beta_2']
    m_t = m.assign(beta_1 * m + (1 - beta_1) * grad)
    v_t = v.assign(beta_2 * v + (1 - beta_2) * tf.square(grad))
    return var.assign_sub(
        coefficients['adam_lr'] * m_t / (tf.sqrt(v_t) + self.epsilon))

  def _apply_muon(self, grad, var, coefficients):
    buffer = self.get_slot(var, 'momentum')
    momentum = coefficients['momentum']
    buffer_t = buffer.assign(momentum * buffer + grad)
    direction = grad + momentum * buffer_t if self.nesterov else buffer_t
    rows, cols = matrix_shape(var.name, var.shape)
    update = orthogonalize(tf.reshape(direction, [rows, cols]), self.ns_steps)
    scale = 0.2 * max(rows, cols)**0.5
    return var.assign_sub(coefficients['lr_t'] * scale *
                          tf.reshape(tf.cast(update, var.dtype), var.shape))

  def get_config(self):
    config = super().get_config()
    config.update({
        'learning_rate': self._serialize_hyperparameter('learning_rate'),
        'momentum': self._serialize_hyperparameter('momentum'),
        'beta_1': self._serialize_hyperparameter('beta_1'),
        'beta_2': self._serialize_hyperparameter('beta_2'),
        'nesterov': self.nesterov,
        'ns_steps': self.ns_steps,
        'epsilon': self.epsilon,
        'muon_variables_regex': self.muon_variables_regex,
    })
    return config
