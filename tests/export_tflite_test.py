"""Tests for the streaming TFLite export (asr_kd/export/tflite_export.py)."""

import contextlib
import io
import os
import tempfile

import numpy as np
import tensorflow as tf
# pylint: disable=g-direct-tensorflow-import
from tensorflow.lite.tools import flatbuffer_utils
# pylint: enable=g-direct-tensorflow-import

from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.decoding import greedy
from asr_kd.decoding import wer as wer_lib
from asr_kd.export import streaming
from asr_kd.export import streaming_reference
from asr_kd.export import tflite_export
from asr_kd.export import tflite_runtime
from asr_kd.modeling import quantization_hints
from asr_kd.modeling import rnnt_model
from asr_kd.modeling import rnnt_stream
from tests import testing_utils

MAX_SYMBOLS = 2
# Quantized vs float on the tiny random model, 4 utterances (mean relative
# encoder error, token error rate), measured: dynamic_int8 0.010, 0.004
# (with the mel projection as an int8 matmul: 0.73, 0.55); full_int8 0.041,
# 0.056 (with only the frontend kept float: 0.19, 0.19).
MAX_DYNAMIC_INT8_RELATIVE_ERROR = 0.03
MAX_DYNAMIC_INT8_TOKEN_ERROR = 0.05
MAX_FULL_INT8_RELATIVE_ERROR = 0.1
MAX_FULL_INT8_TOKEN_ERROR = 0.15


def op_report(model_path: str) -> str:
  """tf.lite.experimental.Analyzer's report of a .tflite file."""
  analysis = io.StringIO()
  with contextlib.redirect_stdout(analysis):
    tf.lite.experimental.Analyzer.analyze(model_path=model_path)
  return analysis.getvalue()


def tensor_types_by_name(flatbuffer: bytes, subgraph_name: str,
                         computed_only: bool = False) -> dict:
  """{tensor name: TFLite TensorType enum} of one signature's subgraph.

  With `computed_only`, only the tensors that an operator outputs (no
  weights or other constants).
  """
  model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
  for subgraph in model.subgraphs:
    if subgraph.name.decode('utf-8') == subgraph_name:
      computed = {index for operator in subgraph.operators or []
                  for index in operator.outputs}
      return {tensor.name.decode('utf-8'): tensor.type
              for index, tensor in enumerate(subgraph.tensors)
              if index in computed or not computed_only}
  raise ValueError(f'no subgraph {subgraph_name}')


def decoder_tensor_types(types: dict) -> dict:
  """The `tensor_types_by_name` entries of the prediction projection.

  That joint-network layer (it projects the prediction network's output)
  keeps its name in the converted model; most other layer scopes are
  dropped from tensor names.
  """
  decoder_types = {name: tensor_type for name, tensor_type in types.items()
                   if 'prediction_projection/' in name}
  if not decoder_types:
    raise ValueError('no prediction_projection tensor in stream_step')
  return decoder_types


def build_streaming_model(corpus: dict, vocab_size: int,
                          seed: int = 3) -> rnnt_model.RnntModel:
  """The tiny causal model with random weights and the corpus stats.

  Untrained weights emit many tokens, so token parity is not vacuous.
  """
  tf.keras.utils.set_random_seed(seed)
  model = rnnt_model.RnntModel(testing_utils.tiny_model_config(causal=True),
                               vocab_size=vocab_size)
  model.build_for_checkpoint()
  model.set_feature_stats(
      *features_lib.load_feature_stats(corpus['feature_stats']))
  return model


class ExportTfliteTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    cls.corpus = testing_utils.write_tiny_corpus(
        os.path.join(cls.dir, 'corpus'), num_utterances=4)
    cls.tokenizer = tokenizer_lib.Tokenizer(cls.corpus['tokenizer'])
    cls.model = build_streaming_model(cls.corpus, cls.tokenizer.vocab_size)
    # Two encoder chunks per call: exercises the per-call step loop.
    cls.recognizer = streaming.StreamingRecognizer(
        cls.model, chunk_ms=2 * cls.model.encoder.chunk_frames_in * 10,
        max_symbols_per_frame=MAX_SYMBOLS)
    cls.model_path = os.path.join(cls.dir, 'student.tflite')
    with open(cls.model_path, 'wb') as model_file:
      model_file.write(tflite_export.convert(cls.recognizer, 'none'))
    tflite_export.write_vocab(tflite_export.vocab_path_for(cls.model_path),
                              cls.tokenizer.id_to_piece)
    cls.waveforms = tflite_export.read_record_waveforms(
        cls.corpus['tfrecords'], 4)

  def setUp(self):
    super().setUp()
    # tf.test.TestCase clears TF resources between tests: the in-graph
    # SentencePiece resource of a class-level tokenizer would be gone.
    self.tokenizer = tokenizer_lib.Tokenizer(self.corpus['tokenizer'])

  def reference(self, samples):
    return streaming_reference.streaming_greedy_reference(
        self.model, samples, self.recognizer.chunk_samples,
        self.recognizer.tail_samples, MAX_SYMBOLS)

  def test_signatures_and_builtin_ops_only(self):
    interpreter = tf.lite.Interpreter(model_path=self.model_path)
    signatures = interpreter.get_signature_list()
    self.assertCountEqual(signatures, ['initial_state', 'stream_step'])
    self.assertCountEqual(
        signatures['stream_step']['inputs'],
        ['audio_chunk', 'num_valid_samples'] + self.recognizer.state_names)
    report = op_report(self.model_path)
    self.assertIn('WHILE', report)  # the greedy loop, as a builtin.
    self.assertNotIn('Flex', report)
    self.assertNotIn('CUSTOM', report)
    details = interpreter.get_signature_runner(
        'stream_step').get_input_details()
    self.assertEqual(details['audio_chunk']['dtype'], np.int16)
    self.assertEqual(list(details['audio_chunk']['shape']),
                     [self.recognizer.chunk_samples])
    self.assertEqual(details['audio_tail']['dtype'], np.int16)

  def test_tflite_stream_matches_keras_streaming_reference(self):
    streamer = tflite_runtime.TfliteStreamer(self.model_path)
    total_tokens = 0
    # Whole corpus utterances (partial last chunk) and an exact multiple.
    cases = list(self.waveforms[:3]) + [
        self.waveforms[3][:3 * self.recognizer.chunk_samples]]
    for samples in cases:
      output = streamer.transcribe(samples)
      expected = self.reference(samples)
      self.assertAllEqual(output.tokens, expected.tokens)
      self.assertAllClose(output.encoder_outputs, expected.encoder_outputs,
                          atol=1e-4, rtol=0)
      self.assertEqual(
          output.text, self.tokenizer.detokenize(expected.tokens).numpy()
          .decode('utf-8'))
      total_tokens += len(expected.tokens)
    self.assertGreater(total_tokens, 0)

  def test_reference_equals_offline_recognition_of_zero_prefixed_audio(self):
    # The documented stream semantics: the utterance preceded by
    # tail_samples zeros, recognized by the causal encoder + greedy search.
    samples = self.waveforms[0]
    tail = self.recognizer.tail_samples
    prefixed = np.concatenate([np.zeros([tail], np.int16), samples])
    frontend = self.model.frontend
    features = frontend.normalize(frontend.log_mel(
        features_lib.waveform_to_float(prefixed[np.newaxis])))
    num_frames = features.shape[1]
    encoder_outputs, encoder_lengths = self.model.encoder(
        features, tf.constant([num_frames]))
    tokens, lengths = greedy.greedy_decode(
        encoder_outputs, encoder_lengths, self.model.prediction_network,
        self.model.joint_network, max_symbols_per_frame=MAX_SYMBOLS)
    expected = self.reference(samples)
    valid = int(encoder_lengths[0])
    self.assertAllClose(expected.encoder_outputs[:valid],
                        encoder_outputs[0, :valid], atol=1e-4, rtol=0)
    self.assertAllEqual(expected.encoder_outputs[valid:],
                        np.zeros_like(expected.encoder_outputs[valid:]))
    self.assertAllEqual(expected.tokens, tokens[0, :int(lengths[0])])

  def write_model(self, flatbuffer: bytes, name: str) -> str:
    path = os.path.join(self.dir, name)
    with open(path, 'wb') as model_file:
      model_file.write(flatbuffer)
    tflite_export.write_vocab(tflite_export.vocab_path_for(path),
                              self.tokenizer.id_to_piece)
    return path

  def fidelity(self, path: str):
    """(relative encoder error, token error rate) against the float model.

    Over the test utterances streamed through the TFLite model at `path`.
    """
    streamer = tflite_runtime.TfliteStreamer(path)
    self.assertEqual(streamer.state_names, self.recognizer.state_names)
    hypotheses, references, errors, magnitudes = [], [], [], []
    for samples in self.waveforms:
      output = streamer.transcribe(samples)
      expected = self.reference(samples)
      self.assertEqual(output.encoder_outputs.shape,
                       expected.encoder_outputs.shape)
      errors.append(np.abs(output.encoder_outputs - expected.encoder_outputs))
      magnitudes.append(np.abs(expected.encoder_outputs))
      hypotheses.append(' '.join(map(str, output.tokens)))
      references.append(' '.join(map(str, expected.tokens)))
    self.assertTrue(all(references))
    relative_error = (np.mean(np.concatenate(errors)) /
                      np.mean(np.concatenate(magnitudes)))
    # Token error rate: WER over token ids.
    return relative_error, wer_lib.corpus_wer(hypotheses, references)

  def test_dynamic_int8_is_smaller_and_stays_close_to_float(self):
    flatbuffer = tflite_export.convert(self.recognizer, 'dynamic_int8')
    self.assertLess(len(flatbuffer), os.path.getsize(self.model_path))
    relative_error, token_error = self.fidelity(
        self.write_model(flatbuffer, 'student_dynamic.tflite'))
    self.assertLess(relative_error, MAX_DYNAMIC_INT8_RELATIVE_ERROR)
    self.assertLess(token_error, MAX_DYNAMIC_INT8_TOKEN_ERROR)

  def test_unrolled_search_equals_while_loop_search(self):
    # full_int8's stream_step (no WHILE) against the default one, in TF, on
    # the states of real streams: same tokens and the same decoder state.
    _, while_step = self.recognizer.signature_functions()
    _, unrolled_step = self.recognizer.signature_functions(
        int8_calibratable=True)
    names = self.recognizer.state_names
    total_tokens = 0
    for inputs in tflite_export.stream_inputs(self.recognizer,
                                              self.waveforms[:2]):
      args = [inputs['audio_chunk'], inputs['num_valid_samples']] + [
          inputs[name] for name in names]
      expected, output = while_step(*args), unrolled_step(*args)
      for name in ['tokens', 'num_tokens'] + [
          name for name in names if name.startswith('decoder')]:
        self.assertAllEqual(output[name], expected[name], msg=name)
      total_tokens += int(expected['num_tokens'])
    self.assertGreater(total_tokens, 0)

  def test_full_int8_converts_runs_and_stays_close_to_float(self):
    flatbuffer = tflite_export.convert(
        self.recognizer, 'full_int8', self.waveforms,
        max_calibration_steps=20)
    path = self.write_model(flatbuffer, 'student_int8.tflite')
    report = op_report(path)
    self.assertNotIn('Flex', report)
    self.assertNotIn('CUSTOM', report)
    self.assertNotIn('WHILE', report)  # unrolled: the calibrator needs it.
    types = tensor_types_by_name(flatbuffer, 'stream_step')
    int8 = flatbuffer_utils.schema_fb.TensorType.INT8
    float32 = flatbuffer_utils.schema_fb.TensorType.FLOAT32
    # Outside the keep_float scopes, int8 dominates (the rest: int32
    # indices and shapes, float32 constants folded into int8 ops).
    quantizable = [t for name, t in types.items()
                   if not quantization_hints.is_kept_float(name)]
    self.assertGreater(sum(t == int8 for t in quantizable),
                       len(quantizable) // 3)
    # The log-mel frontend, the attention softmax and the layer norms stay
    # float (quantization_hints); the FFN weights are int8.
    kept_float = [name for name in types
                  if quantization_hints.is_kept_float(name)]
    for op_name in ('/Log', '/Softmax', '/Rsqrt'):
      outputs = [name for name in kept_float if name.endswith(op_name)]
      self.assertNotEmpty(outputs, op_name)
      self.assertEqual({types[name] for name in outputs}, {float32}, op_name)
    self.assertTrue(any(name.startswith('tfl.pseudo_qconst') and t == int8
                        for name, t in types.items()))
    # The greedy search computes in float by default.
    self.assertEqual(set(decoder_tensor_types(tensor_types_by_name(
        flatbuffer, 'stream_step', computed_only=True)).values()), {float32})
    relative_error, token_error = self.fidelity(path)
    self.assertLess(relative_error, MAX_FULL_INT8_RELATIVE_ERROR)
    self.assertLess(token_error, MAX_FULL_INT8_TOKEN_ERROR)

  def test_full_int8_int8_decoder_quantizes_the_joint_network(self):
    flatbuffer = tflite_export.convert(
        self.recognizer, 'full_int8', self.waveforms,
        max_calibration_steps=20, int8_decoder=True)
    decoder_types = decoder_tensor_types(tensor_types_by_name(
        flatbuffer, 'stream_step', computed_only=True))
    self.assertIn(flatbuffer_utils.schema_fb.TensorType.INT8,
                  set(decoder_types.values()))
    _, token_error = self.fidelity(
        self.write_model(flatbuffer, 'student_int8_decoder.tflite'))
    self.assertLess(token_error, MAX_FULL_INT8_TOKEN_ERROR)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'multiple of the encoder chunk'):
      streaming.StreamingRecognizer(self.model, chunk_ms=30)
    with self.assertRaisesRegex(ValueError, 'quantization must be one of'):
      tflite_export.convert(self.recognizer, 'int4')
    with self.assertRaisesRegex(ValueError, 'calibration audio'):
      tflite_export.convert(self.recognizer, 'full_int8')
    with self.assertRaisesRegex(ValueError, 'full_int8 only'):
      tflite_export.convert(self.recognizer, 'dynamic_int8',
                            int8_decoder=True)
    offline = rnnt_model.RnntModel(testing_utils.tiny_model_config(),
                                   vocab_size=self.tokenizer.vocab_size)
    with self.assertRaisesRegex(ValueError, 'not causal'):
      streaming.StreamingRecognizer(offline)
    streamer = tflite_runtime.TfliteStreamer(self.model_path)
    with self.assertRaisesRegex(ValueError, '1-D int16'):
      streamer.transcribe(self.waveforms[0].astype(np.float32))
    with self.assertRaisesRegex(ValueError, 'not found'):
      tflite_runtime.TfliteStreamer(os.path.join(self.dir, 'missing.tflite'))

  def test_host_detokenize_matches_sentencepiece(self):
    rng = np.random.default_rng(0)
    for _ in range(5):
      # Ids >= 2 are ordinary pieces (0 blank, 1 unk), '▁' included.
      ids = rng.integers(2, self.tokenizer.vocab_size, size=12)
      self.assertEqual(
          tflite_export.detokenize(ids, self.tokenizer.id_to_piece),
          self.tokenizer.detokenize(tf.constant(ids, tf.int32)).numpy()
          .decode('utf-8'))

  def test_flatten_round_trip(self):
    state = self.recognizer.initial_state()
    self.assertEqual(sorted(state), self.recognizer.state_names)
    nested = rnnt_stream.unflatten_named(
        {'a': [[1, 2]], 'b': {'c': 3}},
        {'a_0_0': 'x', 'a_0_1': 'y', 'b_c': 'z'})
    self.assertEqual(nested, {'a': [['x', 'y']], 'b': {'c': 'z'}})
    self.assertEqual(rnnt_stream.flatten_named(nested),
                     {'a_0_0': 'x', 'a_0_1': 'y', 'b_c': 'z'})


if __name__ == '__main__':
  tf.test.main()
