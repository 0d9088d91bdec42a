"""Checks the test environment itself: the pinned TF stack imports."""

import tensorflow as tf


class EnvironmentTest(tf.test.TestCase):

  def test_pinned_tensorflow_family(self):
    import tensorflow_text  # pylint: disable=g-import-not-at-top,unused-import
    import tf_keras  # pylint: disable=g-import-not-at-top
    self.assertEqual(tf.__version__, '2.17.1')
    self.assertEqual(tf_keras.__version__, '2.17.0')
