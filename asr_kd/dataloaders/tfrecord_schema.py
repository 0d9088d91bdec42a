"""The one TFRecord schema every corpus, pseudo-label set and pipeline uses.

Each record is a `tf.train.Example`; docs/tfrecord_schema.md documents the
fields. Audio is stored as little-endian int16 PCM bytes at `SAMPLE_RATE`:
half the size of float32 and decodable with one `tf.io.decode_raw`.
"""

from typing import Mapping, Optional

import numpy as np
import tensorflow as tf

SAMPLE_RATE = 16000

UTTERANCE_ID = 'utterance_id'
SPEAKER = 'speaker'
AUDIO_PCM = 'audio/pcm_s16le'
NUM_SAMPLES = 'audio/num_samples'
AUDIO_SAMPLE_RATE = 'audio/sample_rate'
TRANSCRIPT = 'transcript'  # Empty for unlabeled audio.
PSEUDO_HYPOTHESIS = 'pseudo_label/hypothesis'
PSEUDO_CONFIDENCE = 'pseudo_label/confidence'
PSEUDO_SOURCE_MODEL = 'pseudo_label/source_model'
# Stored teacher targets (asr_kd.bin.teacher_targets): the teacher's top-k
# tempered distributions on the lattice of the pseudo-label field's text.
TARGETS_SHAPE = 'teacher_targets/shape'  # [M frames, U + 1 rows, k]
TARGETS_TOP_LOG_PROBS = 'teacher_targets/top_log_probs'  # float16 bytes
TARGETS_TOP_IDS = 'teacher_targets/top_ids'  # int16 bytes
TARGETS_REST_LOG_PROB = 'teacher_targets/rest_log_prob'  # float16 bytes
TARGETS_TEMPERATURE = 'teacher_targets/temperature'
TARGETS_FRAME_RATIO = 'teacher_targets/frame_ratio'

# Files whose names end in this suffix hold GZIP-compressed records.
GZIP_SUFFIX = '.gz'


def compression_of(path: str) -> str:
  """The TFRecord compression type ('GZIP' or '') that `path`'s name says."""
  return 'GZIP' if path.endswith(GZIP_SUFFIX) else ''


FEATURE_SPEC = {
    UTTERANCE_ID: tf.io.FixedLenFeature([], tf.string),
    SPEAKER: tf.io.FixedLenFeature([], tf.string, default_value=''),
    AUDIO_PCM: tf.io.FixedLenFeature([], tf.string),
    NUM_SAMPLES: tf.io.FixedLenFeature([], tf.int64),
    AUDIO_SAMPLE_RATE: tf.io.FixedLenFeature(
        [], tf.int64, default_value=SAMPLE_RATE),
    TRANSCRIPT: tf.io.FixedLenFeature([], tf.string, default_value=''),
    PSEUDO_HYPOTHESIS: tf.io.FixedLenFeature([], tf.string, default_value=''),
    PSEUDO_CONFIDENCE: tf.io.FixedLenFeature([], tf.float32,
                                             default_value=0.0),
    PSEUDO_SOURCE_MODEL: tf.io.FixedLenFeature([], tf.string,
                                               default_value=''),
    TARGETS_SHAPE: tf.io.FixedLenFeature([3], tf.int64,
                                         default_value=[0, 0, 0]),
    TARGETS_TOP_LOG_PROBS: tf.io.FixedLenFeature([], tf.string,
                                                 default_value=''),
    TARGETS_TOP_IDS: tf.io.FixedLenFeature([], tf.string, default_value=''),
    TARGETS_REST_LOG_PROB: tf.io.FixedLenFeature([], tf.string,
                                                 default_value=''),
    TARGETS_TEMPERATURE: tf.io.FixedLenFeature([], tf.float32,
                                               default_value=0.0),
    TARGETS_FRAME_RATIO: tf.io.FixedLenFeature([], tf.int64,
                                               default_value=0),
}


def _bytes(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64(value: int) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _float(value: float) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=[value]))


