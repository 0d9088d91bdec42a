"""Tests for asr_kd.export.encoded_audio (in-graph decoding of audio files).

The reference is the host-side path every binary uses: soundfile decodes,
asr_kd.dataloaders.audio_decoding downmixes and resamples (scipy).
"""

import io

from absl.testing import parameterized
import numpy as np
import soundfile
import tensorflow as tf

from asr_kd.dataloaders import audio_decoding
from asr_kd.export import encoded_audio

_FORMATS = {'wav': ('WAV', 'PCM_16'), 'flac': ('FLAC', 'PCM_16'),
            'ogg': ('OGG', 'VORBIS')}


def encode(samples: np.ndarray, sample_rate: int, audio_format: str) -> bytes:
  """float [N] or [N, C] samples -> the bytes of an audio file."""
  container, subtype = _FORMATS[audio_format]
  buffer = io.BytesIO()
  soundfile.write(buffer, samples, sample_rate, format=container,
                  subtype=subtype)
  return buffer.getvalue()


def random_speechlike(num_samples: int, channels: int, seed: int,
                      sample_rate: int):
  """[N, C] float sums of random tones under 3.8 kHz (speech's band, and
  below every tested rate's Nyquist frequency), peak about 0.4."""
  rng = np.random.default_rng(seed)
  times = np.arange(num_samples)[:, None] / sample_rate
  samples = np.zeros((num_samples, channels))
  for channel in range(channels):
    for _ in range(12):
      frequency = rng.uniform(80, 3800)
      samples[:, channel] += rng.uniform(0.2, 1.0) * np.sin(
          2 * np.pi * frequency * times[:, 0] + rng.uniform(0, 2 * np.pi))
  return 0.4 * samples / np.abs(samples).max()


def reference_mono_16k(data: bytes) -> np.ndarray:
  samples, rate = soundfile.read(io.BytesIO(data), dtype='float32',
                                 always_2d=True)
  return audio_decoding.to_mono_16k(samples, rate).astype(np.float32) / 32768


class EncodedAudioTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(audio_format=('wav', 'flac', 'ogg'),
                         sample_rate=(16000, 22050, 44100, 8000),
                         channels=(1, 2))
  def test_matches_host_decoding(self, audio_format, sample_rate, channels):
    samples = random_speechlike(sample_rate // 2, channels,
                                sample_rate + channels, sample_rate)
    data = encode(samples, sample_rate, audio_format)
    decoded = encoded_audio.decode_to_mono(tf.constant(data), 16000).numpy()
    expected = reference_mono_16k(data)
    self.assertEqual(len(decoded), len(expected))
    length = len(expected)
    if sample_rate == 16000:
      # No resampling: the decoders agree to the int16 step (Vorbis too,
      # both being libvorbis).
      self.assertAllClose(decoded[:length], expected[:length], atol=2e-4)
    else:
      # The resamplers' filters differ by a fraction of a sample's delay
      # (the error grows with frequency at unit gain): aligned to the
      # sample, the same level, and close.
      lags = range(-8, 9)
      correlations = [np.dot(decoded[8 + lag:length - 8 + lag],
                             expected[8:length - 8]) for lag in lags]
      self.assertEqual(lags[int(np.argmax(correlations))], 0)
      self.assertBetween(np.std(decoded) / np.std(expected), 0.98, 1.02)
      error = decoded[:length] - expected[:length]
      snr_db = 10 * np.log10(np.sum(expected[:length] ** 2) /
                             np.sum(error ** 2))
      self.assertGreater(snr_db, 15.0)

  def test_header_sample_rates(self):
    samples = random_speechlike(4000, 2, 3, 16000)
    for audio_format in ('flac', 'ogg'):
      for rate in (8000, 11025, 32000, 48000, 96000):
        data = tf.constant(encode(samples, rate, audio_format))
        parse = (encoded_audio._flac_sample_rate if audio_format == 'flac'
                 else encoded_audio._vorbis_sample_rate)
        self.assertEqual(int(parse(data)), rate, (audio_format, rate))

  def test_unknown_bytes_fail_clearly(self):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                'must be WAV, FLAC or Ogg/Vorbis'):
      encoded_audio.decode_to_mono(tf.constant(b'ID3\x03 not audio'), 16000)


if __name__ == '__main__':
  tf.test.main()
