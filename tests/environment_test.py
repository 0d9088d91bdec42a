"""The pinned stack: every package requirements.txt lists imports together."""

import importlib
import os
import subprocess
import sys

import tensorflow as tf


class EnvironmentTest(tf.test.TestCase):

  def test_pinned_tensorflow_family(self):
    import tensorflow_text  # pylint: disable=g-import-not-at-top
    import tf_keras  # pylint: disable=g-import-not-at-top
    import official  # pylint: disable=g-import-not-at-top,unused-import
    self.assertEqual(tf.__version__, '2.17.1')
    self.assertEqual(tf_keras.__version__, '2.17.0')
    self.assertEqual(tensorflow_text.__version__, '2.17.0')

  def test_every_required_package_imports(self):
    # tensorflow_datasets fails under an unpinned resolution (protobuf 4.25
    # without tensorflow-metadata 1.16.1); tensorflow_io's native ops fail to
    # load under TF 2.18+.
    for module in ('tensorflow_datasets', 'tensorflow_io', 'apache_beam',
                   'official.core.train_lib', 'sentencepiece',
                   'espeakng_loader', 'soundfile', 'jiwer',
                   'wordfreq'):
      with self.subTest(module=module):
        self.assertIsNotNone(importlib.import_module(module))

  def test_tensorflow_io_native_audio_ops_load(self):
    import tensorflow_io as tfio  # pylint: disable=g-import-not-at-top
    tone = tf.cast(1000 * tf.sin(tf.range(1600, dtype=tf.float32) / 5.0),
                   tf.int16)[:, tf.newaxis]
    resampled = tfio.audio.resample(tf.cast(tone, tf.float32), 16000, 8000)
    self.assertEqual(resampled.shape[0], 800)

  def test_importing_asr_kd_turns_onednn_on_unless_set(self):
    # Each setting needs a fresh process: TensorFlow reads it once, on load.
    probe = ('import asr_kd, tensorflow; '
             'from tensorflow.python.util import _pywrap_util_port as port; '
             'print(port.IsMklEnabled())')
    for setting, expected in ((None, 'True'), ('0', 'False')):
      with self.subTest(setting=setting):
        env = {k: v for k, v in os.environ.items()
               if k != 'TF_ENABLE_ONEDNN_OPTS'}
        if setting is not None:
          env['TF_ENABLE_ONEDNN_OPTS'] = setting
        printed = subprocess.run([sys.executable, '-c', probe], env=env,
                                 check=True, capture_output=True, text=True)
        self.assertEqual(printed.stdout.strip(), expected)


if __name__ == '__main__':
  tf.test.main()
