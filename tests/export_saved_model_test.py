"""Tests for the SavedModel export (asr_kd/export/saved_model_export.py)."""

import os
import subprocess
import sys
import tempfile

import numpy as np
from scipy import signal as scipy_signal
import tensorflow as tf
import tf_keras
import tensorflow_text  # pylint: disable=unused-import  (SentencePiece ops)

from official.core import task_factory
from official.core import train_lib
from official.core import train_utils

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.dataloaders import features as features_lib
from asr_kd.decoding import decoder as decoder_lib
from asr_kd.inference import model_loader
from asr_kd.export import encoded_audio
from asr_kd.export import saved_model_export
from asr_kd.export import streaming_reference
from asr_kd.export import tflite_export
from tests import encoded_audio_test
from tests import testing_utils


class ExportSavedModelTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.dir = tempfile.mkdtemp()
    corpus = testing_utils.write_tiny_corpus(os.path.join(cls.dir, 'corpus'),
                                             num_utterances=4)
    config = testing_utils.tiny_experiment(corpus, train_steps=2,
                                           causal=True)
    cls.model_dir = os.path.join(cls.dir, 'model')
    # What asr_kd.bin.train does: params.yaml, then Model Garden training.
    train_utils.serialize_config(config, cls.model_dir)
    # Seeds before the task: seeding clears TF's kernel cache, which holds
    # the tokenizer's SentencePiece resource (docs/input_pipeline.md).
    tf_keras.utils.set_random_seed(0)
    task = task_factory.get_task(config.task, logging_dir=cls.model_dir)
    train_lib.run_experiment(
        distribution_strategy=tf.distribute.get_strategy(), task=task,
        mode='train', params=config, model_dir=cls.model_dir)
    cls._make_blank_unlikely()
    cls.export_dir = os.path.join(cls.dir, 'saved_model')
    saved_model_export.export_saved_model(
        model_loader.load_model(cls.model_dir), cls.export_dir)
    waveforms = tflite_export.read_record_waveforms(corpus['tfrecords'], 3)
    cls.lengths = np.asarray([len(w) for w in waveforms], np.int32)
    cls.int16_batch = np.zeros([3, cls.lengths.max()], np.int16)
    for row, waveform in enumerate(waveforms):
      cls.int16_batch[row, :len(waveform)] = waveform

  @classmethod
  def _make_blank_unlikely(cls):
    """Saves a checkpoint whose joint rarely emits blank.

    Two training steps leave an RNN-T that emits almost only blanks; the
    parity checks below would then compare empty outputs. Lowering the
    blank logit's bias makes the exported and Keras models emit tokens.
    """
    loaded = model_loader.load_model(cls.model_dir)
    # pylint: disable=protected-access
    bias = loaded.model.joint_network._output_dense.bias
    bias.assign(tf.tensor_scatter_nd_add(bias, [[0]], [-8.0]))
    checkpoint = tf.train.Checkpoint(model=loaded.model)
    tf.train.CheckpointManager(checkpoint, cls.model_dir, max_to_keep=5).save(
        checkpoint_number=1000)

  def setUp(self):
    super().setUp()
    self.loaded = model_loader.load_model(self.model_dir)
    self.exported = tf.saved_model.load(self.export_dir)

  def keras_transcribe(self, int16_batch, lengths):
    """The trained model's offline recognition, computed eagerly."""
    model = self.loaded.model
    outputs = model({'waveforms': features_lib.waveform_to_float(int16_batch),
                     'num_samples': lengths}, training=False)
    tokens, token_lengths = decoder_lib.decode(
        outputs['encoder_outputs'], outputs['encoder_lengths'],
        model.prediction_network, model.joint_network,
        self.loaded.task_config.decoding)
    text = self.loaded.tokenizer.detokenize(
        tf.RaggedTensor.from_tensor(tokens, lengths=token_lengths))
    return outputs, tokens, token_lengths, text

  def test_signatures_and_assets(self):
    self.assertCountEqual(
        self.exported.signatures,
        ['serving_default', 'transcribe', 'transcribe_int16',
         'transcribe_encoded', 'encode', 'initial_state', 'stream_step'])
    self.assertCountEqual(os.listdir(os.path.join(self.export_dir, 'assets')),
                          ['params.yaml', 'spm.model'])

  def test_transcribe_equals_keras(self):
    outputs, tokens, token_lengths, text = self.keras_transcribe(
        self.int16_batch, self.lengths)
    for name, waveform in [
        ('transcribe', features_lib.waveform_to_float(self.int16_batch)),
        ('transcribe_int16', tf.constant(self.int16_batch))]:
      result = self.exported.signatures[name](
          waveform=waveform, waveform_lengths=tf.constant(self.lengths),
          sample_rate=tf.constant(16000))
      self.assertAllEqual(result['token_lengths'], token_lengths)
      self.assertAllEqual(result['tokens'], tokens)
      self.assertAllEqual(result['text'], text)
    self.assertGreater(int(tf.reduce_sum(token_lengths)), 0)
    encoded = self.exported.signatures['encode'](
        waveform=features_lib.waveform_to_float(self.int16_batch),
        waveform_lengths=tf.constant(self.lengths),
        sample_rate=tf.constant(16000))
    self.assertAllEqual(encoded['encoder_lengths'],
                        outputs['encoder_lengths'])
    self.assertAllClose(encoded['encoder_outputs'],
                        outputs['encoder_outputs'], atol=1e-5, rtol=0)

  def test_transcribe_encoded_equals_transcribe_on_decoded_samples(self):
    waveforms = [self.int16_batch[row, :length]
                 for row, length in enumerate(self.lengths)]
    # 16 kHz mono WAV: the very samples transcribe_int16 gets.
    wav_files = [encoded_audio_test.encode(waveform / 32768, 16000, 'wav')
                 for waveform in waveforms]
    from_files = self.exported.signatures['transcribe_encoded'](
        audio=tf.constant(wav_files))
    from_samples = self.exported.signatures['transcribe_int16'](
        waveform=tf.constant(self.int16_batch),
        waveform_lengths=tf.constant(self.lengths),
        sample_rate=tf.constant(16000))
    self.assertAllEqual(from_files['text'], from_samples['text'])
    self.assertAllEqual(from_files['token_lengths'],
                        from_samples['token_lengths'])
    # Other formats, rates and channel counts: the same as `transcribe` on
    # the samples the graph decoded.
    resampled = [scipy_signal.resample_poly(waveform / 32768, 441, 160)
                 for waveform in waveforms]
    files = [
        encoded_audio_test.encode(np.stack([resampled[0], 0.5 * resampled[0]],
                                           axis=1), 44100, 'flac'),
        encoded_audio_test.encode(resampled[1], 44100, 'ogg'),
        encoded_audio_test.encode(waveforms[2] / 32768, 16000, 'flac'),
    ]
    decoded = [encoded_audio.decode_to_mono(tf.constant(data), 16000).numpy()
               for data in files]
    lengths = np.asarray([len(samples) for samples in decoded], np.int32)
    batch = np.zeros([len(decoded), lengths.max()], np.float32)
    for row, samples in enumerate(decoded):
      batch[row, :len(samples)] = samples
    expected = self.exported.signatures['transcribe'](
        waveform=tf.constant(batch), waveform_lengths=tf.constant(lengths),
        sample_rate=tf.constant(16000))
    result = self.exported.signatures['transcribe_encoded'](
        audio=tf.constant(files))
    self.assertAllEqual(result['text'], expected['text'])
    self.assertAllEqual(result['tokens'], expected['tokens'])
    self.assertGreater(int(tf.reduce_sum(result['token_lengths'])), 0)

  def test_saved_model_cli_runs_transcribe_encoded(self):
    # The documented command (docs/export.md): the stock CLI plus our ops.
    files = np.array([encoded_audio_test.encode(
        self.int16_batch[0, :self.lengths[0]] / 32768, 16000, 'flac')],
                     dtype=object)
    inputs = os.path.join(self.dir, 'files.npy')
    np.save(inputs, files, allow_pickle=True)
    result = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.saved_model_cli', 'run',
         f'--dir={self.export_dir}', '--tag_set=serve',
         '--signature_def=transcribe_encoded', f'--inputs=audio={inputs}'],
        capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-2000:])
    expected = self.exported.signatures['transcribe_encoded'](
        audio=tf.constant(list(files)))['text'][0].numpy()
    self.assertIn(f'Result for output key text:\n[{expected!r}]',
                  result.stdout)

  def test_stream_step_signature_equals_streaming_reference(self):
    samples = self.int16_batch[0, :self.lengths[0]]
    state = self.exported.signatures['initial_state']()
    step = self.exported.signatures['stream_step']
    chunk = step.structured_input_signature[1]['audio_chunk'].shape[0]
    tokens = []
    for start in range(0, len(samples), chunk):
      piece = samples[start:start + chunk]
      outputs = step(audio_chunk=tf.constant(np.pad(
          piece, (0, chunk - len(piece)))),
                     num_valid_samples=tf.constant(len(piece)), **state)
      state = {name: outputs[name] for name in state}
      tokens.extend(outputs['tokens'][:int(outputs['num_tokens'])].numpy())
    expected = streaming_reference.streaming_greedy_reference(
        self.loaded.model, samples, chunk, 320,
        self.loaded.task_config.decoding.max_symbols_per_frame)
    self.assertAllEqual(tokens, expected.tokens)

  def test_bad_inputs_fail_clearly(self):
    transcribe = self.exported.signatures['transcribe']
    waveform = features_lib.waveform_to_float(self.int16_batch)
    lengths = tf.constant(self.lengths)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'sample_rate must be 16000'):
      transcribe(waveform=waveform, waveform_lengths=lengths,
                 sample_rate=tf.constant(8000))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'Shape of tensor waveform'):
      transcribe(waveform=waveform[0], waveform_lengths=lengths[:1],
                 sample_rate=tf.constant(16000))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'expected to be a float tensor'):
      transcribe(waveform=tf.cast(waveform, tf.float64),
                 waveform_lengths=lengths, sample_rate=tf.constant(16000))
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'exceed the waveform width'):
      transcribe(waveform=waveform, waveform_lengths=lengths + 100000,
                 sample_rate=tf.constant(16000))

  def test_export_refuses_non_empty_output_and_missing_model_dir(self):
    with self.assertRaisesRegex(ValueError, 'not empty'):
      saved_model_export.export_saved_model(self.loaded, self.export_dir)
    with self.assertRaisesRegex(model_loader.ModelLoadError,
                                'params.yaml not found'):
      model_loader.load_model(os.path.join(self.dir, 'missing'))


if __name__ == '__main__':
  tf.test.main()
