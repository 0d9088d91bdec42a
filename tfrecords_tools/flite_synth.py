"""English speech from CMU Flite (Debian package `flite`), at 16 kHz int16.

A second synthesizer, so that models trained on eSpeak NG speech can be
scored on speech whose voices were built another way (diphone and unit
selection voices recorded from people, against eSpeak's formant synthesis).
Flite runs as a subprocess; it is deterministic for a voice and a text.
"""

import os
import shutil
import subprocess
import tempfile
from typing import Tuple

import numpy as np
import soundfile

OUTPUT_SAMPLE_RATE = 16000
# The 16 kHz voices of Debian's flite 2.2 (`flite -lv`): three unit-selection
# voices recorded from people (US female slt, US male rms, Scottish male awb)
# and one diphone voice (US male kal16). `kal` speaks at 8 kHz; `awb_time`
# only says the time.
VOICES_16K = ('slt', 'rms', 'awb', 'kal16')
INSTALL_HINT = 'install it with `apt-get install flite` (Debian/Ubuntu)'


class FliteError(Exception):
  pass


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
    if voice not in VOICES_16K:
      raise FliteError(f'voice {voice!r} is not one of the 16 kHz voices '
                       f'{list(VOICES_16K)}')
    if voice not in listed:
      raise FliteError(f'this flite has no voice {voice!r} (it lists '
                       f'{list(listed)})')


def synthesize(text: str, voice: str) -> np.ndarray:
  """int16 samples at 16 kHz of `text` spoken by `voice`."""
  with tempfile.TemporaryDirectory() as directory:
    path = os.path.join(directory, 'utterance.wav')
    # Transcripts are upper case; flite is given ordinary lower-case text.
    subprocess.run([flite_binary(), '-voice', voice, '-t', text.lower(),
                    '-o', path], capture_output=True, check=True, timeout=300)
    samples, sample_rate = soundfile.read(path, dtype='int16')
  if sample_rate != OUTPUT_SAMPLE_RATE:
    raise FliteError(f'voice {voice!r} spoke at {sample_rate} Hz, not '
                     f'{OUTPUT_SAMPLE_RATE}')
  return samples
