"""Tests for asr_kd.dataloaders.input_pipeline on small synthetic shards."""

import os

import numpy as np
import tensorflow as tf

from asr_kd.configs import data_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.text import normalization
from tfrecords_tools import train_tokenizer

_WORDS = 'alpha beta gamma delta echo foxtrot golf hotel india juliet'.split()
_BOUNDARIES = [100, 200, 300]
_NUM_SHARDS = 4
_PER_SHARD = 10


def _write_shards(directory, rng):
  """Writes shards of labeled records plus one too-long and one unlabeled."""
  records = {}
  for shard in range(_NUM_SHARDS):
    suffix = '.tfrecord.gz' if shard == 3 else '.tfrecord'
    path = os.path.join(directory, f'train-{shard}{suffix}')
    options = 'GZIP' if suffix.endswith('.gz') else None
    with tf.io.TFRecordWriter(path, options=options) as writer:
      for index in range(_PER_SHARD + (2 if shard == 0 else 0)):
        utterance_id = f's{shard}-u{index}'
        num_samples = int(rng.randint(400 + 160 * 20, 400 + 160 * 295))
        transcript = ' '.join(rng.choice(_WORDS, rng.randint(1, 6))).upper()
        if shard == 0 and index == _PER_SHARD:
          num_samples = 400 + 160 * 320  # 321 frames > last boundary.
        if shard == 0 and index == _PER_SHARD + 1:
          transcript = ''  # Unlabeled.
        audio = (rng.randn(num_samples) * 3000).astype(np.int16)
        confidence = float(rng.uniform())
        writer.write(tfrecord_schema.make_example(
            utterance_id, audio, transcript + '.',
            pseudo_label={'hypothesis': transcript.lower() + ' echo',
                          'confidence': confidence,
                          'source_model': 'teacher'}).SerializeToString())
        records[utterance_id] = (audio, transcript, confidence)
  return records


class ShardsTestCase(tf.test.TestCase):
  """Shards of random audio, a tokenizer and a training config for them."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data_dir = tf.compat.v1.test.get_temp_dir()
    rng = np.random.RandomState(0)
    cls.records = _write_shards(cls.data_dir, rng)
    sentences = sorted({' '.join(rng.choice(_WORDS, 4)) for _ in range(60)})
    cls.model_path = train_tokenizer.train_sentencepiece(
        sentences, os.path.join(cls.data_dir, 'spm'), vocab_size=30)

  def setUp(self):
    super().setUp()
    self.tokenizer = tokenizer_lib.Tokenizer(self.model_path)

  def _config(self, **overrides):
    config = data_config.AsrDataConfig(
        input_path=os.path.join(self.data_dir, 'train-*'),
        global_batch_size=4, is_training=True, shuffle_buffer_size=16,
        seed=7, deterministic=True, bucket_boundaries=_BOUNDARIES,
        max_label_length=64, label_length_multiple=8)
    config.override(overrides, is_strict=False)
    return config

  def first_batches(self, config, count=3):
    """The pipeline's first `count` batches as NumPy dicts."""
    batches = input_pipeline.AsrInputPipeline(config, self.tokenizer)()
    return [{key: value.numpy() for key, value in batch.items()}
            for batch in batches.take(count)]

  def assert_evaluation_keeps_every_length(self, **augmentation):
    """Evaluation data with `augmentation` enabled is left as recorded."""
    eval_config = self._config(is_training=False, repeat=False,
                               **augmentation)
    for batch in self.first_batches(eval_config):
      for row, utterance_id in enumerate(batch['utterance_id']):
        self.assertEqual(batch['num_samples'][row],
                         len(self.records[utterance_id.decode()][0]))


