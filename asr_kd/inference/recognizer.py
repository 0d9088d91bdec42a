"""Batched speech recognition with a restored RNN-T model.

waveform (int16 or float) -> log-mel -> normalization with the model's
stored statistics -> encoder -> decoder (greedy or beam, per DecodingConfig)
-> detokenized text. The graph part (features to token ids) is one
`tf.function` whose input
signature has unknown batch and sample dimensions, so it is traced once; the
Python side still sorts utterances by length and pads each batch to one of a
few lengths (a geometric grid), which keeps padding waste small and the set
of shapes the runtime sees small.

Token ids become text in Python with the SentencePiece library rather than
with the Tokenizer's TF op: that op's model lives in a kernel-owned resource
which TF deletes whenever the eager kernel cache is cleared (for example by
`tf.random.set_seed`), after which a traced graph that uses it fails. Both
run SentencePiece's own DecodeIds, so the text is the same.
"""

import dataclasses
import math
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import sentencepiece as spm
import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.configs import rnnt_config
from asr_kd.dataloaders import audio_decoding
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.decoding import decoder
from asr_kd.inference import segmentation
from asr_kd.modeling import rnnt_model

# Padded lengths: MIN_PADDED_SECONDS, then each GROWTH times the previous
# (rounded up to whole frame hops), so padding costs at most ~25 %.
MIN_PADDED_SECONDS = 1.0
GROWTH = 1.25
# A file longer than the recognizer's longest segment is cut at the
# quietest 10 ms in this last share of the segment (segmentation.py).
SEGMENT_SEARCH_SHARE = 0.25


def padded_length(num_samples: int, config: data_config.FeatureConfig) -> int:
  """The smallest grid length >= num_samples (see MIN_PADDED_SECONDS)."""
  step = features_lib.frame_step_samples(config)
  length = int(math.ceil(MIN_PADDED_SECONDS * config.sample_rate / step)) * step
  while length < num_samples:
    length = int(math.ceil(length * GROWTH / step)) * step
  return length


def to_float_waveform(samples: np.ndarray) -> np.ndarray:
  """1-D int16 (full scale 32768) or float [-1, 1) samples -> float32."""
  samples = np.asarray(samples)
  if samples.ndim != 1:
    raise ValueError(f'expected 1-D mono samples, got shape {samples.shape}')
  if samples.dtype == np.int16:
    return samples.astype(np.float32) / 32768.0
  if not np.issubdtype(samples.dtype, np.floating):
    raise ValueError(f'samples must be int16 or float, got {samples.dtype}')
  return samples.astype(np.float32)


@dataclasses.dataclass
class FileTranscription:
  """The outcome for one audio file.

  Attributes:
    path: the file.
    transcript: recognized text ('' when `error` is set).
    error: '' on success, else '<reason>: <detail>' (reasons from
      audio_decoding.REASONS).
    notes: conversions applied, e.g. 'resampled 8000 Hz to 16000 Hz'.
  """
  path: str
  transcript: str = ''
  error: str = ''
  notes: List[str] = dataclasses.field(default_factory=list)


