"""Tests for asr_kd.export.tflite_file_check on a real exported model."""

import tensorflow as tf
# pylint: disable=g-direct-tensorflow-import
from tensorflow.lite.tools import flatbuffer_utils
# pylint: enable=g-direct-tensorflow-import

from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.export import streaming
from asr_kd.export import tflite_export
from asr_kd.export import tflite_file_check
from tests import export_tflite_test
from tests import testing_utils


class TfliteFileCheckTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    corpus = testing_utils.write_tiny_corpus(
        tf.compat.v1.test.get_temp_dir(), num_utterances=4)
    vocab_size = tokenizer_lib.Tokenizer(corpus['tokenizer']).vocab_size
    recognizer = streaming.StreamingRecognizer(
        export_tflite_test.build_streaming_model(corpus, vocab_size),
        max_symbols_per_frame=export_tflite_test.MAX_SYMBOLS)
    cls.model = tflite_export.convert(recognizer, 'none')

  def test_whole_model_passes_and_the_interpreter_opens_it(self):
    tflite_file_check.check_tflite_model(self.model, 'student.tflite')
    interpreter = tf.lite.Interpreter(model_content=self.model)
    self.assertIn('stream_step', interpreter.get_signature_list())

  def test_every_truncation_is_refused(self):
    size = len(self.model)
    cuts = sorted(set(range(0, 64)) | set(range(64, size, size // 500 + 1)) |
                  set(range(size - 64, size)))
    for cut in cuts:
      with self.assertRaisesRegex(tflite_file_check.TfliteFileError,
                                  'model.tflite is (truncated|not a TFLite)'):
        tflite_file_check.check_tflite_model(self.model[:cut], 'model.tflite')

  def test_other_files_are_not_tflite_models(self):
    for content in (b'', b'RIFF\x24\x00\x00\x00WAVEfmt ', b'\x00' * 100):
      with self.assertRaisesRegex(tflite_file_check.TfliteFileError,
                                  'not a TFLite model'):
        tflite_file_check.check_tflite_model(content, 'x.wav')

  def test_index_out_of_range_is_refused(self):
    # A model whose bytes all read but whose tensor points at a buffer the
    # model does not have: the interpreter would index past its array.
    model_object = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(self.model))
    model_object.subgraphs[0].tensors[0].buffer = len(model_object.buffers) + 5
    damaged = bytes(flatbuffer_utils.convert_object_to_bytearray(model_object))
    with self.assertRaisesRegex(tflite_file_check.TfliteFileError,
                                'damaged: tensor buffer'):
      tflite_file_check.check_tflite_model(damaged, 'model.tflite')


if __name__ == '__main__':
  tf.test.main()
