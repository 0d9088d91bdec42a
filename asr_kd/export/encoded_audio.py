"""In-graph decoding of encoded audio files for serving signatures.

`decode_to_mono(encoded, sample_rate)` turns the bytes of a WAV (16-bit
PCM), FLAC or Ogg/Vorbis file, of any sample rate and channel count, into
float32 mono samples in [-1, 1) at `sample_rate`: it picks the decoder by
the file's magic bytes, averages the channels and resamples with
tensorflow-io. Everything is a TensorFlow op, so a SavedModel signature can
take a file as a client posts it. The ops are tensorflow-io's: a process
that loads such a SavedModel calls `register_ops()` first (TF Serving needs
them built in).

The sample rate of FLAC and Vorbis files is read from their headers here
(tensorflow-io's decoders return samples only):
  FLAC: the STREAMINFO block, which the format requires first: 20 bits
    starting at byte 18.
  Ogg/Vorbis: the identification packet that opens the first page: a
    32-bit little-endian field 12 bytes into the packet, which starts after
    the 27-byte page header and its segment table.
"""

import tensorflow as tf
import tensorflow_io as tfio
from tensorflow_io.python.ops import core_ops as tfio_ops

# tensorflow-io 0.37's resampling filter delay, in samples at the lower rate.
_RESAMPLER_DELAY = 32
_MAGIC = {b'RIFF': 'wav', b'fLaC': 'flac', b'OggS': 'ogg'}


def register_ops() -> None:
  """Registers tensorflow-io's ops with TensorFlow.

  tensorflow-io loads its op library at the first use of one of its ops,
  not at import, so a process that loads a SavedModel holding them (and
  has not called one yet) must call this first.
  """
  getattr(tfio_ops, 'io_audio_resample')


def _bytes_at(encoded: tf.Tensor, start, length: int) -> tf.Tensor:
  """int32 [length] of the bytes of `encoded` from `start`."""
  return tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, start, length),
                                  tf.uint8), tf.int32)


def _flac_sample_rate(encoded: tf.Tensor) -> tf.Tensor:
  rate_bytes = _bytes_at(encoded, 18, 3)
  return (rate_bytes[0] * 4096 + rate_bytes[1] * 16 + rate_bytes[2] // 16)


def _vorbis_sample_rate(encoded: tf.Tensor) -> tf.Tensor:
  num_segments = _bytes_at(encoded, 26, 1)[0]
  rate_bytes = _bytes_at(encoded, 27 + num_segments + 12, 4)
  return tf.reduce_sum(rate_bytes * tf.constant([1, 256, 65536, 16777216]))


def _decode(encoded: tf.Tensor, magic: bytes):
  """(float32 samples [N, C] in [-1, 1), sample rate int32) of one format."""
  audio_format = _MAGIC[magic]
  if audio_format == 'wav':
    samples, rate = tf.audio.decode_wav(encoded)
    return samples, tf.cast(rate, tf.int32)
  if audio_format == 'flac':
    samples = tfio.audio.decode_flac(encoded, dtype=tf.int16)
    return tf.cast(samples, tf.float32) / 32768.0, _flac_sample_rate(encoded)
  return tfio.audio.decode_vorbis(encoded), _vorbis_sample_rate(encoded)


def decode_to_mono(encoded: tf.Tensor, sample_rate: int) -> tf.Tensor:
  """One encoded audio file -> float32 [N] mono samples at `sample_rate`.

  Args:
    encoded: scalar string, the whole file.
    sample_rate: the output rate in Hz (the model's).

  Returns:
    float32 [N] in [-1, 1), the channels' mean, resampled when the file's
    rate differs.

  Raises:
    tf.errors.InvalidArgumentError (when run): bytes of no known format.
  """
  encoded = tf.convert_to_tensor(encoded, tf.string)
  magic = tf.strings.substr(encoded, 0, 4)
  branches = [(tf.equal(magic, key), lambda key=key: _decode(encoded, key))
              for key in _MAGIC]

  def unknown_format():
    check = tf.debugging.Assert(
        False, ['encoded audio must be WAV, FLAC or Ogg/Vorbis; its first '
                'bytes are', magic])
    with tf.control_dependencies([check]):
      return tf.zeros([0, 1]), tf.constant(sample_rate)

  samples, file_rate = tf.case(branches, default=unknown_format,
                               exclusive=True)
  mono = tf.reduce_mean(samples, axis=1)
  return tf.cond(tf.equal(file_rate, sample_rate), lambda: mono,
                 lambda: _resample(mono, file_rate, sample_rate))


def _resample(samples: tf.Tensor, rate_in: tf.Tensor, rate_out: int):
  """tensorflow-io's resampler without its filter delay.

  Its output lags the input by _RESAMPLER_DELAY samples at the lower of the
  two rates (measured; tests/encoded_audio_test.py checks the alignment
  against scipy). The input gets twice that much silence at its end, and the
  output drops as many samples at its start, keeping the length
  ceil(N * rate_out / rate_in).
  """
  rate_in = tf.cast(rate_in, tf.int64)
  lower = tf.minimum(rate_in, rate_out)
  pad_in = 2 * _RESAMPLER_DELAY * rate_in // lower
  delay_out = _RESAMPLER_DELAY * rate_out // lower
  length_out = -(-tf.cast(tf.size(samples), tf.int64) * rate_out // rate_in)
  padded = tf.pad(samples, [[0, pad_in]])
  resampled = tfio.audio.resample(padded, rate_in, rate_out)
  return resampled[delay_out:delay_out + length_out]
