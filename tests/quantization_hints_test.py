"""Tests for asr_kd/modeling/quantization_hints.py."""

import tensorflow as tf

from asr_kd.modeling import quantization_hints


class QuantizationHintsTest(tf.test.TestCase):

  def test_names_under_the_scope_at_any_depth_and_uniquified(self):
    for name in ('keep_float/Log', 'keep_float_3/Softmax',
                 'first_ffn/norm/keep_float/batchnorm/Rsqrt',
                 'encoder/keep_float_12/add;other/op'):
      self.assertTrue(quantization_hints.is_kept_float(name), name)

  def test_other_names(self):
    for name in ('Log', 'keep_floating/Log', 'my_keep_float/Log',
                 'keep_float_x/Log', 'a/keep_float', 'keep_float'):
      self.assertFalse(quantization_hints.is_kept_float(name), name)

  def test_graph_ops_get_matching_names(self):
    # Names as TF makes them when the scope is entered repeatedly.

    @tf.function
    def scoped(x):
      outputs = []
      for _ in range(3):
        with tf.name_scope(quantization_hints.KEEP_FLOAT_SCOPE):
          outputs.append(tf.math.log(x))
      return tf.add_n(outputs)

    graph = scoped.get_concrete_function(
        tf.TensorSpec([2], tf.float32)).graph
    logs = [op.name for op in graph.get_operations() if op.type == 'Log']
    self.assertLen(logs, 3)
    self.assertTrue(all(quantization_hints.is_kept_float(name + ':0')
                        for name in logs), logs)


if __name__ == '__main__':
  tf.test.main()
