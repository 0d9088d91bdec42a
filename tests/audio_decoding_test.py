"""Tests for asr_kd.dataloaders.audio_decoding."""

import os

import numpy as np
import soundfile
import tensorflow as tf

from asr_kd.dataloaders import audio_decoding


def _sines(frequencies_hz, amplitudes, num_frames, sample_rate):
  """float64 sum of sines evaluated at sample times of `sample_rate`."""
  times = np.arange(num_frames, dtype=np.float64) / sample_rate
  return sum(amplitude * np.sin(2 * np.pi * frequency * times)
             for frequency, amplitude in zip(frequencies_hz, amplitudes))


class ReadAudioTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    self.rng = np.random.default_rng(1234)

  def test_flac_and_wav_16k_mono_round_trip_exactly(self):
    samples = (self.rng.standard_normal(12345) * 3000).astype(np.int16)
    for extension in ('flac', 'wav'):
      path = os.path.join(self.dir, f'mono.{extension}')
      soundfile.write(path, samples, 16000, subtype='PCM_16')
      decoded, sample_rate = audio_decoding.read_audio(path)
      self.assertEqual(sample_rate, 16000)
      self.assertEqual(decoded.shape, (12345, 1))
      self.assertAllEqual(audio_decoding.load_mono_16k(path), samples)

  def test_stereo_44k_flac_is_downmixed_and_resampled(self):
    num_frames = 44100  # One second.
    left = _sines([440.0, 1000.0], [0.3, 0.2], num_frames, 44100)
    right = _sines([440.0, 2500.0], [-0.1, 0.25], num_frames, 44100)
    path = os.path.join(self.dir, 'stereo.flac')
    soundfile.write(path, np.stack([left, right], axis=1), 44100,
                    subtype='PCM_16')
    _, sample_rate = audio_decoding.read_audio(path)
    self.assertEqual(sample_rate, 44100)

    mono_16k = audio_decoding.load_mono_16k(path)

    self.assertEqual(mono_16k.dtype, np.int16)
    self.assertEqual(mono_16k.shape, (int(np.ceil(num_frames * 160 / 441)),))
    # Independent reference: the mean of the two channels' sines evaluated
    # directly at 16 kHz sample times. Edges are skipped (filter warm-up).
    expected = (_sines([440.0, 1000.0], [0.3, 0.2], 16000, 16000) +
                _sines([440.0, 2500.0], [-0.1, 0.25], 16000, 16000)) / 2
    interior = slice(200, -200)
    error = mono_16k[interior] / 32768.0 - expected[interior]
    self.assertLess(np.max(np.abs(error)), 3e-3)

  def test_8k_wav_is_upsampled(self):
    num_frames = 8000
    path = os.path.join(self.dir, 'narrowband.wav')
    soundfile.write(path, _sines([300.0, 1200.0], [0.4, 0.3], num_frames, 8000),
                    8000, subtype='PCM_16')
    mono_16k = audio_decoding.load_mono_16k(path)
    self.assertEqual(mono_16k.shape, (2 * num_frames,))
    expected = _sines([300.0, 1200.0], [0.4, 0.3], 2 * num_frames, 16000)
    error = mono_16k[200:-200] / 32768.0 - expected[200:-200]
    self.assertLess(np.max(np.abs(error)), 3e-3)

  def test_ogg_vorbis_is_read(self):
    path = os.path.join(self.dir, 'speechlike.ogg')
    soundfile.write(path, _sines([500.0], [0.5], 22050, 22050), 22050,
                    format='OGG', subtype='VORBIS')
    mono_16k = audio_decoding.load_mono_16k(path)
    self.assertEqual(mono_16k.shape, (16000,))
    expected = _sines([500.0], [0.5], 16000, 16000)
    # Vorbis is lossy: check the waveform correlates, not equality.
    correlation = np.corrcoef(mono_16k[2000:-2000], expected[2000:-2000])[0, 1]
    self.assertGreater(correlation, 0.99)