class Recognizer:
  """Transcribes batches of 16 kHz mono waveforms with an RNN-T model."""

  def __init__(self, model: rnnt_model.RnntModel,
               tokenizer: tokenizer_lib.Tokenizer,
               decoding_config: rnnt_config.DecodingConfig,
               batch_size: int = 8,
               max_segment_samples: Optional[int] = None):
    """Wraps a restored model.

    Args:
      model: RNN-T model with restored weights and feature statistics (its
        frontend computes the features).
      tokenizer: the model's tokenizer.
      decoding_config: greedy or beam search and their options.
      batch_size: utterances decoded together.
      max_segment_samples: files longer than this are transcribed in
        segments of at most this many samples, cut at quiet points, and
        the segments' texts joined (None: every file whole).
    """
    feature_config = model.frontend.config
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if max_segment_samples is not None and (
        max_segment_samples < feature_config.sample_rate):
      raise ValueError('max_segment_samples must be at least one second, '
                       f'got {max_segment_samples}')
    if feature_config.sample_rate != audio_decoding.TARGET_SAMPLE_RATE:
      raise ValueError(f'the model expects {feature_config.sample_rate} Hz '
                       'audio; audio decoding gives '
                       f'{audio_decoding.TARGET_SAMPLE_RATE} Hz')
    self._model = model
    self._blank_id = tokenizer.blank_id
    self._sentencepiece = spm.SentencePieceProcessor(
        model_proto=tokenizer.model_bytes)
    self._feature_config = feature_config
    self._decoding_config = decoding_config
    self.batch_size = batch_size
    self.max_segment_samples = max_segment_samples
    self.trace_count = 0  # Number of times the graph was traced (tests).
    self._recognize_padded = tf.function(
        self._recognize_graph,
        input_signature=[tf.TensorSpec([None, None], tf.float32),
                         tf.TensorSpec([None], tf.int32)])

  def _recognize_graph(self, waveforms: tf.Tensor,
                       num_samples: tf.Tensor) -> Tuple[tf.Tensor,
                                                        tf.Tensor]:
    """Token ids for zero-padded float waveforms [B, N] of given lengths.

    Returns:
      (tokens int32 [B, L] 0-padded, token_lengths int32 [B]).
    """
    self.trace_count += 1  # Python side effect: runs only while tracing.
    outputs = self._model({'waveforms': waveforms,
                           'num_samples': num_samples}, training=False)
    return decoder.decode(
        outputs['encoder_outputs'], outputs['encoder_lengths'],
        self._model.prediction_network, self._model.joint_network,
        self._decoding_config)

  def warm_up(self) -> None:
    """Traces the graph with one second of silence (keeps timings clean)."""
    self.recognize_batch([np.zeros([self._feature_config.sample_rate],
                                   np.int16)])

  def recognize_batch(self, waveforms: Sequence[np.ndarray]) -> List[str]:
    """Decodes utterances as one padded batch.

    Args:
      waveforms: 1-D int16 or float [-1, 1) arrays at 16 kHz.

    Returns:
      One transcript per waveform, in order.
    """
    if not waveforms:
      return []
    float_waveforms = [to_float_waveform(w) for w in waveforms]
    lengths = [w.shape[0] for w in float_waveforms]
    padded = np.zeros(
        [len(float_waveforms), padded_length(max(lengths),
                                             self._feature_config)],
        np.float32)
    for row, waveform in enumerate(float_waveforms):
      padded[row, :waveform.shape[0]] = waveform
    tokens, token_lengths = self._recognize_padded(
        tf.constant(padded), tf.constant(lengths, tf.int32))
    return [self.detokenize(row[:length]) for row, length in
            zip(tokens.numpy(), token_lengths.numpy())]

  def detokenize(self, token_ids: Sequence[int]) -> str:
    """Text of decoded token ids (blank ids, if any, are skipped)."""
    return self._sentencepiece.decode_ids(
        [int(i) for i in token_ids if i != self._blank_id])

  def recognize(self, waveforms: Sequence[np.ndarray],
                progress: Optional[Callable[[int, int], None]] = None
               ) -> List[str]:
    """Decodes any number of utterances, batched by similar length.

    Args:
      waveforms: 1-D int16 or float [-1, 1) arrays at 16 kHz.
      progress: called as progress(done, total) after each batch.

    Returns:
      One transcript per waveform, in the input order.
    """
    order = sorted(range(len(waveforms)), key=lambda i: len(waveforms[i]))
    texts = [''] * len(waveforms)
    for start in range(0, len(order), self.batch_size):
      batch_indices = order[start:start + self.batch_size]
      batch_texts = self.recognize_batch([waveforms[i] for i in batch_indices])
      for index, text in zip(batch_indices, batch_texts):
        texts[index] = text
      if progress:
        progress(start + len(batch_indices), len(order))
    return texts

  def iter_transcribe_files(self, paths: Sequence[str]
                           ) -> Iterator[FileTranscription]:
    """Transcribes audio files, `batch_size` at a time, in input order.

    Each file is read with `audio_decoding` (the two halves of
    `load_mono_16k`, so the conversions can be reported): other sample
    rates are resampled and multi-channel audio is downmixed, each with a
    note. A file that cannot be decoded gets an error and the others are
    still transcribed.

    Args:
      paths: audio file paths (WAV, FLAC, OGG).

    Yields:
      One FileTranscription per path, in order.
    """
    for start in range(0, len(paths), self.batch_size):
      results = [FileTranscription(path)
                 for path in paths[start:start + self.batch_size]]
      decoded, segments = [], []
      for result in results:
        try:
          samples, sample_rate = audio_decoding.read_audio(result.path)
        except audio_decoding.AudioDecodeError as error:
          result.error = error.reason + (
              f': {error.detail}' if error.detail else '')
          continue
        result.notes.extend(audio_decoding.conversion_notes(samples,
                                                            sample_rate))
        waveform = audio_decoding.to_mono_16k(samples, sample_rate)
        del samples  # A long file's decoded copy goes before decoding.
        file_segments = self.segments(waveform)
        decoded.append((result, len(file_segments)))
        segments.extend(file_segments)
      texts = iter(self.recognize(segments))
      for result, num_segments in decoded:
        result.transcript = ' '.join(
            text for text in (next(texts) for _ in range(num_segments))
            if text)
      yield from results

  def segments(self, waveform: np.ndarray) -> List[np.ndarray]:
    """`waveform` as slices the model takes whole (see max_segment_samples)."""
    if self.max_segment_samples is None:
      return [waveform]
    return [waveform[start:end] for start, end in segmentation.segment_bounds(
        waveform, self.max_segment_samples,
        int(self.max_segment_samples * SEGMENT_SEARCH_SHARE))]

  def transcribe_files(self, paths: Sequence[str]) -> List[FileTranscription]:
    """List version of `iter_transcribe_files`."""
    return list(self.iter_transcribe_files(paths))


def from_loaded_model(loaded, decoding_config: rnnt_config.DecodingConfig,
                      batch_size: int = 8) -> Recognizer:
  """A Recognizer for a `model_loader.LoadedModel`.

  Files longer than the longest training utterance (the last length bucket)
  are transcribed in segments no longer than it.
  """
  return Recognizer(
      loaded.model, loaded.tokenizer, decoding_config, batch_size=batch_size,
      max_segment_samples=features_lib.max_samples_for_frames(
          loaded.config.task.train_data.bucket_boundaries[-1],
          loaded.model.frontend.config))
