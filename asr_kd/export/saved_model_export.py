"""SavedModel export with serving signatures (docs/export.md).

Signatures:
  transcribe (= serving_default): float32 waveform [B, N] in [-1, 1),
    waveform_lengths int32 [B], sample_rate int32 scalar -> text string [B],
    tokens int32 [B, L] (0-padded), token_lengths int32 [B].
  transcribe_int16: the same for int16 PCM waveforms.
  transcribe_encoded: audio string [B], each the bytes of a WAV (16-bit
    PCM), FLAC or Ogg/Vorbis file of any sample rate and channel count ->
    the same outputs; decoded, downmixed and resampled in the graph
    (encoded_audio.py).
  encode: float32 waveform, lengths, sample_rate -> encoder_outputs
    [B, T', D], encoder_lengths [B].
  initial_state / stream_step (streaming models only): the batch-1 streaming
    recognizer of `streaming.StreamingRecognizer`, as in the TFLite model.
The tokenizer model and the resolved params.yaml are stored as assets;
loading needs TensorFlow and `import tensorflow_text` (SentencePiece ops).
"""

import os
from typing import Dict, Optional

import tensorflow as tf

from asr_kd.dataloaders import features as features_lib
from asr_kd.decoding import decoder as decoder_lib
from asr_kd.export import encoded_audio
from asr_kd.export import streaming
from asr_kd.inference import model_loader


