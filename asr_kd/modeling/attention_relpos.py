"""Multi-head self-attention with Transformer-XL style relative positions.

logit(i, j) = [(q_i + u) . k_j + (q_i + v) . W_r r(j - i)] / sqrt(head_dim)

with r(d) a sinusoidal embedding of the relative distance d = key position -
query position, W_r a learned projection and u, v learned per-head biases
(Dai et al. 2019, as used by Gulati et al. 2020). Distances are clipped to
[-max_relative_position, max_relative_position] and the position term is
gathered per (query, key) pair instead of computed with the "rel-shift" trick:
it then depends only on the two positions, so a query in a streaming chunk
attending to cached keys gets exactly the logits it gets in the full
(masked) computation.
"""

from typing import Dict

import numpy as np
import tensorflow as tf
import tf_keras

from asr_kd.modeling import quantization_hints

# Added to masked logits; large enough that exp() underflows to exactly 0.
_MASK_LOGIT = -1e9


def sinusoidal_relative_embeddings(max_distance: int, dim: int) -> np.ndarray:
  """Sinusoidal embeddings of distances -max_distance..max_distance.

  Args:
    max_distance: Largest absolute distance.
    dim: Embedding width (even or odd).

  Returns:
    float32 array [2 * max_distance + 1, dim]; row r embeds r - max_distance.
  """
  distances = np.arange(-max_distance, max_distance + 1, dtype=np.float64)
  inverse_frequencies = 1.0 / (10000.0 ** (np.arange(0, dim, 2) / dim))
  angles = distances[:, None] * inverse_frequencies[None, :]
  embeddings = np.zeros([distances.shape[0], dim])
  embeddings[:, 0::2] = np.sin(angles)
  embeddings[:, 1::2] = np.cos(angles)[:, :dim // 2]
  return embeddings.astype(np.float32)


class RelativePositionMultiHeadAttention(tf_keras.layers.Layer):
  """Self-attention whose logits include a relative-position term."""

  def __init__(self, model_dim: int, num_heads: int,
               max_relative_position: int, dropout_rate: float = 0.0,
               **kwargs):
    """Initializes the layer.

    Args:
      model_dim: Input and output width; split evenly across heads.
      num_heads: Number of heads.
      max_relative_position: Clipping distance for relative positions.
      dropout_rate: Dropout on the attention probabilities.
      **kwargs: Passed to `tf_keras.layers.Layer`.
    """
    super().__init__(**kwargs)
    if model_dim % num_heads:
      raise ValueError(f'model_dim {model_dim} not divisible by num_heads '
                       f'{num_heads}.')
    self._num_heads = num_heads
    self._head_dim = model_dim // num_heads
    self._max_relative_position = max_relative_position
    heads = [num_heads, self._head_dim]
    self._query = tf_keras.layers.EinsumDense(
        'btd,dhk->bthk', output_shape=[None] + heads, bias_axes='hk',
        name='query')
    self._key = tf_keras.layers.EinsumDense(
        'btd,dhk->bthk', output_shape=[None] + heads, bias_axes='hk',
        name='key')
    self._value = tf_keras.layers.EinsumDense(
        'btd,dhk->bthk', output_shape=[None] + heads, bias_axes='hk',
        name='value')
    self._output = tf_keras.layers.EinsumDense(
        'bthk,hkd->btd', output_shape=[None, model_dim], bias_axes='d',
        name='output')
    self._dropout = tf_keras.layers.Dropout(dropout_rate)
    self._relative_embeddings = tf.constant(
        sinusoidal_relative_embeddings(max_relative_position, model_dim))
    # Created here, not in build(): stream() bypasses __call__.
    self._position_kernel = self.add_weight(
        'position_kernel', shape=[model_dim] + heads,
        initializer='glorot_uniform')
    self._content_bias = self.add_weight(
        'content_bias', shape=heads, initializer='zeros')
    self._position_bias = self.add_weight(
        'position_bias', shape=heads, initializer='zeros')

  def key_value(self, inputs: tf.Tensor):
    """Projects [B, T, D] inputs to keys and values [B, T, heads, head_dim]."""
    return self._key(inputs), self._value(inputs)

  def attend(self, queries_input: tf.Tensor, keys: tf.Tensor,
             values: tf.Tensor, attention_mask: tf.Tensor,
             query_offset, training=False) -> tf.Tensor:
    """Attention of queries at positions query_offset + [0, Tq) to keys.

    Args:
      queries_input: [B, Tq, D] normalized inputs of the queries.
      keys: [B, Tk, heads, head_dim], at positions [0, Tk).
      values: [B, Tk, heads, head_dim].
      attention_mask: [B, Tq, Tk] or broadcastable; 1 where a query may
        attend a key, 0 elsewhere.
      query_offset: Position of the first query (scalar int).
      training: Enables dropout.

    Returns:
      [B, Tq, D].
    """
    queries = self._query(queries_input)
    # Logits to probabilities stay float in full-int8 export: the -1e9 mask
    # would take the whole int8 range and sharp logits lose too much at 256
    # levels (quantization_hints).
    with quantization_hints.keep_float_scope():
      probabilities = self._probabilities(queries, keys, attention_mask,
                                          query_offset)
    probabilities = self._dropout(probabilities, training=training)
    context = tf.einsum('bhqt,bthk->bqhk', probabilities, values)
    return self._output(context)

  def _probabilities(self, queries: tf.Tensor, keys: tf.Tensor,
                     attention_mask: tf.Tensor,
                     query_offset) -> tf.Tensor:
    """Softmax over keys of content + relative-position logits [B, h, Tq, Tk].

    Args: as `attend`'s, with `queries` already projected [B, Tq, h, k].
    """
    scale = 1.0 / np.sqrt(self._head_dim)
    content_logits = tf.einsum(
        'bqhk,bthk->bhqt', queries + self._content_bias, keys)
    positions = tf.einsum(
        'rd,dhk->rhk', tf.cast(self._relative_embeddings, queries.dtype),
        self._position_kernel)
    # [Tq, 2R+1, B, heads]: one logit per query and relative distance ...
    position_logits = tf.einsum(
        'bqhk,rhk->qrbh', queries + self._position_bias, positions)
    num_queries = tf.shape(queries)[1]
    num_keys = tf.shape(keys)[1]
    query_positions = tf.range(num_queries) + query_offset
    key_positions = tf.range(num_keys)
    relative_index = tf.clip_by_value(
        key_positions[tf.newaxis, :] - query_positions[:, tf.newaxis],
        -self._max_relative_position,
        self._max_relative_position) + self._max_relative_position
    # ... picked per (query, key) pair: [Tq, Tk, B, heads] -> [B, heads, Tq,
    # Tk].
    position_logits = tf.gather(
        position_logits, relative_index, axis=1, batch_dims=1)
    position_logits = tf.transpose(position_logits, [2, 3, 0, 1])
    logits = tf.cast((content_logits + position_logits) * scale, tf.float32)
    mask = tf.cast(attention_mask, tf.float32)[:, tf.newaxis]
    logits += (1.0 - mask) * _MASK_LOGIT
    return tf.cast(tf.nn.softmax(logits, axis=-1), queries.dtype)

  def call(self, inputs: tf.Tensor, attention_mask: tf.Tensor,
           training=False) -> tf.Tensor:
    """Self-attention over whole sequences.

    Args:
      inputs: [B, T, D].
      attention_mask: [B, T, T], 1 where query t may attend key t'.
      training: Enables dropout.

    Returns:
      [B, T, D].
    """
    keys, values = self.key_value(inputs)
    return self.attend(inputs, keys, values, attention_mask, 0, training)

  def initial_state(self, batch_size,
                    cache_frames: int) -> Dict[str, tf.Tensor]:
    """Zero key/value caches of `cache_frames` frames."""
    shape = [batch_size, cache_frames, self._num_heads, self._head_dim]
    return {'key': tf.zeros(shape, self.compute_dtype),
            'value': tf.zeros(shape, self.compute_dtype)}

  def stream(self, inputs: tf.Tensor, key_mask: tf.Tensor,
             state: Dict[str, tf.Tensor], training=False):
    """Attention of one chunk to the cached keys and itself.

    Args:
      inputs: [B, C, D] chunk.
      key_mask: [B, cache_frames + C], 1 for valid cached and chunk frames.
      state: {'key', 'value'} caches [B, cache_frames, heads, head_dim].
      training: Enables dropout.

    Returns:
      ([B, C, D], new_state) where new_state caches the last cache_frames
      keys and values.
    """
    chunk_keys, chunk_values = self.key_value(inputs)
    keys = tf.concat([state['key'], chunk_keys], axis=1)
    values = tf.concat([state['value'], chunk_values], axis=1)
    cache_frames = tf.shape(state['key'])[1]
    outputs = self.attend(inputs, keys, values, key_mask[:, tf.newaxis, :],
                          cache_frames, training)
    chunk_frames = tf.shape(inputs)[1]
    new_state = {'key': keys[:, chunk_frames:],
                 'value': values[:, chunk_frames:]}
    return outputs, new_state
