"""The streaming recognizer exported to TFLite and SavedModel.

`StreamingRecognizer` wraps the model's own streaming API
(`RnntModel.stream`, asr_kd/modeling/rnnt_stream.py: the frontend with a
carried audio tail, `encoder.stream_step` and the streaming greedy decoder)
in a tf.Module whose two functions `initial_state` and `stream_step` have
flat, named signatures, so a TFLite interpreter on a phone only has to feed
the outputs of one call into the next. Stream framing: docs/export.md.
"""

from typing import Any, Dict, List, Optional, Tuple

import tensorflow as tf



class StreamingRecognizer(tf.Module):
  """Batch-1 streaming recognition with flat named state, for export.

  Attributes:
    stream: the model's `RnntStream`.
    chunk_samples: int16 samples per `stream_step` call.
    tail_samples: samples carried between calls (the zero prefix).
    steps_per_call: encoder `stream_step`s per call.
    max_tokens_per_call: size of the `tokens` output.
    state_specs: {name: tf.TensorSpec} of the flat state, sorted by name.
  """

  def __init__(self, model, chunk_ms: Optional[float] = None,
               max_symbols_per_frame: int = 3, name: str = 'streaming'):
    """Wraps a streaming RnntModel.

    Args:
      model: an `RnntModel` with a causal encoder (built, weights loaded).
      chunk_ms: audio per call (see `rnnt_stream.RnntStream`).
      max_symbols_per_frame: greedy decoding limit per encoder frame.
      name: tf.Module name.

    Raises:
      ValueError: for a non-streaming model or a bad chunk_ms.
    """
    super().__init__(name=name)
    self._model = model  # Tracked, so a SavedModel holds its variables.
    self.stream = model.stream(chunk_ms, max_symbols_per_frame)
    self.chunk_samples = self.stream.chunk_samples
    self.tail_samples = self.stream.tail_samples
    self.steps_per_call = self.stream.steps_per_call
    self.encoder_frames_per_call = self.stream.encoder_frames_per_call
    self.max_tokens_per_call = self.stream.max_tokens_per_call
    self.state_specs = {
        name: tf.TensorSpec(value.shape, value.dtype, name=name)
        for name, value in sorted(self.stream.initial_state().items())}

  @property
  def state_names(self) -> List[str]:
    return list(self.state_specs)

  def initial_state(self) -> Dict[str, tf.Tensor]:
    """The flat state before any audio, {name: tensor}."""
    return self.stream.initial_state()

  def stream_step(self, audio_chunk: tf.Tensor, num_valid_samples: tf.Tensor,
                  state: Dict[str, tf.Tensor],
                  unrolled_search: bool = False,
                  float_decoder: bool = False) -> Dict[str, tf.Tensor]:
    """`RnntStream.stream_step`'s outputs and new state in one dict (the
    exported signature's outputs)."""
    outputs, new_state = self.stream.stream_step(
        audio_chunk, num_valid_samples, state,
        unrolled_search=unrolled_search, float_decoder=float_decoder)
    return {**outputs, **new_state}

  def signature_functions(self, int8_calibratable: bool = False,
                          float_decoder: bool = False) -> Tuple[Any, Any]:
    """(initial_state, stream_step) tf.functions with flat named signatures.

    Args:
      int8_calibratable: the variant the TF 2.17 TFLite int8 calibrator
        can run: `initial_state` gets an unused int32 scalar input `unused`
        (the calibrator cannot feed a signature without inputs) and
        `stream_step` uses the unrolled greedy search (the calibrator
        segfaults on WHILE loops, see
        `StreamingGreedyDecoder._decode_chunk_unrolled`).
      float_decoder: passed to `stream_step`.

    Returns:
      The two tf.functions. `stream_step` takes `audio_chunk`,
      `num_valid_samples` and every state name as keyword inputs; outputs
      are named as in `stream_step`.
    """
    state_names = self.state_names

    if int8_calibratable:
      @tf.function(input_signature=[
          tf.TensorSpec([], tf.int32, name='unused')])
      def initial_state(unused):
        del unused
        return self.initial_state()
    else:
      @tf.function(input_signature=[])
      def initial_state():
        return self.initial_state()

    @tf.function(input_signature=[
        tf.TensorSpec([self.chunk_samples], tf.int16, name='audio_chunk'),
        tf.TensorSpec([], tf.int32, name='num_valid_samples'),
    ] + list(self.state_specs.values()))
    def stream_step(audio_chunk, num_valid_samples, *state_tensors):
      return self.stream_step(audio_chunk, num_valid_samples,
                              dict(zip(state_names, state_tensors)),
                              unrolled_search=int8_calibratable,
                              float_decoder=float_decoder)

    return initial_state, stream_step


def from_loaded_model(loaded, chunk_ms: Optional[float] = None,
                      max_symbols_per_frame: Optional[int] = None
                     ) -> 'StreamingRecognizer':
  """A StreamingRecognizer for a `model_loader.LoadedModel`.

  Args:
    loaded: the restored model_dir (model, config).
    chunk_ms: see StreamingRecognizer (default: one encoder chunk).
    max_symbols_per_frame: default: the config's decoding setting.
  """
  return StreamingRecognizer(
      loaded.model, chunk_ms=chunk_ms,
      max_symbols_per_frame=(max_symbols_per_frame or
                             loaded.task_config.decoding.max_symbols_per_frame))