class ServingModule(tf.Module):
  """Batch transcription and encoding from raw waveforms."""

  def __init__(self, loaded: model_loader.LoadedModel,
               chunk_ms: Optional[int] = None, name: str = 'serving'):
    """Wraps a loaded model.

    Args:
      loaded: model, tokenizer and config from `model_loader.load_model`.
      chunk_ms: audio per streaming call (streaming models only).
      name: tf.Module name.
    """
    super().__init__(name=name)
    self.model = loaded.model
    self.tokenizer = loaded.tokenizer
    self._decoding_config = loaded.task_config.decoding
    self.sample_rate = int(self.model.frontend.config.sample_rate)
    self.tokenizer_asset = tf.saved_model.Asset(
        loaded.task_config.tokenizer_model_path)
    self.config_asset = tf.saved_model.Asset(loaded.params_path)
    self.streaming = None
    if self.model.encoder.is_streaming:
      self.streaming = streaming.StreamingRecognizer(
          self.model, chunk_ms=chunk_ms,
          max_symbols_per_frame=self._decoding_config.max_symbols_per_frame)

  def _check_inputs(self, waveform: tf.Tensor, waveform_lengths: tf.Tensor,
                    sample_rate: tf.Tensor):
    """Graph-time assertions with one-line messages."""
    return [
        tf.debugging.assert_equal(
            sample_rate, self.sample_rate,
            message=f'sample_rate must be {self.sample_rate} Hz (resample '
            'the audio first)'),
        tf.debugging.assert_equal(
            tf.shape(waveform_lengths)[0], tf.shape(waveform)[0],
            message='waveform_lengths must have one entry per waveform row'),
        tf.debugging.assert_less_equal(
            tf.reduce_max(tf.concat([waveform_lengths, [0]], 0)),
            tf.shape(waveform)[1],
            message='waveform_lengths exceed the waveform width'),
        tf.debugging.assert_non_negative(
            waveform_lengths, message='waveform_lengths must be >= 0'),
    ]

  def encode(self, waveform: tf.Tensor, waveform_lengths: tf.Tensor,
             sample_rate: tf.Tensor) -> Dict[str, tf.Tensor]:
    """float32 [B, N] waveform -> encoder_outputs [B, T', D], lengths [B]."""
    # EnsureShape fails with "Shape of tensor waveform [8000] is not
    # compatible with expected shape [?,?]".
    waveform = tf.ensure_shape(waveform, [None, None])
    waveform_lengths = tf.ensure_shape(waveform_lengths, [None])
    with tf.control_dependencies(
        self._check_inputs(waveform, waveform_lengths, sample_rate)):
      waveform = tf.identity(waveform)
    outputs = self.model({'waveforms': waveform,
                          'num_samples': waveform_lengths}, training=False)
    return {'encoder_outputs': outputs['encoder_outputs'],
            'encoder_lengths': outputs['encoder_lengths']}

  def transcribe(self, waveform: tf.Tensor, waveform_lengths: tf.Tensor,
                 sample_rate: tf.Tensor) -> Dict[str, tf.Tensor]:
    """float32 [B, N] waveform -> text [B], tokens [B, L], token_lengths."""
    encoded = self.encode(waveform, waveform_lengths, sample_rate)
    tokens, token_lengths = decoder_lib.decode(
        encoded['encoder_outputs'], encoded['encoder_lengths'],
        self.model.prediction_network, self.model.joint_network,
        self._decoding_config)
    text = self.tokenizer.detokenize(
        tf.RaggedTensor.from_tensor(tokens, lengths=token_lengths))
    return {'text': text, 'tokens': tokens, 'token_lengths': token_lengths}

  def transcribe_encoded(self, audio: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Encoded audio files string [B] -> `transcribe`'s outputs."""
    audio = tf.ensure_shape(audio, [None])
    waveforms = tf.map_fn(
        lambda encoded: encoded_audio.decode_to_mono(encoded,
                                                     self.sample_rate),
        audio, fn_output_signature=tf.RaggedTensorSpec([None], tf.float32))
    return self.transcribe(waveforms.to_tensor(),
                           tf.cast(waveforms.row_lengths(), tf.int32),
                           tf.constant(self.sample_rate))

  def signatures(self) -> Dict[str, tf.types.experimental.ConcreteFunction]:
    """The concrete functions to save, keyed by signature name."""
    # Unknown ranks in the signature, so that a wrong rank reaches the
    # graph's own check (a loaded signature does not check shapes).
    float_specs = [
        tf.TensorSpec(None, tf.float32, name='waveform'),
        tf.TensorSpec(None, tf.int32, name='waveform_lengths'),
        tf.TensorSpec([], tf.int32, name='sample_rate')]
    int16_specs = [tf.TensorSpec(None, tf.int16, name='waveform')
                  ] + float_specs[1:]

    @tf.function(input_signature=float_specs)
    def transcribe(waveform, waveform_lengths, sample_rate):
      return self.transcribe(waveform, waveform_lengths, sample_rate)

    @tf.function(input_signature=int16_specs)
    def transcribe_int16(waveform, waveform_lengths, sample_rate):
      return self.transcribe(features_lib.waveform_to_float(waveform),
                             waveform_lengths, sample_rate)

    @tf.function(input_signature=[tf.TensorSpec(None, tf.string,
                                                name='audio')])
    def transcribe_encoded(audio):
      return self.transcribe_encoded(audio)

    @tf.function(input_signature=float_specs)
    def encode(waveform, waveform_lengths, sample_rate):
      return self.encode(waveform, waveform_lengths, sample_rate)

    functions = {
        'serving_default': transcribe.get_concrete_function(),
        'transcribe': transcribe.get_concrete_function(),
        'transcribe_int16': transcribe_int16.get_concrete_function(),
        'transcribe_encoded': transcribe_encoded.get_concrete_function(),
        'encode': encode.get_concrete_function(),
    }
    if self.streaming is not None:
      initial_state, stream_step = self.streaming.signature_functions()
      functions['initial_state'] = initial_state.get_concrete_function()
      functions['stream_step'] = stream_step.get_concrete_function()
    return functions


def export_saved_model(loaded: model_loader.LoadedModel, output_dir: str,
                       chunk_ms: Optional[int] = None) -> ServingModule:
  """Writes the SavedModel; returns the module that was saved.

  Raises:
    ValueError: if output_dir exists and is not empty.
  """
  if tf.io.gfile.exists(output_dir) and tf.io.gfile.listdir(output_dir):
    raise ValueError(f'Output dir {output_dir} exists and is not empty.')
  module = ServingModule(loaded, chunk_ms=chunk_ms)
  tf.saved_model.save(module, output_dir, signatures=module.signatures())
  return module


def asset_path(export_dir: str, basename: str) -> str:
  """Path of an asset file inside an exported SavedModel."""
  return os.path.join(export_dir, 'assets', basename)
