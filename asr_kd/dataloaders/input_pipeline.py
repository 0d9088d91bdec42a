"""tf.data input pipeline: TFRecord shards -> bucketed, padded ASR batches.

Stages (docs/input_pipeline.md has the details):
  file list (sharded per tf.distribute.InputContext) -> interleaved
  TFRecordDatasets -> shuffle/repeat (training) -> parse + normalize text ->
  drop unusable records -> tokenize -> speed perturbation and start offset
  (training) -> log-mel with the model's frontend config (+ dither in
  training) -> SpecAugment's mask (training) -> length buckets padded to
  fixed frame bounds and label lengths rounded to a multiple -> prefetch.
The model normalizes the features and applies the mask (its frontend,
asr_kd/modeling/frontend.py).

Each batch is a dict:
  'features' float32 [B, T, F]   log-mel, not normalized; T is one of
                                 config.bucket_boundaries
  'feature_lengths' int32 [B]
  'feature_mask' bool [B, T, F]  SpecAugment's masked cells (training with
                                 spec_augment.enabled only)
  'labels' int32 [B, U]          0-padded; U the bucket's entry of
                                 bucket_label_lengths, else a multiple of
                                 label_length_multiple (or max_label_length)
  'label_lengths' int32 [B]
  'utterance_id' string [B]
  'transcript' string [B]        normalized text the labels encode
  'num_samples' int32 [B]
With config.teacher_targets, also the stored teacher targets
(docs/distillation.md), 0-padded:
  'teacher_top_log_probs' float16 [B, M, U + 1, k]
  'teacher_top_ids' int32 [B, M, U + 1, k]
  'teacher_rest_log_prob' float16 [B, M, U + 1]
  'teacher_target_frames' int32 [B]  stored frames (student frame rate)
  'teacher_target_start_offset' int32 [B]  training with start_offset only:
                                 the zero samples put before the audio
"""

import random
import sys
from typing import List, Optional

import tensorflow as tf

from asr_kd.configs import data_config as data_config_lib
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import spec_augment as spec_augment_lib
from asr_kd.dataloaders import speed_perturbation
from asr_kd.dataloaders import start_offset
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.text import normalization

LABEL_SOURCES = ('transcript', 'pseudo_label', 'none')
# Batch key of SpecAugment's mask.
FEATURE_MASK = 'feature_mask'
# Batch keys of stored teacher targets (AsrDataConfig.teacher_targets).
TARGET_LOG_PROBS = 'teacher_top_log_probs'
TARGET_IDS = 'teacher_top_ids'
TARGET_REST_LOG_PROB = 'teacher_rest_log_prob'
TARGET_FRAMES = 'teacher_target_frames'
# Zero samples the start offset put before the audio the targets are of.
TARGET_START_OFFSET = 'teacher_target_start_offset'
TARGET_KEYS = (TARGET_LOG_PROBS, TARGET_IDS, TARGET_REST_LOG_PROB,
               TARGET_FRAMES, TARGET_START_OFFSET)


def expand_input_path(input_path: str) -> List[str]:
  """Expands comma-separated globs into a sorted, deduplicated file list.

  Args:
    input_path: e.g. 'data/train-*.tfrecord,data/extra.tfrecord.gz'.

  Returns:
    Sorted file paths.

  Raises:
    ValueError: when a pattern matches nothing.
  """
  files = set()
  for pattern in filter(None, (p.strip() for p in input_path.split(','))):
    matches = tf.io.gfile.glob(pattern)
    if not matches:
      raise ValueError(f'No files match input path {pattern!r}')
    files.update(matches)
  if not files:
    raise ValueError('Empty input path.')
  return sorted(files)


def _compression_type(filename: tf.Tensor, compression: str) -> tf.Tensor:
  """'' / 'GZIP' for one file; 'auto' picks GZIP for names ending in .gz."""
  if compression == 'auto':
    return tf.where(tf.strings.regex_full_match(filename, r'.*\.gz'),
                    'GZIP', '')
  if compression not in ('', 'GZIP'):
    raise ValueError(f"compression must be '', 'GZIP' or 'auto', got "
                     f'{compression!r}')
  return tf.constant(compression)


