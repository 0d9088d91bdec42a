"""English speech from CMU Flite (Debian package `flite`), at 16 kHz int16.

A second synthesizer, whose voices were built another way than eSpeak NG's
formant synthesis (diphone and unit selection voices recorded from people):
it speaks part of a demo corpus (make_demo_corpus --flite_fraction) or a
whole split again (respeak_split). Flite runs as a subprocess; it is
deterministic for a voice, a text and its settings.
"""

import dataclasses
import os
import shutil
import subprocess
import tempfile
from typing import Tuple

import numpy as np

from tfrecords_tools import synth_wav

OUTPUT_SAMPLE_RATE = 16000
# The 16 kHz voices of Debian's flite 2.2 (`flite -lv`): three unit-selection
# voices recorded from people (US female slt, US male rms, Scottish male awb)
# and one diphone voice (US male kal16). `kal` speaks at 8 kHz; `awb_time`
# only says the time.
VOICES = ('slt', 'rms', 'awb', 'kal16')
# The voices whose pitch follows `f0_shift`; rms (unit selection) keeps the
# pitch of its recordings.
F0_SHIFT_VOICES = ('slt', 'awb', 'kal16')
# About the speaking rate of these voices at duration_stretch 1, so that a
# rate in words per minute means the same for Flite as for eSpeak NG.
NATURAL_RATE_WPM = 170
INSTALL_HINT = 'install it with `apt-get install flite` (Debian/Ubuntu)'


class FliteError(Exception):
  pass


@dataclasses.dataclass(frozen=True)
class FliteSettings:
  """Everything that shapes the voice of one utterance.

  Attributes:
    voice: one of VOICES.
    rate: speaking rate in words per minute (duration_stretch
      NATURAL_RATE_WPM / rate).
    f0_shift: factor on the voice's pitch; only F0_SHIFT_VOICES follow it.
  """
  voice: str = 'slt'
  rate: int = NATURAL_RATE_WPM
  f0_shift: float = 1.0

  @property
  def voice_name(self) -> str:
    return f'flite:{self.voice}'


def flite_binary() -> str:
  path = shutil.which('flite')
  if not path:
    raise FliteError(f'the flite synthesizer is not on PATH; {INSTALL_HINT}')
  return path


def available_voices() -> Tuple[str, ...]:
  """The voices this flite build lists (`flite -lv`)."""
  result = subprocess.run([flite_binary(), '-lv'], capture_output=True,
                          text=True, check=True, timeout=60)
  return tuple(result.stdout.split(':', 1)[-1].split())


def check_voices(voices) -> None:
  """Fails for a voice flite lacks (it would fall back to another silently)
  or one that does not speak at 16 kHz."""
  listed = available_voices()
  for voice in voices:
    if voice not in VOICES:
      raise FliteError(f'voice {voice!r} is not one of the 16 kHz voices '
                       f'{list(VOICES)}')
    if voice not in listed:
      raise FliteError(f'this flite has no voice {voice!r} (it lists '
                       f'{list(listed)})')


def version() -> str:
  result = subprocess.run([flite_binary(), '--version'], capture_output=True,
                          text=True, check=False)
  return next((line.strip() for line in result.stdout.splitlines()
               if 'version' in line), 'unknown')


def speak(text: str, voice: str) -> np.ndarray:
  """`text` spoken by `voice` at its own rate and pitch."""
  return synthesize(text, FliteSettings(voice))


def synthesize(text: str, settings: FliteSettings) -> np.ndarray:
  """int16 samples at 16 kHz of `text` spoken as `settings` say."""
  features = []
  # Set only when not the voice's own, so default settings give flite's
  # default output.
  if settings.rate != NATURAL_RATE_WPM:
    features += ['--setf', 'duration_stretch='
                 f'{NATURAL_RATE_WPM / settings.rate:.4f}']
  if settings.f0_shift != 1.0:
    features += ['--setf', f'f0_shift={settings.f0_shift:.4f}']
  with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, 'utterance.wav')
    # Transcripts are upper case; flite is given ordinary lower-case text.
    result = subprocess.run([flite_binary(), *features, '-voice',
                             settings.voice, '-t', text.lower(), '-o', path],
                            capture_output=True, text=True, check=False,
                            timeout=300)
    if result.returncode:
      raise FliteError(f'flite failed (exit {result.returncode}) on '
                       f'{text!r} with {settings}: {result.stderr.strip()}')
    return synth_wav.read_int16(path, OUTPUT_SAMPLE_RATE, settings.voice,
                                FliteError)
