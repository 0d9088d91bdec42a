"""tfrecords_tools.respeak_split, flite_synth and festival_synth: another
synthesizer's split."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
import soundfile
import tensorflow as tf

from tfrecords_tools import festival_synth
from tfrecords_tools import flite_synth
from tfrecords_tools import respeak_split
from tfrecords_tools import synth_wav

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `make test` installs Debian's flite and festival where it can (Makefile).
HAVE_FLITE = shutil.which('flite') is not None
HAVE_FESTIVAL = (shutil.which('festival') is not None and
                 shutil.which('text2wave') is not None)


def write_split(directory, transcripts):
  """A LibriSpeech-layout split with these {utterance id: text} (no audio)."""
  for utterance_id, text in transcripts.items():
    speaker, chapter, _ = utterance_id.split('-')
    folder = os.path.join(directory, speaker, chapter)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f'{speaker}-{chapter}.trans.txt'),
              'a') as transcript_file:
      transcript_file.write(f'{utterance_id} {text}\n')
  return directory


SENTENCES = {f'{speaker}-5-{index:04d}': f'SENTENCE {speaker} NUMBER {index}'
             for speaker in (10, 11) for index in range(4)}


class DrawTest(tf.test.TestCase):

  def test_draws_distinct_sentences_per_voice_reproducibly(self):
    split = write_split(tempfile.mkdtemp(), SENTENCES)
    transcripts = respeak_split.read_transcripts(split)
    self.assertEqual(transcripts, sorted(SENTENCES.items()))
    drawn = respeak_split.draw_sentences(transcripts, ['a', 'b', 'c'], 2, 0)
    self.assertEqual([len(sentences) for sentences in drawn], [2, 2, 2])
    flat = [text for sentences in drawn for text in sentences]
    self.assertLen(set(flat), 6)
    self.assertContainsSubset(flat, SENTENCES.values())
    self.assertEqual(drawn, respeak_split.draw_sentences(
        transcripts, ['a', 'b', 'c'], 2, 0))
    self.assertNotEqual(drawn, respeak_split.draw_sentences(
        transcripts, ['a', 'b', 'c'], 2, 1))

  def test_too_few_sentences_and_no_split_fail_clearly(self):
    transcripts = respeak_split.read_transcripts(
        write_split(tempfile.mkdtemp(), SENTENCES))
    with self.assertRaisesRegex(respeak_split.RespeakError,
                                '2 voices x 5 utterances need 10 distinct '
                                'sentences; the input has 8'):
      respeak_split.draw_sentences(transcripts, ['a', 'b'], 5, 0)
    with self.assertRaisesRegex(respeak_split.RespeakError,
                                'not a LibriSpeech-layout split'):
      respeak_split.read_transcripts(tempfile.mkdtemp())

  def test_missing_flite_names_its_package(self):
    with mock.patch.object(shutil, 'which', return_value=None):
      with self.assertRaisesRegex(flite_synth.FliteError,
                                  'apt-get install flite'):
        flite_synth.check_voices(['slt'])


def assert_short_speech(test, samples):
  """`samples` hold a spoken short sentence: 16 kHz int16, 0.8-4 s, not
  silence."""
  test.assertEqual(samples.dtype, np.int16)
  test.assertBetween(samples.shape[0] / 16000, 0.8, 4.0)
  test.assertGreater(np.sqrt(np.mean(samples.astype(np.float64)**2)), 300.0)


def median_pitch_hz(samples):
  """Median autocorrelation pitch of the voiced 64 ms frames, 60-400 Hz."""
  rate = flite_synth.OUTPUT_SAMPLE_RATE
  signal = samples.astype(np.float64) / 32768.0
  frame = 1024
  shortest, longest = rate // 400, rate // 60
  pitches = []
  for start in range(0, signal.shape[0] - frame, frame // 2):
    window = signal[start:start + frame]
    if np.std(window) < 0.02:
      continue
    correlation = np.correlate(window, window, 'full')[frame - 1:]
    lag = shortest + int(np.argmax(correlation[shortest:longest]))
    pitches.append(rate / lag)
  return float(np.median(pitches))


class FliteTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    if not HAVE_FLITE:
      self.skipTest('flite is not installed (apt-get install flite)')

  def test_voices_speak_16khz_speech_that_differs_by_voice(self):
    spoken = {voice: flite_synth.synthesize('THE CAT SAT ON THE MAT',
                                            flite_synth.FliteSettings(voice))
              for voice in ('slt', 'kal16')}
    for samples in spoken.values():
      assert_short_speech(self, samples)
    self.assertNotEqual(spoken['slt'].shape, spoken['kal16'].shape)
    np.testing.assert_array_equal(
        spoken['slt'], flite_synth.synthesize(
            'the cat sat on the mat', flite_synth.FliteSettings('slt')))

  def test_settings_set_the_rate_and_the_pitch(self):
    text = 'HELLO THERE MY FRIEND HOW ARE YOU TODAY'
    slow, fast = (flite_synth.synthesize(
        text, flite_synth.FliteSettings('awb', rate=rate))
                  for rate in (120, 220))
    self.assertAllClose(slow.shape[0] / fast.shape[0], 220 / 120, rtol=0.1)
    low, high = (median_pitch_hz(flite_synth.synthesize(
        text, flite_synth.FliteSettings('slt', f0_shift=f0_shift)))
                 for f0_shift in (0.8, 1.25))
    self.assertAllClose(high / low, 1.25 / 0.8, rtol=0.1)

  def test_unknown_and_8khz_voices_are_refused(self):
    with self.assertRaisesRegex(flite_synth.FliteError, "'kal' is not one "
                                'of the 16 kHz voices'):
      flite_synth.check_voices(['slt', 'kal'])
    with self.assertRaisesRegex(flite_synth.FliteError, 'not one of'):
      flite_synth.check_voices(['nobody'])

  def test_binary_writes_the_split_and_guards_its_folder(self):
    split = write_split(tempfile.mkdtemp(), SENTENCES)
    output = os.path.join(tempfile.mkdtemp(), 'flite_split')

    def run(*args):
      return subprocess.run(
          [sys.executable, '-m', 'tfrecords_tools.respeak_split',
           f'--input={split}', f'--output_dir={output}', '--per_voice=2',
           '--voices=slt,awb', *args], cwd=REPO_ROOT, capture_output=True,
          text=True, timeout=300, check=False)

    result = run()
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(os.path.join(output, respeak_split.INFO_FILE)) as info_file:
      info = json.load(info_file)
    self.assertEqual(info['speakers'], {'900': 'slt', '901': 'awb'})
    self.assertEqual(info['synthesizer'], 'flite')
    self.assertIn('flite', info['synthesizer_version'])
    written = respeak_split.read_transcripts(output)
    self.assertEqual([utterance_id for utterance_id, _ in written],
                     ['900-1-0000', '900-1-0001', '901-1-0000',
                      '901-1-0001'])
    self.assertLen({text for _, text in written}, 4)
    self.assertContainsSubset([text for _, text in written],
                              SENTENCES.values())
    for utterance_id, _ in written:
      speaker = utterance_id.split('-')[0]
      samples, rate = soundfile.read(os.path.join(
          output, speaker, '1', f'{utterance_id}.flac'), dtype='int16')
      self.assertEqual(rate, 16000)
      self.assertGreater(samples.shape[0], 8000)
    self.assertAllClose(info['seconds_per_voice']['slt'], sum(
        soundfile.info(os.path.join(output, '900', '1', name)).duration
        for name in os.listdir(os.path.join(output, '900', '1'))
        if name.endswith('.flac')))
    # An earlier split is replaced only when asked.
    result = run()
    self.assertEqual(result.returncode, 1)
    self.assertIn('pass --overwrite', result.stderr)
    self.assertEqual(run('--overwrite').returncode, 0)
    # A folder this tool did not write is never removed.
    foreign = tempfile.mkdtemp()
    open(os.path.join(foreign, 'keep.txt'), 'w').close()
    output = foreign
    result = run('--overwrite')
    self.assertEqual(result.returncode, 1)
    self.assertIn('not written by this tool', result.stderr)
    self.assertTrue(os.path.exists(os.path.join(foreign, 'keep.txt')))


class SynthWavTest(tf.test.TestCase):

  def test_reads_int16_and_names_a_voice_at_another_rate(self):
    path = os.path.join(tempfile.mkdtemp(), 'spoken.wav')
    samples = np.random.default_rng().integers(-30000, 30000, 800,
                                               dtype=np.int16)
    soundfile.write(path, samples, 8000, subtype='PCM_16')
    np.testing.assert_array_equal(
        synth_wav.read_int16(path, 8000, 'kal', ValueError), samples)
    with self.assertRaisesRegex(ValueError,
                                "voice 'kal' spoke at 8000 Hz, not 16000"):
      synth_wav.read_int16(path, 16000, 'kal', ValueError)


class FestivalTest(tf.test.TestCase):

  def test_missing_festival_names_its_packages(self):
    with mock.patch.object(shutil, 'which', return_value=None):
      with self.assertRaisesRegex(festival_synth.FestivalError,
                                  'apt-get install festival festvox-kdlpc16k '
                                  'festvox-kallpc16k'):
        festival_synth.check_voices(['ked'])

  def test_voices_speak_16khz_speech_that_differs_by_voice(self):
    if not HAVE_FESTIVAL:
      self.skipTest('festival is not installed')
    self.assertIn('Festival', festival_synth.version())
    spoken = {voice: festival_synth.speak('THE CAT SAT ON THE MAT', voice)
              for voice in festival_synth.VOICES}
    for samples in spoken.values():
      assert_short_speech(self, samples)
    self.assertNotEqual(spoken['ked'].tobytes(), spoken['kal'].tobytes())
    np.testing.assert_array_equal(
        spoken['ked'], festival_synth.speak('the cat sat on the mat', 'ked'))
    with self.assertRaisesRegex(festival_synth.FestivalError, 'not one of'):
      festival_synth.check_voices(['ked', 'slt'])

  def test_respeak_with_festival_writes_its_voices(self):
    if not HAVE_FESTIVAL:
      self.skipTest('festival is not installed')
    split = write_split(tempfile.mkdtemp(), SENTENCES)
    output = os.path.join(tempfile.mkdtemp(), 'festival_split')
    info = respeak_split.respeak(split, output, ['ked'], 2, 0,
                                 synthesizer='festival')
    self.assertEqual((info['synthesizer'], info['speakers']),
                     ('festival', {'900': 'ked'}))
    written = respeak_split.read_transcripts(output)
    self.assertLen(written, 2)
    for utterance_id, text in written:
      samples, rate = soundfile.read(os.path.join(
          output, '900', '1', f'{utterance_id}.flac'), dtype='int16')
      self.assertEqual(rate, 16000)
      np.testing.assert_array_equal(samples,
                                    festival_synth.speak(text, 'ked'))
    with self.assertRaisesRegex(respeak_split.RespeakError,
                                "unknown synthesizer 'espeak'"):
      respeak_split.respeak(split, output, ['ked'], 2, 0, overwrite=True,
                            synthesizer='espeak')


if __name__ == '__main__':
  tf.test.main()
