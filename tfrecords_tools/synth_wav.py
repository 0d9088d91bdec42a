"""Reads back the WAV file a synthesizer subprocess wrote."""

from typing import Type

import numpy as np
import soundfile


def read_int16(path: str, sample_rate: int, voice: str,
               error: Type[Exception]) -> np.ndarray:
  """int16 samples of `path`; `error` names `voice` if its rate is not
  `sample_rate` (the corpus has one rate, and resampling hides a wrong
  voice)."""
  samples, file_rate = soundfile.read(path, dtype='int16')
  if file_rate != sample_rate:
    raise error(f'voice {voice!r} spoke at {file_rate} Hz, not {sample_rate}')
  return samples
