"""English speech from the Festival Speech Synthesis System, 16 kHz int16.

A third synthesizer, which the demo never trains on: its diphone voices
(Debian packages festvox-kdlpc16k and festvox-kallpc16k) are concatenated
recordings of two US men, through Festival's own front end and residual
LPC synthesis. `ked` is a speaker no other synthesizer here has; `kal` is
the speaker of Flite's `kal16`, which the demo corpus keeps for its test
split. Festival runs as a subprocess and is deterministic for a voice and a
text.
"""

import os
import shutil
import subprocess
import tempfile
from typing import Sequence, Tuple

import numpy as np

from tfrecords_tools import synth_wav

OUTPUT_SAMPLE_RATE = 16000
VOICES = ('ked', 'kal')
INSTALL_HINT = ('install it with `apt-get install festival festvox-kdlpc16k '
                'festvox-kallpc16k` (Debian/Ubuntu)')


class FestivalError(Exception):
  pass


def _binary(name: str) -> str:
  path = shutil.which(name)
  if not path:
    raise FestivalError(f'{name} (Festival) is not on PATH; {INSTALL_HINT}')
  return path


def available_voices() -> Tuple[str, ...]:
  """The diphone voices this Festival has, without the `_diphone` suffix."""
  result = subprocess.run([_binary('festival'), '-b', '(print (voice.list))'],
                          capture_output=True, text=True, check=True,
                          timeout=60)
  return tuple(name[:-len('_diphone')]
               for name in result.stdout.strip('()\n ').split()
               if name.endswith('_diphone'))


def check_voices(voices: Sequence[str]) -> None:
  """Fails for a voice Festival lacks: text2wave would report it on stderr,
  exit 0 and speak with its default voice."""
  listed = available_voices()
  for voice in voices:
    if voice not in VOICES:
      raise FestivalError(f'voice {voice!r} is not one of {list(VOICES)}')
    if voice not in listed:
      raise FestivalError(f'this Festival has no voice {voice!r} (it lists '
                          f'{list(listed)}); {INSTALL_HINT}')


def version() -> str:
  result = subprocess.run([_binary('festival'), '--version'],
                          capture_output=True, text=True, check=False)
  return result.stdout.strip() or 'unknown'


def speak(text: str, voice: str) -> np.ndarray:
  """int16 samples at 16 kHz of `text` spoken by `voice`."""
  with tempfile.TemporaryDirectory() as directory:
    text_path = os.path.join(directory, 'utterance.txt')
    wav_path = os.path.join(directory, 'utterance.wav')
    with open(text_path, 'w', encoding='utf-8') as text_file:
      # Transcripts are upper case, which Festival would spell out.
      text_file.write(text.lower() + '\n')
    result = subprocess.run(
        [_binary('text2wave'), '-eval', f'(voice_{voice}_diphone)',
         text_path, '-o', wav_path],
        capture_output=True, text=True, check=False, timeout=300)
    if result.returncode or 'ERROR' in result.stderr:
      raise FestivalError(f'text2wave failed on {text!r} with voice '
                          f'{voice!r}: {result.stderr.strip()}')
    return synth_wav.read_int16(wav_path, OUTPUT_SAMPLE_RATE, voice,
                                FestivalError)
