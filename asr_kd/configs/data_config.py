"""Config dataclasses for features, SpecAugment and the ASR input pipeline."""

import dataclasses
from typing import List, Optional

from official.core import config_definitions as cfg
from official.modeling import hyperparams


@dataclasses.dataclass
class FeatureConfig(hyperparams.Config):
  """Log-mel front end (asr_kd.dataloaders.features.log_mel).

  Attributes:
    sample_rate: audio sample rate in Hz.
    frame_length_ms: analysis window length (25 ms = 400 samples).
    frame_step_ms: hop (10 ms = 160 samples).
    fft_length: FFT size; frames are zero-padded to it.
    num_mel_bins: number of mel filters (feature dimension).
    lower_edge_hertz: lowest mel filter edge.
    upper_edge_hertz: highest mel filter edge.
    log_floor: power floor before the log.
    dither: stddev of Gaussian noise added to the [-1, 1) waveform in
      training only (0 = off).
  """
  sample_rate: int = 16000
  frame_length_ms: float = 25.0
  frame_step_ms: float = 10.0
  fft_length: int = 512
  num_mel_bins: int = 80
  lower_edge_hertz: float = 20.0
  upper_edge_hertz: float = 7600.0
  log_floor: float = 1e-6
  dither: float = 0.0


@dataclasses.dataclass
class SpecAugmentConfig(hyperparams.Config):
  """SpecAugment with adaptive time masks (Park et al. 2020).

  Attributes:
    enabled: apply in training (never in evaluation).
    num_freq_masks: frequency masks per utterance.
    freq_mask_max_bins: F, max width of a frequency mask (inclusive).
    num_time_masks: upper bound on time masks per utterance.
    time_masks_per_frame: pM; time masks = min(num_time_masks,
      floor(pM * length)).
    time_mask_max_ratio: pS; max width of a time mask = floor(pS * length).

  Masked cells become 0, the mean of the normalized features: the pipeline
  sends the mask and the model's frontend applies it after normalizing.
  """
  enabled: bool = True
  num_freq_masks: int = 2
  freq_mask_max_bins: int = 27
  num_time_masks: int = 10
  time_masks_per_frame: float = 0.04
  time_mask_max_ratio: float = 0.05


@dataclasses.dataclass
class SpeedPerturbationConfig(hyperparams.Config):
  """Waveform resampling by a random factor per utterance (Ko et al. 2015).

  Attributes:
    enabled: apply in training (never in evaluation).
    min_factor: least factor; < 1 is slower, lower-pitched speech.
    max_factor: largest factor; > 1 is faster, higher-pitched speech. The
      factor is uniform in [min_factor, max_factor), raised where needed so
      that the utterance still fits the last length bucket.
  """
  enabled: bool = False
  min_factor: float = 0.9
  max_factor: float = 1.1


@dataclasses.dataclass
class StartOffsetConfig(hyperparams.Config):
  """Zeros before each training waveform, a random count per utterance.

  Attributes:
    enabled: apply in training (never in evaluation).
    max_offset_samples: the largest offset; the count is uniform in
      0..max_offset_samples, lowered where needed so that the utterance
      still fits the last length bucket. 640 samples (40 ms at 16 kHz) cover
      every phase of a 10 ms hop and of 4x subsampling.
  """
  enabled: bool = False
  max_offset_samples: int = 640