def read_records(files, compression: str = 'auto',
                 cycle_length: Optional[int] = None, block_length: int = 1,
                 deterministic: Optional[bool] = None) -> tf.data.Dataset:
  """Interleaves the records of a dataset (or list) of TFRecord files."""
  if not isinstance(files, tf.data.Dataset):
    files = tf.data.Dataset.from_tensor_slices(list(files))
  return files.interleave(
      lambda filename: tf.data.TFRecordDataset(
          filename, compression_type=_compression_type(filename, compression)),
      cycle_length=cycle_length, block_length=block_length,
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


class AsrInputPipeline:
  """Builds the dataset for one input pipeline (Model Garden reader style)."""

  def __init__(self, config: data_config_lib.AsrDataConfig,
               tokenizer: Optional[tokenizer_lib.Tokenizer] = None,
               feature_config: Optional[data_config_lib.FeatureConfig] = None):
    """Validates the config and loads the tokenizer.

    Args:
      config: AsrDataConfig.
      tokenizer: Tokenizer; when None and labels are needed it is loaded from
        config.tokenizer_model_path.
      feature_config: the model's frontend (model.features); default
        FeatureConfig().

    Raises:
      ValueError: on an invalid config or missing files.
    """
    if config.label_source not in LABEL_SOURCES:
      raise ValueError(f'label_source must be one of {LABEL_SOURCES}, got '
                       f'{config.label_source!r}')
    boundaries = list(config.bucket_boundaries)
    if not boundaries or boundaries != sorted(set(boundaries)) or (
        boundaries[0] <= 0):
      raise ValueError('bucket_boundaries must be increasing positive frame '
                       f'counts, got {boundaries}')
    if config.bucket_batch_sizes and len(config.bucket_batch_sizes) != len(
        boundaries):
      raise ValueError('bucket_batch_sizes needs one size per boundary.')
    if not config.bucket_batch_sizes and config.global_batch_size <= 0:
      raise ValueError('Set global_batch_size or bucket_batch_sizes.')
    if config.max_label_length <= 0 or config.label_length_multiple < 0:
      raise ValueError('max_label_length must be > 0 and '
                       'label_length_multiple >= 0.')
    label_lengths = list(config.bucket_label_lengths)
    if label_lengths and (
        len(label_lengths) != len(boundaries) or
        label_lengths != sorted(label_lengths) or label_lengths[0] < 1 or
        label_lengths[-1] > config.max_label_length):
      raise ValueError(
          'bucket_label_lengths needs one increasing length >= 1 per '
          f'boundary, none over max_label_length ({config.max_label_length}); '
          f'got {label_lengths} for {len(boundaries)} buckets.')
    speed = config.speed_perturbation
    if speed.enabled and not 0 < speed.min_factor <= speed.max_factor:
      raise ValueError('speed_perturbation needs 0 < min_factor <= '
                       f'max_factor, got {speed.min_factor} and '
                       f'{speed.max_factor}.')
    offset = config.start_offset
    if offset.enabled and offset.max_offset_samples < 1:
      raise ValueError('start_offset needs max_offset_samples >= 1, got '
                       f'{offset.max_offset_samples}.')
    if config.teacher_targets and config.label_source != 'pseudo_label':
      raise ValueError('teacher_targets were computed on the pseudo-label '
                       'field\'s text: they need label_source='
                       f'\'pseudo_label\', got {config.label_source!r}.')
    if config.teacher_targets and config.is_training and speed.enabled:
      raise ValueError('teacher_targets were computed on the audio as '
                       'stored: disable speed_perturbation (it changes the '
                       'frames).')
    self._config = config
    self._feature_config = (feature_config or
                            data_config_lib.FeatureConfig())
    # The most samples whose features fit the last bucket.
    self._max_samples = features_lib.max_samples_for_frames(
        boundaries[-1], self._feature_config)
    self._needs_labels = config.label_source != 'none'
    if tokenizer is None and self._needs_labels:
      if not config.tokenizer_model_path:
        raise ValueError('A tokenizer (or tokenizer_model_path) is needed for '
                         f'label_source={config.label_source!r}.')
      tokenizer = tokenizer_lib.Tokenizer(config.tokenizer_model_path)
    self._tokenizer = tokenizer

  def __call__(self, input_context: Optional[tf.distribute.InputContext] = None
              ) -> tf.data.Dataset:
    """Returns the batched dataset for this input pipeline.

    Args:
      input_context: from tf.distribute (`distribute_datasets_from_function`);
        files are sharded by its pipeline id and batch sizes are per replica.

    Returns:
      tf.data.Dataset of batch dicts (module docstring).
    """
    config = self._config
    files = expand_input_path(config.input_path)
    file_dataset = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context and input_context.num_input_pipelines > 1:
      if len(files) >= input_context.num_input_pipelines:
        file_dataset = file_dataset.shard(input_context.num_input_pipelines,
                                          input_context.input_pipeline_id)
      else:
        # Too few files to give every pipeline one: every pipeline reads all
        # files and keeps every n-th record (slower, but still disjoint).
        shard_records = True
    if config.is_training:
      file_dataset = file_dataset.shuffle(len(files), seed=config.seed)
    dataset = read_records(file_dataset, config.compression,
                           config.cycle_length, config.block_length,
                           config.deterministic)
    if shard_records:
      dataset = dataset.shard(input_context.num_input_pipelines,
                              input_context.input_pipeline_id)
    if config.is_training and config.shuffle_buffer_size > 1:
      dataset = dataset.shuffle(config.shuffle_buffer_size, seed=config.seed)
    repeat = config.is_training if config.repeat is None else config.repeat
    if repeat:
      dataset = dataset.repeat()
    dataset = dataset.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=config.deterministic)
    dataset = self._drop_unusable(dataset)
    # The element index seeds dither and SpecAugment: reproducible per
    # element for a fixed seed, different across epochs of a repeat.
    dataset = dataset.enumerate()
    base_seed = config.seed if config.seed is not None else random.randrange(
        2**31)
    dataset = dataset.map(
        lambda index, example: self._add_features(example, base_seed, index),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=config.deterministic)
    dataset = self._bucket_and_batch(dataset, input_context)
    options = tf.data.Options()
    if config.deterministic is not None:
      options.deterministic = config.deterministic
    dataset = dataset.with_options(options)
    return dataset.prefetch(config.prefetch_buffer_size or tf.data.AUTOTUNE)

  def _parse(self, serialized: tf.Tensor) -> dict:
    """Parses a record; picks, normalizes and tokenizes the label text."""
    parsed = tfrecord_schema.parse_example(serialized)
    if self._config.label_source == 'pseudo_label':
      text = parsed[tfrecord_schema.PSEUDO_HYPOTHESIS]
    else:
      text = parsed[tfrecord_schema.TRANSCRIPT]
    text = normalization.normalize(text)
    if self._needs_labels:
      labels = self._tokenizer.tokenize(text, normalize=False)
    else:
      labels = tf.zeros([0], tf.int32)
    num_samples = tf.shape(parsed['audio'])[0]
    return {
        'utterance_id': parsed[tfrecord_schema.UTTERANCE_ID],
        'audio': parsed['audio'],
        'transcript': text,
        'num_samples': num_samples,
        'num_frames': tf.cast(
            features_lib.num_frames(num_samples, self._feature_config),
            tf.int32),
        'labels': labels,
        'confidence': parsed[tfrecord_schema.PSEUDO_CONFIDENCE],
        **(self._stored_targets(parsed, labels)
           if self._config.teacher_targets else {}),
    }

  def _stored_targets(self, parsed: dict, labels: tf.Tensor) -> dict:
    """The record's teacher targets, checked against its labels."""
    shape = parsed[tfrecord_schema.TARGETS_SHAPE]
    checks = [tf.debugging.assert_equal(
        shape[1], tf.cast(tf.size(labels) + 1, tf.int64),
        message='record without stored teacher targets for its '
        'pseudo-label (run asr_kd.bin.teacher_targets), or with targets for '
        'another tokenizer')]
    checks.append(tf.debugging.assert_equal(
        shape[2], tf.constant(self._config.teacher_targets_top_k, tf.int64),
        message='stored teacher targets with another top_k than '
        'teacher_targets_top_k (distillation.top_k)'))
    expected_temperature = self._config.teacher_targets_temperature
    if expected_temperature:
      checks.append(tf.debugging.assert_near(
          parsed[tfrecord_schema.TARGETS_TEMPERATURE],
          tf.constant(expected_temperature, tf.float32),
          message='stored teacher targets of another temperature than '
          'distillation.temperature'))
    k = self._config.teacher_targets_top_k
    with tf.control_dependencies(checks):
      return {
          TARGET_LOG_PROBS: tf.ensure_shape(
              parsed[tfrecord_schema.TARGETS_TOP_LOG_PROBS], [None, None, k]),
          TARGET_IDS: tf.ensure_shape(tf.cast(
              parsed[tfrecord_schema.TARGETS_TOP_IDS], tf.int32),
                                      [None, None, k]),
          TARGET_REST_LOG_PROB: parsed[tfrecord_schema.TARGETS_REST_LOG_PROB],
          TARGET_FRAMES: tf.cast(shape[0], tf.int32),
      }

  def _drop_unusable(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Drops records the model cannot use; counts and logs length drops."""
    config = self._config
    max_frames = config.bucket_boundaries[-1]
    max_labels = (config.bucket_label_lengths[-1]
                  if config.bucket_label_lengths else config.max_label_length)
    if self._needs_labels:
      # Unlabeled records (empty text) carry no target.
      dataset = dataset.filter(lambda e: tf.strings.length(e['transcript']) > 0)
    if config.label_source == 'pseudo_label':
      dataset = dataset.filter(
          lambda e: e['confidence'] >= config.min_pseudo_label_confidence)

    def count_drops(dropped, example):
      unusable = ((example['num_frames'] < 1) |
                  (example['num_frames'] > max_frames) |
                  (tf.size(example['labels']) > max_labels))
      dropped += tf.cast(unusable, tf.int64)
      if unusable:
        tf.print('asr_kd input pipeline: dropped', example['utterance_id'],
                 'frames', example['num_frames'], 'labels',
                 tf.size(example['labels']), '(limits: 1 ..', max_frames,
                 'frames, <=', max_labels, 'labels); dropped',
                 dropped, 'so far', output_stream=sys.stderr)
      return dropped, (example, unusable)

    dataset = dataset.scan(tf.constant(0, tf.int64), count_drops)
    dataset = dataset.filter(lambda example, unusable: not unusable)
    return dataset.map(lambda example, unusable: example)

  def _add_features(self, example: dict, base_seed: int,
                    index: tf.Tensor) -> dict:
    """Log-mel (+ dither) and SpecAugment's mask for one example."""
    config = self._config
    example_seed = tf.stack([tf.constant(base_seed, tf.int64), index])
    seeds = tf.random.experimental.stateless_split(example_seed, num=2)
    waveform = features_lib.waveform_to_float(example['audio'])
    # Waveform augmentations fold their own seeds, so enabling one leaves
    # the others, dither and SpecAugment as they were.
    if config.is_training and config.speed_perturbation.enabled:
      waveform = speed_perturbation.random_speed(
          waveform, config.speed_perturbation, self._max_samples,
          tf.random.experimental.stateless_fold_in(example_seed, 1))
    extra = {}
    if config.is_training and config.start_offset.enabled:
      num_samples = tf.shape(waveform)[0]
      waveform = start_offset.random_start_offset(
          waveform, config.start_offset, self._max_samples,
          tf.random.experimental.stateless_fold_in(example_seed, 2))
      if config.teacher_targets:
        # The stored targets' frames shift with the audio (in the loss).
        extra[TARGET_START_OFFSET] = tf.shape(waveform)[0] - num_samples
    if config.is_training:
      waveform = features_lib.add_dither(
          waveform, self._feature_config.dither, seeds[0])
    utterance_features = features_lib.log_mel(waveform, self._feature_config)
    num_frames = tf.shape(utterance_features)[0]
    if self._masks_features():
      extra[FEATURE_MASK] = spec_augment_lib.mask(
          num_frames, num_frames, self._feature_config.num_mel_bins,
          config.spec_augment, seeds[1])
    return {
        **extra,
        'features': utterance_features,
        'feature_lengths': num_frames,
        'labels': example['labels'],
        'label_lengths': tf.size(example['labels'], out_type=tf.int32),
        'utterance_id': example['utterance_id'],
        'transcript': example['transcript'],
        'num_samples': tf.shape(waveform)[0],
        **{key: example[key] for key in TARGET_KEYS if key in example},
    }

  def _masks_features(self) -> bool:
    return self._config.is_training and self._config.spec_augment.enabled

  def _per_replica_batch_sizes(self, input_context) -> List[int]:
    config = self._config
    global_sizes = list(config.bucket_batch_sizes) or (
        [config.global_batch_size] * len(config.bucket_boundaries))
    if input_context is None:
      return global_sizes
    return [input_context.get_per_replica_batch_size(size)
            for size in global_sizes]

  def _bucket_and_batch(self, dataset: tf.data.Dataset,
                        input_context) -> tf.data.Dataset:
    """Groups by frame bucket and pads to the bucket's fixed shapes."""
    config = self._config
    boundaries = tf.constant(config.bucket_boundaries, tf.int64)
    batch_sizes = tf.constant(self._per_replica_batch_sizes(input_context),
                              tf.int64)
    num_bins = self._feature_config.num_mel_bins

    label_bounds = tf.constant(config.bucket_label_lengths or [0], tf.int64)

    def bucket_of(example):
      # Bucket i holds boundaries[i - 1] < frames <= boundaries[i]; with
      # static label lengths, the first bucket that also fits the labels.
      frames = tf.cast(example['feature_lengths'], tf.int64)
      bucket = tf.reduce_sum(tf.cast(frames > boundaries, tf.int64))
      if config.bucket_label_lengths:
        labels = tf.cast(example['label_lengths'], tf.int64)
        bucket = tf.maximum(
            bucket, tf.reduce_sum(tf.cast(labels > label_bounds, tf.int64)))
      return bucket

    def batch_bucket(bucket, examples):
      labels_shape = ([label_bounds[bucket]] if config.bucket_label_lengths
                      else [None])
      padded_shapes = {
          'features': tf.stack([boundaries[bucket], num_bins]),
          'feature_lengths': [], 'labels': labels_shape, 'label_lengths': [],
          'utterance_id': [], 'transcript': [], 'num_samples': [],
      }
      if self._masks_features():
        padded_shapes[FEATURE_MASK] = padded_shapes['features']
      if config.teacher_targets:
        # Frames to the batch's longest (-1); rows (labels + 1) as the
        # labels.
        rows = (label_bounds[bucket] + 1 if config.bucket_label_lengths
                else tf.constant(-1, tf.int64))
        unknown = tf.constant(-1, tf.int64)
        top_k = tf.constant(config.teacher_targets_top_k, tf.int64)
        padded_shapes.update({
            TARGET_LOG_PROBS: tf.stack([unknown, rows, top_k]),
            TARGET_IDS: tf.stack([unknown, rows, top_k]),
            TARGET_REST_LOG_PROB: tf.stack([unknown, rows]),
            TARGET_FRAMES: []})
        if config.is_training and config.start_offset.enabled:
          padded_shapes[TARGET_START_OFFSET] = []
      return examples.padded_batch(batch_sizes[bucket], padded_shapes,
                                   drop_remainder=config.drop_remainder)

    dataset = dataset.group_by_window(
        key_func=bucket_of, reduce_func=batch_bucket,
        window_size_func=lambda bucket: batch_sizes[bucket])
    if config.bucket_label_lengths:
      return dataset
    return dataset.map(self._pad_labels, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=config.deterministic)

  def _pad_labels(self, batch: dict) -> dict:
    """Pads labels to a multiple of label_length_multiple (bounded set)."""
    config = self._config
    if config.label_length_multiple:
      multiple = config.label_length_multiple
      longest = tf.shape(batch['labels'])[1]
      target = tf.maximum(1, (longest + multiple - 1) // multiple) * multiple
      target = tf.minimum(target, config.max_label_length)
    else:
      target = config.max_label_length
    labels = batch['labels']
    batch['labels'] = tf.pad(labels, [[0, 0], [0, target - tf.shape(labels)[1]]])
    for key in (TARGET_LOG_PROBS, TARGET_IDS, TARGET_REST_LOG_PROB):
      if key in batch:
        # Lattice rows follow the labels: U + 1 of them.
        padding = [[0, 0], [0, 0],
                   [0, target + 1 - tf.shape(batch[key])[2]]]
        batch[key] = tf.pad(batch[key], padding + [[0, 0]] * (
            batch[key].shape.rank - 3))
    return batch


def feature_dataset(input_path: str,
                    feature_config: data_config_lib.FeatureConfig = None,
                    compression: str = 'auto') -> tf.data.Dataset:
  """Unpadded, unnormalized log-mel [T, F] per record (for feature stats).

  Args:
    input_path: comma-separated TFRecord globs.
    feature_config: FeatureConfig (defaults to FeatureConfig()).
    compression: '', 'GZIP' or 'auto'.

  Returns:
    Dataset of float32 [T, F] in file order.
  """
  feature_config = feature_config or data_config_lib.FeatureConfig()
  records = read_records(expand_input_path(input_path), compression,
                         deterministic=True)
  return records.map(
      lambda record: features_lib.log_mel(
          features_lib.waveform_to_float(
              tfrecord_schema.parse_example(record)['audio']),
          feature_config),
      num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