class InputPipelineTest(ShardsTestCase):

  def test_file_compression_follows_the_name_in_every_reader(self):
    # The host-side readers (data split, pseudo-labeling, inspect) and
    # tf.data's 'auto' must agree on which files are GZIP.
    for name in ('train-00000-of-00002.tfrecord.gz',
                 'train-00000-of-00002.tfrecord', 'gz.tfrecord'):
      self.assertEqual(
          tfrecord_schema.compression_of(name),
          input_pipeline._compression_type(tf.constant(name),
                                           'auto').numpy().decode())
    self.assertEqual(tfrecord_schema.compression_of('a.tfrecord.gz'), 'GZIP')
    self.assertEqual(tfrecord_schema.compression_of('a.tfrecord'), '')

  def _usable_ids(self, min_confidence=None):
    """Ids the pipeline must keep (pseudo-labels when min_confidence set)."""
    return {utterance_id for utterance_id, (audio, text, confidence)
            in self.records.items()
            if features_lib.num_frames(len(audio)) <= _BOUNDARIES[-1] and (
                confidence >= min_confidence if min_confidence is not None
                else bool(text))}

  def test_bucketing_yields_only_declared_shapes(self):
    pipeline = input_pipeline.AsrInputPipeline(self._config(), self.tokenizer)
    seen_frames = set()
    for batch in pipeline().take(10):
      batch_size, frames, bins = batch['features'].shape
      self.assertEqual((batch_size, bins), (4, 80))
      self.assertIn(frames, _BOUNDARIES)
      seen_frames.add(frames)
      previous = ([0] + _BOUNDARIES)[_BOUNDARIES.index(frames)]
      lengths = batch['feature_lengths'].numpy()
      self.assertTrue(np.all((lengths > previous) & (lengths <= frames)))
      label_width = batch['labels'].shape[1]
      self.assertEqual(label_width % 8, 0)
      self.assertBetween(label_width, 8, 64)
      labels = batch['labels'].numpy()
      self.assertAllEqual(batch['label_lengths'], (labels != 0).sum(axis=1))
      self.assertEqual(batch['labels'].dtype, tf.int32)
      self.assertEqual(batch['num_samples'].dtype, tf.int32)
      self.assertAllEqual(
          self.tokenizer.detokenize(batch['labels']), batch['transcript'])
    self.assertGreater(len(seen_frames), 1)

  def test_static_label_lengths_give_one_shape_per_bucket(self):
    label_lengths = [6, 12, 20]
    config = self._config(is_training=False, drop_remainder=False,
                          bucket_label_lengths=label_lengths)
    seen = []
    for batch in input_pipeline.AsrInputPipeline(config, self.tokenizer)():
      bucket = _BOUNDARIES.index(batch['features'].shape[1])
      self.assertEqual(batch['labels'].shape[1], label_lengths[bucket])
      for row, utterance_id in enumerate(batch['utterance_id'].numpy()):
        # The first bucket that fits both the frames and the labels.
        frames = int(batch['feature_lengths'][row])
        labels = int(batch['label_lengths'][row])
        self.assertEqual(bucket, max(
            sum(frames > bound for bound in _BOUNDARIES),
            sum(labels > bound for bound in label_lengths)))
        seen.append((utterance_id.decode(), labels))
    self.assertGreater(max(labels for _, labels in seen), label_lengths[0])
    # Only what fits no bucket is dropped.
    expected = {utterance_id for utterance_id in self._usable_ids()
                if len(self.tokenizer.tokenize(normalization.normalize_text(
                    self.records[utterance_id][1]))) <= label_lengths[-1]}
    self.assertCountEqual([utterance_id for utterance_id, _ in seen],
                          expected)
    self.assertLess(len(expected), len(self._usable_ids()))

  def test_static_shapes_fill_label_lengths_and_drop_remainders(self):
    static = data_config.with_static_shapes(
        self._config(drop_remainder=False, repeat=False))
    self.assertTrue(static.drop_remainder)
    # 64 labels over 300 frames, per bucket bound, rounded up to 8.
    self.assertEqual(static.bucket_label_lengths, [24, 48, 64])
    shapes = set()
    for batch in input_pipeline.AsrInputPipeline(static, self.tokenizer)():
      shapes.add((tuple(batch['features'].shape[:2]),
                  batch['labels'].shape[1]))
    self.assertEqual({batch_size for (batch_size, _), _ in shapes}, {4})
    self.assertTrue(shapes <= {((4, frames), labels) for frames, labels
                               in zip(_BOUNDARIES, [24, 48, 64])})
    kept = data_config.with_static_shapes(
        self._config(bucket_label_lengths=[8, 16, 32]))
    self.assertEqual(kept.bucket_label_lengths, [8, 16, 32])

  def test_bad_static_label_lengths_are_refused(self):
    for lengths in ([8, 16], [16, 8, 32], [8, 16, 65], [0, 8, 16]):
      with self.assertRaisesRegex(ValueError, 'bucket_label_lengths'):
        input_pipeline.AsrInputPipeline(
            self._config(bucket_label_lengths=lengths), self.tokenizer)

  def test_eval_features_and_labels_match_the_records(self):
    config = self._config(is_training=False, drop_remainder=False)
    pipeline = input_pipeline.AsrInputPipeline(config, self.tokenizer)
    seen = []
    for batch in pipeline():
      for row, utterance_id in enumerate(batch['utterance_id'].numpy()):
        utterance_id = utterance_id.decode()
        seen.append(utterance_id)
        audio, transcript, _ = self.records[utterance_id]
        expected = features_lib.log_mel(
            features_lib.waveform_to_float(audio)).numpy()
        length = int(batch['feature_lengths'][row])
        self.assertEqual(length, expected.shape[0])
        self.assertEqual(int(batch['num_samples'][row]), len(audio))
        self.assertAllClose(batch['features'][row, :length], expected,
                            atol=1e-4)
        self.assertAllEqual(batch['features'][row, length:], tf.zeros(
            [batch['features'].shape[1] - length, 80]))
        self.assertEqual(batch['transcript'][row].numpy().decode(),
                         normalization.normalize_text(transcript))
    # Every usable record once; the too-long and the unlabeled are dropped.
    self.assertCountEqual(seen, self._usable_ids())
    self.assertLen(seen, _NUM_SHARDS * _PER_SHARD)

  def test_training_features_are_log_mel_and_spec_augment_sends_its_mask(self):
    config = self._config()
    self.assertTrue(config.spec_augment.enabled)
    masked_cells = 0
    for batch in input_pipeline.AsrInputPipeline(config,
                                                 self.tokenizer)().take(4):
      features = batch['features'].numpy()
      mask = batch[input_pipeline.FEATURE_MASK].numpy()
      self.assertEqual(mask.shape, features.shape)
      self.assertEqual(mask.dtype, bool)
      for row, utterance_id in enumerate(batch['utterance_id'].numpy()):
        audio = self.records[utterance_id.decode()][0]
        length = int(batch['feature_lengths'][row])
        # The features are the log-mel, unmasked: the model normalizes them
        # and applies the mask.
        expected = features_lib.log_mel(
            features_lib.waveform_to_float(audio)).numpy()
        self.assertAllClose(features[row, :length], expected, atol=1e-4)
        self.assertFalse(mask[row, length:].any())
      masked_cells += int(mask.sum())
    self.assertGreater(masked_cells, 0)
    evaluation = next(iter(input_pipeline.AsrInputPipeline(
        self._config(is_training=False), self.tokenizer)()))
    self.assertNotIn(input_pipeline.FEATURE_MASK, evaluation)

  def test_input_context_shards_files_without_overlap(self):
    config = self._config(is_training=False, drop_remainder=False)
    pipeline = input_pipeline.AsrInputPipeline(config, self.tokenizer)
    shards = []
    for pipeline_id in range(2):
      context = tf.distribute.InputContext(
          num_input_pipelines=2, input_pipeline_id=pipeline_id,
          num_replicas_in_sync=2)
      ids = [u.decode() for batch in pipeline(context)
             for u in batch['utterance_id'].numpy()]
      for batch in pipeline(context).take(1):
        self.assertLessEqual(batch['features'].shape[0], 2)  # Per replica.
      shards.append(ids)
    self.assertEmpty(set(shards[0]) & set(shards[1]))
    self.assertCountEqual(shards[0] + shards[1], self._usable_ids())
    # Whole files go to one pipeline.
    for ids in shards:
      self.assertLen({u.split('-')[0] for u in ids}, 2)

  def test_fewer_files_than_pipelines_shards_records(self):
    config = self._config(input_path=os.path.join(self.data_dir,
                                                  'train-1.tfrecord'),
                          is_training=False, drop_remainder=False)
    pipeline = input_pipeline.AsrInputPipeline(config, self.tokenizer)
    shards = [
        [u.decode() for batch in pipeline(tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id))
         for u in batch['utterance_id'].numpy()]
        for pipeline_id in range(2)]
    self.assertEmpty(set(shards[0]) & set(shards[1]))
    self.assertCountEqual(shards[0] + shards[1],
                          [f's1-u{index}' for index in range(_PER_SHARD)])

  def test_unlabeled_source_keeps_all_audio_with_empty_labels(self):
    config = self._config(is_training=False, drop_remainder=False,
                          label_source='none')
    pipeline = input_pipeline.AsrInputPipeline(config, tokenizer=None)
    seen = []
    for batch in pipeline():
      self.assertAllEqual(batch['label_lengths'],
                          tf.zeros_like(batch['label_lengths']))
      self.assertEqual(batch['labels'].shape[1], 8)
      seen.extend(u.decode() for u in batch['utterance_id'].numpy())
    self.assertCountEqual(seen, self._usable_ids(min_confidence=0.0))

  def test_deterministic_option_gives_identical_order_twice(self):
    config = self._config(spec_augment={'enabled': True})
    runs = []
    for _ in range(2):
      pipeline = input_pipeline.AsrInputPipeline(
          config, self.tokenizer, data_config.FeatureConfig(dither=1e-3))
      runs.append(list(pipeline().take(6).as_numpy_iterator()))
    for first, second in zip(*runs):
      self.assertAllEqual(first['utterance_id'], second['utterance_id'])
      self.assertAllEqual(first['features'], second['features'])
      self.assertAllEqual(first[input_pipeline.FEATURE_MASK],
                          second[input_pipeline.FEATURE_MASK])
    different_seed = input_pipeline.AsrInputPipeline(
        self._config(seed=8), self.tokenizer)
    other = [b['utterance_id'] for b in
             different_seed().take(6).as_numpy_iterator()]
    self.assertNotAllEqual(np.concatenate(other), np.concatenate(
        [b['utterance_id'] for b in runs[0]]))

  def test_pseudo_labels_filtered_by_confidence(self):
    config = self._config(is_training=False, drop_remainder=False,
                          label_source='pseudo_label',
                          min_pseudo_label_confidence=0.5)
    pipeline = input_pipeline.AsrInputPipeline(config, self.tokenizer)
    seen = []
    for batch in pipeline():
      for utterance_id, text in zip(batch['utterance_id'].numpy(),
                                    batch['transcript'].numpy()):
        seen.append(utterance_id.decode())
        self.assertEqual(
            text.decode(),
            (self.records[seen[-1]][1].lower() + ' echo').strip())
    self.assertCountEqual(seen, self._usable_ids(min_confidence=0.5))

  def _write_target_records(self, with_targets=True):
    """Pseudo-labeled records with random stored targets; {id: targets}."""
    rng = np.random.default_rng(5)
    path = os.path.join(self.data_dir, f'targets-{with_targets}.tfrecord')
    stored = {}
    with tf.io.TFRecordWriter(path) as writer:
      for index in range(6):
        text = ' '.join(rng.choice(_WORDS, rng.integers(1, 4)))
        rows = len(self.tokenizer.tokenize(text)) + 1
        frames = int(rng.integers(3, 9))
        targets = {
            'top_log_probs': rng.normal(size=(frames, rows, 3)),
            'top_ids': rng.integers(0, 30, size=(frames, rows, 3)),
            'rest_log_prob': rng.normal(size=(frames, rows)),
            'temperature': 2.0, 'frame_ratio': 1}
        samples = (rng.standard_normal(400 + 160 * 60) * 3000).astype(
            np.int16)
        writer.write(tfrecord_schema.make_example(
            f't{index}', samples, pseudo_label={
                'hypothesis': text, 'confidence': 1.0, 'source_model': 'x'},
            teacher_targets=targets if with_targets else None
        ).SerializeToString())
        stored[f't{index}'] = targets
    return path, stored

  def test_stored_teacher_targets_ride_along_with_their_labels(self):
    path, stored = self._write_target_records()
    for static in ([], [8, 16, 24]):
      config = self._config(
          input_path=path, is_training=False, drop_remainder=False,
          label_source='pseudo_label', teacher_targets=True,
          teacher_targets_temperature=2.0, teacher_targets_top_k=3,
          bucket_label_lengths=static)
      seen = 0
      for batch in input_pipeline.AsrInputPipeline(config, self.tokenizer)():
        batch = {key: value.numpy() for key, value in batch.items()}
        width = batch['labels'].shape[1]
        self.assertEqual(batch[input_pipeline.TARGET_IDS].shape[2],
                         width + 1)
        for row, utterance_id in enumerate(batch['utterance_id']):
          targets = stored[utterance_id.decode()]
          frames, rows, _ = targets['top_log_probs'].shape
          self.assertEqual(batch[input_pipeline.TARGET_FRAMES][row], frames)
          self.assertEqual(batch['label_lengths'][row] + 1, rows)
          self.assertAllClose(
              batch[input_pipeline.TARGET_LOG_PROBS][row, :frames, :rows],
              targets['top_log_probs'], atol=5e-3, rtol=1e-3)
          self.assertAllEqual(
              batch[input_pipeline.TARGET_IDS][row, :frames, :rows],
              targets['top_ids'])
          self.assertAllClose(
              batch[input_pipeline.TARGET_REST_LOG_PROB][row, :frames, :rows],
              targets['rest_log_prob'], atol=5e-3, rtol=1e-3)
          seen += 1
      self.assertEqual(seen, 6)

  def test_stored_teacher_targets_carry_the_start_offset(self):
    path, stored = self._write_target_records()
    config = self._config(
        input_path=path, label_source='pseudo_label', teacher_targets=True,
        teacher_targets_top_k=3, shuffle_buffer_size=0, repeat=False,
        drop_remainder=False,
        start_offset={'enabled': True, 'max_offset_samples': 640})
    offsets = []
    for batch in input_pipeline.AsrInputPipeline(config, self.tokenizer)():
      for row, utterance_id in enumerate(batch['utterance_id'].numpy()):
        offset = int(batch[input_pipeline.TARGET_START_OFFSET][row])
        # The zeros put before the recorded audio.
        self.assertEqual(int(batch['num_samples'][row]) - offset,
                         400 + 160 * 60)
        self.assertBetween(offset, 0, 640)
        offsets.append(offset)
        self.assertIn(utterance_id.decode(), stored)
    self.assertLen(offsets, 6)
    self.assertGreater(len(set(offsets)), 1)
    # Evaluation data of the same config has no offset and no offset key.
    config.override({'is_training': False})
    for batch in input_pipeline.AsrInputPipeline(config, self.tokenizer)():
      self.assertNotIn(input_pipeline.TARGET_START_OFFSET, batch)

  def test_stored_teacher_targets_refuse_what_does_not_match(self):
    path, _ = self._write_target_records(with_targets=False)
    config = self._config(input_path=path, is_training=False,
                          drop_remainder=False, label_source='pseudo_label',
                          teacher_targets=True, teacher_targets_top_k=3)
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'without stored teacher targets'):
      list(input_pipeline.AsrInputPipeline(config, self.tokenizer)())
    path, _ = self._write_target_records()
    config.override({'input_path': path, 'teacher_targets_top_k': 4})
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'another top_k'):
      list(input_pipeline.AsrInputPipeline(config, self.tokenizer)())
    config.override({'teacher_targets_top_k': 3,
                     'teacher_targets_temperature': 1.0})
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'another temperature'):
      list(input_pipeline.AsrInputPipeline(config, self.tokenizer)())
    with self.assertRaisesRegex(ValueError, 'label_source'):
      input_pipeline.AsrInputPipeline(
          self._config(teacher_targets=True), self.tokenizer)
    with self.assertRaisesRegex(ValueError, 'speed_perturbation'):
      input_pipeline.AsrInputPipeline(
          self._config(teacher_targets=True, label_source='pseudo_label',
                       speed_perturbation={'enabled': True}),
          self.tokenizer)

  def test_bad_input_path_raises_clear_error(self):
    config = self._config(input_path='/nonexistent/dir/*.tfrecord')
    with self.assertRaisesRegex(ValueError, 'No files match'):
      input_pipeline.AsrInputPipeline(config, self.tokenizer)()


if __name__ == '__main__':
  tf.test.main()