class ToMono16kTest(tf.test.TestCase):

  def test_int16_mono_16k_passes_through(self):
    samples = np.random.default_rng(0).integers(
        -32768, 32767, size=999, dtype=np.int16)
    self.assertAllEqual(audio_decoding.to_mono_16k(samples, 16000), samples)

  def test_int16_stereo_downmix_matches_mean(self):
    samples = np.random.default_rng(2).integers(
        -20000, 20000, size=(501, 2)).astype(np.int16)
    expected = np.round(samples.astype(np.float64).mean(axis=1))
    self.assertAllEqual(audio_decoding.to_mono_16k(samples, 16000), expected)

  def test_conversion_in_blocks_equals_the_whole_array_at_once(self):
    samples = np.random.default_rng(4).uniform(-1.2, 1.2, size=(2503, 2))
    expected = np.clip(np.round(samples.mean(axis=1) * 32768.0), -32768,
                       32767)
    original = audio_decoding.CONVERSION_BLOCK_FRAMES
    try:
      audio_decoding.CONVERSION_BLOCK_FRAMES = 100  # 26 blocks, the last short.
      self.assertAllEqual(audio_decoding.to_mono_16k(samples, 16000),
                          expected)
    finally:
      audio_decoding.CONVERSION_BLOCK_FRAMES = original

  def test_clips_instead_of_wrapping(self):
    samples = np.array([1.5, -1.5, 0.5, -1.0], np.float32)
    self.assertAllEqual(audio_decoding.to_mono_16k(samples, 16000),
                        [32767, -32768, 16384, -32768])

  def test_rejects_3d_input(self):
    with self.assertRaisesRegex(ValueError, '1-D or 2-D'):
      audio_decoding.to_mono_16k(np.zeros((2, 2, 2)), 16000)


class DecodeErrorTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = self.get_temp_dir()
    rng = np.random.default_rng(7)
    self.samples = (rng.standard_normal(32000) * 4000).astype(np.int16)

  def assert_reason(self, path, reason):
    with self.assertRaises(audio_decoding.AudioDecodeError) as context:
      audio_decoding.load_mono_16k(path)
    self.assertEqual(context.exception.reason, reason)
    self.assertEqual(context.exception.path, path)
    self.assertIn(reason, str(context.exception))

  def write_bytes(self, name, data):
    path = os.path.join(self.dir, name)
    with open(path, 'wb') as output:
      output.write(data)
    return path

  def test_missing_file(self):
    self.assert_reason(os.path.join(self.dir, 'nope.flac'),
                       audio_decoding.MISSING_FILE)

  def test_directory_named_like_a_file(self):
    path = os.path.join(self.dir, 'folder.flac')
    os.makedirs(path)
    self.assert_reason(path, audio_decoding.NOT_A_FILE)

  def test_empty_file(self):
    self.assert_reason(self.write_bytes('empty.wav', b''),
                       audio_decoding.EMPTY_FILE)

  def test_garbage_bytes(self):
    self.assert_reason(self.write_bytes('garbage.flac', b'not audio' * 100),
                       audio_decoding.CORRUPT_AUDIO)

  def test_truncated_flac_at_several_cut_points(self):
    path = os.path.join(self.dir, 'whole.flac')
    soundfile.write(path, self.samples, 16000)
    with open(path, 'rb') as flac_file:
      data = flac_file.read()
    for fraction in (0.3, 0.6, 0.95):
      cut_path = self.write_bytes('cut.flac', data[:int(len(data) * fraction)])
      self.assert_reason(cut_path, audio_decoding.TRUNCATED_AUDIO)

  def test_truncated_wav(self):
    path = os.path.join(self.dir, 'whole.wav')
    soundfile.write(path, self.samples, 16000)
    with open(path, 'rb') as wav_file:
      data = wav_file.read()
    self.assert_reason(self.write_bytes('cut.wav', data[:len(data) // 2]),
                       audio_decoding.TRUNCATED_AUDIO)

  def test_header_only_wav_has_no_samples(self):
    path = os.path.join(self.dir, 'silent.wav')
    soundfile.write(path, np.zeros(0, np.int16), 16000)
    self.assert_reason(path, audio_decoding.NO_SAMPLES)


if __name__ == '__main__':
  tf.test.main()