@dataclasses.dataclass
class AsrDataConfig(cfg.DataConfig):
  """ASR input pipeline (asr_kd.dataloaders.input_pipeline).

  Inherited fields used: input_path (comma-separated globs),
  global_batch_size, is_training, drop_remainder, shuffle_buffer_size,
  cycle_length, block_length, deterministic, seed, prefetch_buffer_size.

  Attributes:
    compression: '' (none), 'GZIP', or 'auto' (GZIP for files ending in .gz).
    bucket_boundaries: upper frame bounds (inclusive) of the length buckets;
      features are padded to the bound; longer utterances are dropped.
    bucket_batch_sizes: global batch size per bucket (same length as
      bucket_boundaries); empty = global_batch_size for every bucket.
    max_label_length: utterances with more label ids are dropped.
    label_length_multiple: labels are padded to the batch maximum rounded up
      to this multiple (at least one multiple); 0 pads to max_label_length.
    bucket_label_lengths: static label shapes, one per bucket (increasing,
      at most max_label_length): labels are padded to their bucket's length,
      so each bucket is one batch shape (what a whole-step XLA program or a
      TPU needs; overrides label_length_multiple). An utterance goes to the
      first bucket that fits both its frames and its labels; one with more
      labels than the last bucket's length is dropped. Empty: per-batch
      padding by label_length_multiple. Training with task.jit_compile
      fills it when empty (`with_static_shapes`).
    label_source: 'transcript', 'pseudo_label' (teacher hypothesis) or 'none'
      (unlabeled audio, labels are all padding).
    min_pseudo_label_confidence: with label_source='pseudo_label', records
      whose confidence is lower are dropped.
    teacher_targets: batches carry the records' stored teacher targets
      (asr_kd.bin.teacher_targets; docs/distillation.md): needs
      label_source 'pseudo_label', whose text they were computed on, and
      no speed perturbation (they were computed on the audio as stored);
      a start offset is carried in the batch for the loss to follow. Set
      by a distillation task with distillation.targets 'stored'.
    teacher_targets_temperature: with teacher_targets, a record stored at
      another temperature is an error (0: not checked).
    teacher_targets_top_k: with teacher_targets, the ids per node every
      record must hold; it is the batches' static last dimension (the loss
      needs it static).
    tokenizer_model_path: SentencePiece model, used when the pipeline is built
      without a Tokenizer object.
    repeat: repeat the data forever (default: when is_training).
    spec_augment: SpecAugment config (used only when is_training): batches
      carry the mask, which the model applies after normalizing.
    speed_perturbation: waveform speed perturbation (used only when
      is_training), before the features; an online teacher sees the same
      perturbed audio.
    start_offset: random zeros before the waveform (used only when
      is_training), after speed perturbation; an online teacher sees them
      too.

  The log-mel frontend (and its training dither) is the model's
  (model.features): the task hands it to the pipeline, which computes the
  log-mel features for speed and leaves normalization to the model.
  """
  compression: str = 'auto'
  bucket_boundaries: List[int] = dataclasses.field(
      default_factory=lambda: [200, 400, 600, 800, 1200, 1600])
  bucket_batch_sizes: List[int] = dataclasses.field(default_factory=list)
  max_label_length: int = 256
  label_length_multiple: int = 16
  bucket_label_lengths: List[int] = dataclasses.field(default_factory=list)
  label_source: str = 'transcript'
  min_pseudo_label_confidence: float = 0.0
  teacher_targets: bool = False
  teacher_targets_temperature: float = 0.0
  teacher_targets_top_k: int = 8
  tokenizer_model_path: str = ''
  repeat: Optional[bool] = None
  spec_augment: SpecAugmentConfig = dataclasses.field(
      default_factory=SpecAugmentConfig)
  speed_perturbation: SpeedPerturbationConfig = dataclasses.field(
      default_factory=SpeedPerturbationConfig)
  start_offset: StartOffsetConfig = dataclasses.field(
      default_factory=StartOffsetConfig)


def with_static_shapes(config: AsrDataConfig) -> AsrDataConfig:
  """`config` with one batch shape per bucket (whole-step XLA, TPUs).

  Full batches only (drop_remainder), and labels padded to a static length
  per bucket: bucket_label_lengths if the config sets them, else the label
  rate of max_label_length over the last bucket's frames, applied to each
  bucket's frame bound (rounded up to label_length_multiple). A transcript
  faster than that rate moves up a bucket rather than being dropped.
  """
  if config.bucket_label_lengths:
    return config.replace(drop_remainder=True)
  boundaries = list(config.bucket_boundaries)
  multiple = max(1, config.label_length_multiple)
  label_lengths = []
  for bound in boundaries:
    length = -(-config.max_label_length * bound // boundaries[-1])
    length = -(-length // multiple) * multiple
    label_lengths.append(min(length, config.max_label_length))
  return config.replace(drop_remainder=True,
                        bucket_label_lengths=label_lengths)
