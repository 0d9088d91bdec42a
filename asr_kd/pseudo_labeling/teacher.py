"""A restored RNN-T teacher that labels waveforms with hypothesis + confidence.

It mirrors `asr_kd.inference.recognizer.Recognizer` (same front end, same
padding grid, same beam search) but keeps the whole final beam so that each
hypothesis gets a confidence (`confidence.beam_posterior`). The hypothesis
is the one `decoding.decoder.decode` picks for the same DecodingConfig, so a
pseudo-label equals what the Recognizer transcribes.
"""

import dataclasses
import os
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from asr_kd.configs import rnnt_config
from asr_kd.decoding import beam_search
from asr_kd.inference import model_loader
from asr_kd.inference import recognizer
from asr_kd.losses import distillation_frames
from asr_kd.losses import distillation_kl
from asr_kd.losses import sparse_kl
from asr_kd.pseudo_labeling import confidence as confidence_lib


@dataclasses.dataclass(frozen=True)
class PseudoLabel:
  """A teacher's label for one utterance.

  Attributes:
    hypothesis: the chosen beam hypothesis, detokenized.
    confidence: its posterior within the beam, in (0, 1].
  """
  hypothesis: str
  confidence: float


def source_model_id(model_dir: str, checkpoint_path: str) -> str:
  """'<absolute model_dir>@<checkpoint name>', e.g. '/runs/teacher@ckpt-3000'."""
  return f'{os.path.abspath(model_dir)}@{os.path.basename(checkpoint_path)}'


