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
                 pseudo_label: Optional[Mapping[str, object]] = None
                ) -> tf.train.Example:
  """Builds one record from 16 kHz mono int16 samples.

  Args:
    utterance_id: unique id of the utterance.
    samples: 1-D int16 array at `SAMPLE_RATE`.
    transcript: reference text; '' for unlabeled audio.
    speaker: speaker id, '' when unknown.
    pseudo_label: optional dict with keys 'hypothesis', 'confidence' and
      'source_model' from a teacher.
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
  return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_example(serialized: tf.Tensor) -> dict:
  """Parses one serialized record; 'audio' holds the int16 samples."""
  parsed = tf.io.parse_single_example(serialized, FEATURE_SPEC)
  parsed['audio'] = tf.io.decode_raw(parsed.pop(AUDIO_PCM), tf.int16,
                                     little_endian=True)
  return parsed
