"""Conformer modules against float64 NumPy references."""

import numpy as np
import tensorflow as tf

import asr_kd  # pylint: disable=unused-import  (sets TF_USE_LEGACY_KERAS)
from asr_kd.configs import conformer_config
from asr_kd.modeling import attention_relpos
from asr_kd.modeling import conformer_layers
from asr_kd.modeling import subsampling


def _np_layer_norm(inputs, gamma, beta, epsilon=1e-5):
  mean = inputs.mean(-1, keepdims=True)
  variance = inputs.var(-1, keepdims=True)
  return (inputs - mean) / np.sqrt(variance + epsilon) * gamma + beta


def _np_sigmoid(values):
  return 1.0 / (1.0 + np.exp(-values))


def _np_relative_embedding(distance, dim):
  """Element by element: even i -> sin(d / 1e4^(i/dim)), odd -> cos."""
  row = np.zeros(dim)
  for i in range(dim):
    frequency_index = i - (i % 2)
    angle = distance / 10000.0 ** (frequency_index / dim)
    row[i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
  return row


def _np_attention(inputs, mask, weights, num_heads, max_distance):
  """Relative-position attention, one (query, key) pair at a time."""
  (query_kernel, query_bias, key_kernel, key_bias, value_kernel, value_bias,
   output_kernel, output_bias, position_kernel, content_bias,
   position_bias) = weights
  batch, frames, dim = inputs.shape
  head_dim = dim // num_heads
  queries = np.einsum('btd,dhk->bthk', inputs, query_kernel) + query_bias
  keys = np.einsum('btd,dhk->bthk', inputs, key_kernel) + key_bias
  values = np.einsum('btd,dhk->bthk', inputs, value_kernel) + value_bias
  outputs = np.zeros([batch, frames, num_heads, head_dim])
  for b in range(batch):
    for h in range(num_heads):
      for q in range(frames):
        logits = np.full(frames, -np.inf)
        for k in range(frames):
          if not mask[b, q, k]:
            continue
          distance = np.clip(k - q, -max_distance, max_distance)
          position = (_np_relative_embedding(distance, dim) @
                      position_kernel[:, h, :])
          logits[k] = ((queries[b, q, h] + content_bias[h]) @ keys[b, k, h] +
                       (queries[b, q, h] + position_bias[h]) @ position)
        logits = logits / np.sqrt(head_dim)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        outputs[b, q, h] = probabilities @ values[b, :, h]
  return np.einsum('bthk,hkd->btd', outputs, output_kernel) + output_bias


class RelativeAttentionTest(tf.test.TestCase):

  def test_embeddings_match_elementwise_formula(self):
    embeddings = attention_relpos.sinusoidal_relative_embeddings(5, 7)
    expected = np.stack([_np_relative_embedding(d, 7) for d in range(-5, 6)])
    self.assertAllClose(embeddings, expected, atol=1e-6)

  def test_matches_numpy_reference_with_random_masks(self):
    rng = np.random.default_rng(1)
    for max_distance in (2, 20):
      layer = attention_relpos.RelativePositionMultiHeadAttention(
          model_dim=8, num_heads=2, max_relative_position=max_distance)
      inputs = rng.standard_normal([2, 9, 8])
      mask = rng.random([2, 9, 9]) < 0.6
      mask[:, np.arange(9), np.arange(9)] = True  # Every query sees a key.
      layer(tf.constant(inputs, tf.float32), tf.constant(mask, tf.float32))
      # Random (non-zero) biases so that every term is exercised.
      for variable in (layer._content_bias, layer._position_bias,
                       layer._query.bias, layer._output.bias):
        variable.assign(rng.standard_normal(variable.shape))
      weights = [np.asarray(w, np.float64) for w in (
          layer._query.kernel, layer._query.bias, layer._key.kernel,
          layer._key.bias, layer._value.kernel, layer._value.bias,
          layer._output.kernel, layer._output.bias, layer._position_kernel,
          layer._content_bias, layer._position_bias)]
      outputs = layer(tf.constant(inputs, tf.float32),
                      tf.constant(mask, tf.float32))
      expected = _np_attention(inputs, mask, weights, 2, max_distance)
      self.assertAllClose(outputs, expected, atol=1e-5, rtol=1e-5)

  def test_stream_equals_masked_call(self):
    rng = np.random.default_rng(2)
    layer = attention_relpos.RelativePositionMultiHeadAttention(
        model_dim=8, num_heads=2, max_relative_position=3)
    inputs = tf.constant(rng.standard_normal([1, 6, 8]), tf.float32)
    # Queries 4..5 see keys 0..5: what a chunk of 2 with a cache of 4 sees.
    mask = np.zeros([1, 6, 6], np.float32)
    mask[:, 4:, :] = 1.0
    full = layer(inputs, mask)
    state = layer.initial_state(1, 4)
    _, state = layer.stream(inputs[:, :4], tf.ones([1, 8]), state)
    streamed, _ = layer.stream(inputs[:, 4:], tf.ones([1, 6]), state)
    self.assertAllClose(streamed, full[:, 4:], atol=1e-5)


class ConvolutionModuleTest(tf.test.TestCase):

  def _reference(self, layer, inputs, mask, causal, norm):
    dim = inputs.shape[-1]
    weights = {w.name.split('/')[-2] + '/' + w.name.split('/')[-1][:-2]:
               np.asarray(w, np.float64) for w in layer.weights}
    normed = _np_layer_norm(inputs, weights['input_norm/gamma'],
                            weights['input_norm/beta'])
    pointwise = (normed @ weights['pointwise_in/kernel'] +
                 weights['pointwise_in/bias'])
    gated = (pointwise[..., :dim] * _np_sigmoid(pointwise[..., dim:]) *
             mask[..., None])
    kernel = weights['depthwise/depthwise_kernel'][:, :, 0]  # [K, D]
    size = kernel.shape[0]
    left = size - 1 if causal else (size - 1) // 2
    depthwise = np.zeros_like(gated)
    for t in range(gated.shape[1]):
      for j in range(size):
        source = t - left + j
        if 0 <= source < gated.shape[1]:
          depthwise[:, t] += kernel[j] * gated[:, source]
    depthwise += weights['depthwise/bias']
    if norm == 'layer_norm':
      normed = _np_layer_norm(depthwise, weights['layer_norm/gamma'],
                              weights['layer_norm/beta'])
    else:
      normed = ((depthwise - weights['batch_norm/moving_mean']) /
                np.sqrt(weights['batch_norm/moving_variance'] + 1e-3) *
                weights['batch_norm/gamma'] + weights['batch_norm/beta'])
    activated = normed * _np_sigmoid(normed)
    return (activated @ weights['pointwise_out/kernel'] +
            weights['pointwise_out/bias'])

  def test_matches_numpy_reference(self):
    rng = np.random.default_rng(3)
    for causal, norm in ((True, 'layer_norm'), (False, 'batch_norm'),
                         (False, 'layer_norm')):
      layer = conformer_layers.ConvolutionModule(
          model_dim=6, kernel_size=4, causal=causal, norm=norm,
          dropout_rate=0.0)
      inputs = rng.standard_normal([2, 11, 6])
      mask = np.ones([2, 11])
      mask[1, 7:] = 0.0
      layer(tf.constant(inputs, tf.float32), tf.constant(mask, tf.float32))
      for variable in layer.weights:  # Non-trivial biases and statistics.
        values = rng.standard_normal(variable.shape)
        if 'variance' in variable.name:
          values = np.abs(values) + 0.5
        variable.assign(values)
      outputs = layer(tf.constant(inputs, tf.float32),
                      tf.constant(mask, tf.float32))
      expected = self._reference(layer, inputs, mask, causal, norm)
      self.assertAllClose(outputs, expected, atol=1e-4, rtol=1e-4)

  def test_causal_rejects_batch_norm(self):
    with self.assertRaisesRegex(ValueError, 'batch_norm'):
      conformer_layers.ConvolutionModule(6, 3, True, 'batch_norm', 0.0)


class FeedForwardAndStochasticDepthTest(tf.test.TestCase):

  def test_feed_forward_matches_numpy_reference(self):
    rng = np.random.default_rng(4)
    layer = conformer_layers.FeedForwardModule(5, 3, dropout_rate=0.5)
    inputs = rng.standard_normal([2, 4, 5])
    layer(tf.constant(inputs, tf.float32))
    for variable in layer.weights:
      variable.assign(rng.standard_normal(variable.shape))
    weights = [np.asarray(w, np.float64) for w in layer.weights]
    gamma, beta, expand_kernel, expand_bias, project_kernel, project_bias = (
        weights)
    hidden = _np_layer_norm(inputs, gamma, beta) @ expand_kernel + expand_bias
    hidden = hidden * _np_sigmoid(hidden)
    expected = hidden @ project_kernel + project_bias
    self.assertAllClose(layer(tf.constant(inputs, tf.float32)), expected,
                        atol=1e-4, rtol=1e-4)

  def test_stochastic_depth_drops_whole_examples(self):
    layer = conformer_layers.StochasticDepth(0.25)
    branch = tf.ones([4000, 3, 2])
    self.assertAllEqual(layer(branch, training=False), branch)
    dropped = layer(branch, training=True).numpy()
    per_example = dropped.reshape(4000, -1)
    # Each example is all zeros or all 1 / keep_rate.
    self.assertTrue(np.all(per_example.min(1) == per_example.max(1)))
    self.assertAllInSet(np.unique(per_example), [0.0, 1.0 / 0.75])
    self.assertNear((per_example[:, 0] == 0).mean(), 0.25, 0.04)


class SubsamplingTest(tf.test.TestCase):

  def test_lengths_shapes_and_causality(self):
    rng = np.random.default_rng(5)
    for factor in (4, 6, 8):
      layer = subsampling.ConvSubsampling(factor, 4, 23, 8, 0.0)
      for frames in (factor, 2 * factor + 1, 5 * factor - 1):
        features = rng.standard_normal([1, frames, 23]).astype(np.float32)
        outputs = layer(features)
        self.assertEqual(outputs.shape[1], frames // factor)
        self.assertEqual(int(layer.output_lengths(tf.constant(frames))),
                         frames // factor)
        # Output t reads nothing at or past frame (t + 1) * factor.
        changed = features.copy()
        changed[:, factor:] += 10.0
        self.assertAllClose(layer(changed)[:, :1], outputs[:, :1])
        if frames // factor > 1:
          self.assertNotAllClose(layer(changed)[:, 1:], outputs[:, 1:])


class ConfigTest(tf.test.TestCase):

  def test_validation_errors(self):
    bad = [dict(subsampling_factor=5), dict(causal=True,
                                            conv_norm='batch_norm'),
           dict(model_dim=30, num_heads=4), dict(conv_norm='group_norm'),
           dict(causal=True, conv_norm='layer_norm', left_chunks=-1),
           dict(dropout_rate=1.0)]
    for overrides in bad:
      config = conformer_config.ConformerEncoderConfig(**overrides)
      with self.assertRaises(ValueError, msg=str(overrides)):
        config.validate()
    conformer_config.ConformerEncoderConfig().validate()
    with self.assertRaisesRegex(ValueError, 'Unknown Conformer preset'):
      conformer_config.get_preset('conformer_xl')


if __name__ == '__main__':
  tf.test.main()