class Teacher:
  """Labels batches of 16 kHz waveforms with beam search."""

  def __init__(self, loaded: model_loader.LoadedModel, model_dir: str,
               beam_size: int = 8):
    """Wraps a restored model.

    Args:
      loaded: from `model_loader.load_model`.
      model_dir: the folder it was loaded from (for the source id).
      beam_size: hypotheses kept by beam search (>= 2 for a useful
        confidence).
    """
    if beam_size < 1:
      raise ValueError(f'beam_size must be >= 1, got {beam_size}')
    self._model = loaded.model
    self._tokenizer = loaded.tokenizer
    # The Recognizer (from_loaded_model) uses the training features too.
    self._feature_config = loaded.model.frontend.config
    self.decoding_config = rnnt_config.DecodingConfig(
        method='beam', beam_size=beam_size,
        length_normalization=(
            loaded.config.task.decoding.length_normalization))
    self.source_model = source_model_id(model_dir, loaded.checkpoint_path)
    # Graphs, not eager ops, for every batch of a labeling run; the
    # settings (top_k, temperature, frame ratio) are the run's constants.
    self._targets_padded = tf.function(self._targets_graph,
                                       reduce_retracing=True)
    self._label_padded = tf.function(
        self._label_graph,
        input_signature=[tf.TensorSpec([None, None], tf.float32),
                         tf.TensorSpec([None], tf.int32)])

  @classmethod
  def from_model_dir(cls, model_dir: str, checkpoint: Optional[str] = None,
                     beam_size: int = 8,
                     experiment: Optional[str] = None
                    ) -> 'Teacher':
    """Restores the latest (or given) checkpoint of a training run.

    Args:
      model_dir: the training run's folder.
      checkpoint: checkpoint prefix (default: latest in model_dir).
      beam_size: beam search width.
      experiment: registered experiment whose config class holds the run's
        params.yaml (e.g. a distillation experiment for a student trained
        with soft targets).

    Returns:
      The teacher.

    Raises:
      model_loader.ModelLoadError: unusable model_dir or checkpoint.
    """
    return cls(model_loader.load_model(model_dir, checkpoint, experiment),
               model_dir, beam_size)

  def _label_graph(self, waveforms: tf.Tensor, num_samples: tf.Tensor):
    """(texts [B], confidences [B]) for zero-padded float waveforms [B, N]."""
    outputs = self._model({'waveforms': waveforms,
                           'num_samples': num_samples}, training=False)
    beam = beam_search.beam_search(
        outputs['encoder_outputs'], outputs['encoder_lengths'],
        self._model.prediction_network, self._model.joint_network,
        beam_size=self.decoding_config.beam_size,
        max_symbols_per_frame=self.decoding_config.max_symbols_per_frame,
        max_output_length=self.decoding_config.max_output_length)
    # The same choice as beam_search.beam_search_decode.
    ranking = beam.scores
    if self.decoding_config.length_normalization:
      ranking /= tf.cast(tf.maximum(beam.lengths, 1), ranking.dtype)
    chosen = tf.argmax(ranking, axis=1, output_type=tf.int32)
    tokens = tf.gather(beam.tokens, chosen, batch_dims=1)
    lengths = tf.gather(beam.lengths, chosen, batch_dims=1)
    texts = self._tokenizer.detokenize(
        tf.RaggedTensor.from_tensor(tokens, lengths=lengths))
    return texts, confidence_lib.beam_posterior(beam.scores, chosen)

  def _padded_batch(self, waveforms: Sequence[np.ndarray]):
    """(float32 [B, N] zero-padded waveforms, [B] lengths)."""
    float_waveforms = [recognizer.to_float_waveform(w) for w in waveforms]
    lengths = [w.shape[0] for w in float_waveforms]
    # The Recognizer's padding grid keeps the set of traced shapes small.
    padded = np.zeros([len(float_waveforms), recognizer.padded_length(
        max(lengths), self._feature_config)], np.float32)
    for row, waveform in enumerate(float_waveforms):
      padded[row, :waveform.shape[0]] = waveform
    return padded, lengths

  def _targets_graph(self, waveforms: tf.Tensor, num_samples: tf.Tensor,
                     labels: tf.Tensor, label_lengths: tf.Tensor, top_k: int,
                     temperature: float, frame_ratio: int):
    """Top-k targets [B, M, U + 1, k] and their frame counts [B]."""
    outputs = self._model({'waveforms': waveforms, 'num_samples': num_samples,
                           'labels': labels, 'label_lengths': label_lengths},
                          training=False)
    logits = self._model.joint_fn(
        outputs['encoder_outputs'][:, :, tf.newaxis],
        outputs['prediction_outputs'][:, tf.newaxis])
    log_probs, frames = (
        distillation_frames.map_teacher_log_probs_to_student_frames(
            distillation_kl.tempered_log_probs(logits, temperature),
            outputs['encoder_lengths'], frame_ratio))
    return sparse_kl.top_k_targets(log_probs, top_k), frames

  def lattice_targets(self, waveforms: Sequence[np.ndarray],
                      texts: Sequence[str], top_k: int, temperature: float,
                      frame_ratio: int = 1) -> List[dict]:
    """The teacher's top-k distributions on the lattices of `texts`.

    Args:
      waveforms: 1-D int16 or float [-1, 1) arrays at 16 kHz, unaugmented.
      texts: the target sequence of each (a transcript or a hypothesis).
      top_k: ids kept per lattice node (<= the vocabulary size).
      temperature: tau of the tempered log-probs.
      frame_ratio: teacher frames per stored frame (the student's
        subsampling / the teacher's); their probabilities are averaged.

    Returns:
      Per utterance, `tfrecord_schema.make_example`'s teacher_targets dict:
      top_log_probs and top_ids [M, U + 1, k], rest_log_prob [M, U + 1].
    """
    if not 1 <= top_k <= self._tokenizer.vocab_size:
      raise ValueError(f'top_k must be in [1, {self._tokenizer.vocab_size}] '
                       f'(the vocabulary), got {top_k}.')
    if not waveforms:
      return []
    padded, lengths = self._padded_batch(waveforms)
    tokens = self._tokenizer.tokenize(tf.constant(list(texts)))
    label_lengths = tokens.row_lengths().numpy()
    targets, frames = self._targets_padded(
        tf.constant(padded), tf.constant(lengths, tf.int32),
        tokens.to_tensor(), tf.constant(label_lengths, tf.int32), top_k,
        temperature, frame_ratio)
    results = []
    for row, (num_frames, num_labels) in enumerate(
        zip(frames.numpy(), label_lengths)):
      rows = slice(0, int(num_labels) + 1)
      results.append({
          'top_log_probs': targets.log_probs[row, :num_frames, rows].numpy(),
          'top_ids': targets.ids[row, :num_frames, rows].numpy(),
          'rest_log_prob':
              targets.rest_log_prob[row, :num_frames, rows].numpy(),
          'temperature': temperature, 'frame_ratio': frame_ratio})
    return results

  def label_batch(self, waveforms: Sequence[np.ndarray]) -> List[PseudoLabel]:
    """Decodes utterances as one padded batch.

    Args:
      waveforms: 1-D int16 or float [-1, 1) arrays at 16 kHz.

    Returns:
      One PseudoLabel per waveform, in order.
    """
    if not waveforms:
      return []
    padded, lengths = self._padded_batch(waveforms)
    texts, confidences = self._label_padded(tf.constant(padded),
                                            tf.constant(lengths, tf.int32))
    return [PseudoLabel(text.decode('utf-8'), float(confidence))
            for text, confidence in zip(texts.numpy(), confidences.numpy())]
