"""Tests for tfrecords_tools.espeak_synth."""

import numpy as np
import tensorflow as tf

from tfrecords_tools import espeak_synth


def _rms(samples):
  return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


class EspeakSynthTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.synth = espeak_synth.EspeakSynthesizer.get()

  def test_output_is_16k_int16_speech(self):
    samples = self.synth.synthesize('the weather is nice today',
                                    espeak_synth.VoiceSettings('en-us'))
    self.assertEqual(espeak_synth.OUTPUT_SAMPLE_RATE, 16000)
    self.assertEqual(samples.dtype, np.int16)
    self.assertEqual(samples.ndim, 1)
    self.assertGreater(len(samples), 0.5 * 16000)
    self.assertLess(len(samples), 5 * 16000)
    self.assertGreater(_rms(samples), 300.0)

  def test_length_grows_with_text(self):
    settings = espeak_synth.VoiceSettings('en', 'm3')
    short = self.synth.synthesize('a red house', settings)
    long = self.synth.synthesize(
        'a red house stood near the river while seven children played '
        'football in the garden', settings)
    self.assertGreater(len(long), 2 * len(short))

  def test_faster_rate_is_shorter(self):
    text = 'please bring the yellow books to the library tomorrow'
    slow = self.synth.synthesize(text, espeak_synth.VoiceSettings(rate=130))
    fast = self.synth.synthesize(text, espeak_synth.VoiceSettings(rate=220))
    self.assertLess(len(fast), 0.8 * len(slow))

  def test_different_voices_give_different_audio(self):
    text = 'we will meet at the station'
    first = self.synth.synthesize(text,
                                  espeak_synth.VoiceSettings('en-us', 'm3'))
    second = self.synth.synthesize(
        text, espeak_synth.VoiceSettings('en-gb-scotland', 'f2'))
    same_length = len(first) == len(second)
    self.assertFalse(same_length and np.array_equal(first, second))

  def test_same_request_gives_identical_audio_whatever_came_before(self):
    # 'f2' is a breathy voice: it exercises the noise generator's seeding.
    settings = espeak_synth.VoiceSettings('en-029', 'f2', rate=160, pitch=60)
    text = 'the old man sold his boat'
    first = self.synth.synthesize(text, settings)
    self.synth.synthesize('something else entirely, said quickly',
                          espeak_synth.VoiceSettings('en-us', 'klatt'))
    second = self.synth.synthesize(text, settings)
    np.testing.assert_array_equal(first, second)

  def test_unknown_voice_raises(self):
    with self.assertRaisesRegex(espeak_synth.EspeakError, 'unknown'):
      self.synth.synthesize('hello', espeak_synth.VoiceSettings('xx-nope'))

  def test_available_variants(self):
    variants = espeak_synth.available_variants()
    self.assertIn('', variants)
    self.assertIn('m3', variants)
    self.assertNotIn('whisper', variants)
    self.assertGreaterEqual(len(variants), 40)

  def test_resample_matches_float64_reference(self):
    rng = np.random.default_rng(1)
    source_rate = 22050
    times = np.arange(source_rate) / source_rate  # One second.
    frequencies = rng.uniform(100.0, 6000.0, size=3)
    amplitudes = rng.uniform(1000.0, 8000.0, size=3)

    def tones(t):
      return sum(a * np.sin(2 * np.pi * f * t)
                 for a, f in zip(amplitudes, frequencies))

    source = np.round(tones(times)).astype(np.int16)
    resampled = espeak_synth.resample_to_16k(source, source_rate)
    self.assertEqual(resampled.dtype, np.int16)
    self.assertEqual(len(resampled), 16000)
    expected = tones(np.arange(16000) / 16000.0)
    # Filter edge effects aside, the tones (all below 8 kHz) pass unchanged.
    error = resampled[800:-800].astype(np.float64) - expected[800:-800]
    self.assertLess(np.max(np.abs(error)),
                    0.02 * np.sum(amplitudes) + 2.0)

  def test_resample_removes_content_above_new_nyquist(self):
    times = np.arange(22050) / 22050.0
    tone = np.round(8000 * np.sin(2 * np.pi * 10000.0 * times))
    resampled = espeak_synth.resample_to_16k(tone.astype(np.int16), 22050)
    self.assertLess(_rms(resampled[800:-800]), 0.02 * _rms(tone))

  def test_trim_silence_keeps_a_margin(self):
    rng = np.random.default_rng(2)
    frame = 160
    for _ in range(5):
      lead, body, tail = (int(rng.integers(20, 200)) * frame for _ in range(3))
      speech = rng.normal(0.0, 3000.0, size=body).astype(np.int16)
      speech[0] = speech[-1] = 20000  # Loud first and last frames.
      samples = np.concatenate([np.zeros(lead, np.int16), speech,
                                np.zeros(tail, np.int16)])
      trimmed = espeak_synth.trim_silence(samples, 16000)
      margin = 1600  # 0.1 s at 16 kHz.
      expected = samples[max(0, lead - margin):lead + body + margin]
      np.testing.assert_array_equal(trimmed, expected)

  def test_trim_silence_leaves_silence_alone(self):
    silence = np.zeros(4000, np.int16)
    np.testing.assert_array_equal(
        espeak_synth.trim_silence(silence, 16000), silence)


if __name__ == '__main__':
  tf.test.main()