def make_example(utterance_id: str,
                 samples: np.ndarray,
                 transcript: str = '',
                 speaker: str = '',
                 pseudo_label: Optional[Mapping[str, object]] = None,
                 teacher_targets: Optional[Mapping[str, object]] = None
                ) -> tf.train.Example:
  """Builds one record from 16 kHz mono int16 samples.

  Args:
    utterance_id: unique id of the utterance.
    samples: 1-D int16 array at `SAMPLE_RATE`.
    transcript: reference text; '' for unlabeled audio.
    speaker: speaker id, '' when unknown.
    pseudo_label: optional dict with keys 'hypothesis', 'confidence' and
      'source_model' from a teacher.
    teacher_targets: optional dict with keys 'top_log_probs' [M, U + 1, k]
      and 'top_ids' (same shape), 'rest_log_prob' [M, U + 1],
      'temperature' and 'frame_ratio' (stored as float16, int16, float16).
  """
  samples = np.asarray(samples)
  if samples.dtype != np.int16 or samples.ndim != 1:
    raise ValueError('samples must be a 1-D int16 array, got '
                     f'{samples.dtype} with shape {samples.shape}')
  feature = {
      UTTERANCE_ID: _bytes(utterance_id.encode('utf-8')),
      SPEAKER: _bytes(speaker.encode('utf-8')),
      AUDIO_PCM: _bytes(samples.astype('<i2').tobytes()),
      NUM_SAMPLES: _int64(int(samples.shape[0])),
      AUDIO_SAMPLE_RATE: _int64(SAMPLE_RATE),
      TRANSCRIPT: _bytes(transcript.encode('utf-8')),
  }
  if pseudo_label is not None:
    feature[PSEUDO_HYPOTHESIS] = _bytes(
        str(pseudo_label['hypothesis']).encode('utf-8'))
    feature[PSEUDO_CONFIDENCE] = _float(float(pseudo_label['confidence']))
    feature[PSEUDO_SOURCE_MODEL] = _bytes(
        str(pseudo_label['source_model']).encode('utf-8'))
  if teacher_targets is not None:
    feature.update(_targets_features(teacher_targets))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def _targets_features(targets: Mapping[str, object]) -> dict:
  top_log_probs = np.asarray(targets['top_log_probs'])
  top_ids = np.asarray(targets['top_ids'])
  rest_log_prob = np.asarray(targets['rest_log_prob'])
  if (top_log_probs.ndim != 3 or top_ids.shape != top_log_probs.shape or
      rest_log_prob.shape != top_log_probs.shape[:2]):
    raise ValueError(
        'teacher targets need top_log_probs and top_ids of one [M, U + 1, '
        'k] shape and rest_log_prob [M, U + 1]; got '
        f'{top_log_probs.shape}, {top_ids.shape}, {rest_log_prob.shape}')
  if top_ids.size and (top_ids.min() < 0 or top_ids.max() > 32767):
    raise ValueError('teacher target ids must fit int16 (vocabularies of '
                     'at most 32768 entries).')
  return {
      TARGETS_SHAPE: tf.train.Feature(int64_list=tf.train.Int64List(
          value=list(top_log_probs.shape))),
      TARGETS_TOP_LOG_PROBS: _bytes(
          top_log_probs.astype('<f2').tobytes()),
      TARGETS_TOP_IDS: _bytes(top_ids.astype('<i2').tobytes()),
      TARGETS_REST_LOG_PROB: _bytes(rest_log_prob.astype('<f2').tobytes()),
      TARGETS_TEMPERATURE: _float(float(targets['temperature'])),
      TARGETS_FRAME_RATIO: _int64(int(targets['frame_ratio'])),
  }


def parse_example(serialized: tf.Tensor) -> dict:
  """Parses one serialized record; 'audio' holds the int16 samples."""
  parsed = tf.io.parse_single_example(serialized, FEATURE_SPEC)
  parsed['audio'] = tf.io.decode_raw(parsed.pop(AUDIO_PCM), tf.int16,
                                     little_endian=True)
  # Stored teacher targets ([0, 0, 0]-shaped when the record has none).
  shape = tf.cast(parsed[TARGETS_SHAPE], tf.int32)
  for key, dtype, target_shape in (
      (TARGETS_TOP_LOG_PROBS, tf.float16, shape),
      (TARGETS_TOP_IDS, tf.int16, shape),
      (TARGETS_REST_LOG_PROB, tf.float16, shape[:2])):
    parsed[key] = tf.reshape(
        tf.io.decode_raw(parsed[key], dtype, little_endian=True),
        target_shape)
  return parsed
