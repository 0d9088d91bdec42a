"""Decodes audio files into 16 kHz mono int16 samples.

This is the one module that touches audio file formats: converters, inspect
and the transcribe binaries all go through it, so swapping the backend (for
example to tensorflow-io for in-graph decoding) is a change here only. The
backend is `soundfile` (libsndfile), which reads WAV, FLAC and OGG/Vorbis.

Every failure to get usable samples out of a file raises `AudioDecodeError`
with a short machine-readable `reason` (one of `REASONS`); the converters
write that reason into their rejects file.
"""

import math
import os
import struct
from typing import List, Tuple

import numpy as np
from scipy import signal
import soundfile

from asr_kd.dataloaders import tfrecord_schema

TARGET_SAMPLE_RATE = tfrecord_schema.SAMPLE_RATE

# Short reasons, stable because rejects files and summaries are keyed by them.
MISSING_FILE = 'missing_file'  # Path does not exist.
NOT_A_FILE = 'not_a_file'  # Path exists but is a directory or the like.
UNREADABLE_FILE = 'unreadable_file'  # The OS refused to open or read it.
EMPTY_FILE = 'empty_file'  # Zero bytes.
CORRUPT_AUDIO = 'corrupt_audio'  # Not a recognisable audio stream.
TRUNCATED_AUDIO = 'truncated_audio'  # Stream ends before its header says.
NO_SAMPLES = 'no_samples'  # Valid header, zero audio frames.
NON_FINITE_AUDIO = 'non_finite_audio'  # Float samples that are NaN or inf.
BEYOND_FULL_SCALE = 'beyond_full_scale'  # Float samples outside [-1, 1].
REASONS = (MISSING_FILE, NOT_A_FILE, UNREADABLE_FILE, EMPTY_FILE,
           CORRUPT_AUDIO, TRUNCATED_AUDIO, NO_SAMPLES, NON_FINITE_AUDIO,
           BEYOND_FULL_SCALE)

# libsndfile sample formats that store floats as they are. Integer formats
# cannot leave [-1, 1); lossy codecs (Vorbis) overshoot it slightly by
# design, and that overshoot is clipped like the resampler's.
_FLOAT_SUBTYPES = ('FLOAT', 'DOUBLE')


class AudioDecodeError(Exception):
  """An audio file could not be decoded into samples.

  Attributes:
    path: the file that failed.
    reason: one of `REASONS`.
    detail: a human-readable explanation (for logs and rejects files).
  """

  def __init__(self, path: str, reason: str, detail: str = ''):
    self.path = path
    self.reason = reason
    self.detail = detail
    super().__init__(f'{path}: {reason}' + (f' ({detail})' if detail else ''))


# Frames converted at a time by `to_mono_16k` (16 kHz input): bounds its
# float64 temporaries to a few MB whatever the file's length.
CONVERSION_BLOCK_FRAMES = 1 << 18


def _check_path(path: str) -> None:
  """Raises AudioDecodeError for paths that cannot hold audio at all."""
  if not os.path.exists(path):
    raise AudioDecodeError(path, MISSING_FILE, 'no such file')
  if not os.path.isfile(path):
    raise AudioDecodeError(path, NOT_A_FILE, 'path is not a regular file')
  if not os.access(path, os.R_OK):
    raise AudioDecodeError(path, UNREADABLE_FILE, 'permission denied')
  if os.path.getsize(path) == 0:
    raise AudioDecodeError(path, EMPTY_FILE, 'file has zero bytes')


def _check_wav_data_chunk(path: str) -> None:
  """Raises if a RIFF/WAVE file's data chunk is shorter than declared.

  libsndfile silently shortens truncated WAV files to the bytes present,
  unlike FLAC where it reports lost sync, so WAV truncation is checked here.
  """
  file_size = os.path.getsize(path)
  with open(path, 'rb') as wav_file:
    header = wav_file.read(12)
    if len(header) < 12 or header[:4] != b'RIFF' or header[8:12] != b'WAVE':
      return  # Not RIFF/WAVE (e.g. RF64 or another format): leave to sndfile.
    position = 12
    while position + 8 <= file_size:
      wav_file.seek(position)
      chunk_id, chunk_size = struct.unpack('<4sI', wav_file.read(8))
      if chunk_id == b'data':
        available = file_size - position - 8
        # 0xFFFFFFFF marks a streamed WAV whose length was never filled in.
        if chunk_size != 0xFFFFFFFF and chunk_size > available:
          raise AudioDecodeError(
              path, TRUNCATED_AUDIO,
              f'data chunk declares {chunk_size} bytes, {available} present')
        return
      position += 8 + chunk_size + (chunk_size & 1)  # Chunks are word aligned.


def _check_sample_values(path: str, samples: np.ndarray, subtype: str) -> None:
  """Raises for samples that int16 cannot represent.

  Converted as they are, NaN becomes an arbitrary integer (usually 0) and
  float audio far beyond full scale (e.g. int16 values stored as floats)
  is clipped into a square wave: a record that looks fine and is not.
  """
  finite = np.isfinite(samples)
  if not finite.all():
    raise AudioDecodeError(
        path, NON_FINITE_AUDIO,
        f'{samples.size - np.count_nonzero(finite)} of {samples.size} '
        'samples are NaN or infinite')
  if subtype in _FLOAT_SUBTYPES:
    magnitudes = np.abs(samples)
    peak = float(magnitudes.max())
    if peak > 1.0:
      raise AudioDecodeError(
          path, BEYOND_FULL_SCALE,
          f'{subtype} samples peak at {peak:.4g} (full scale is 1.0); '
          f'{np.count_nonzero(magnitudes > 1.0)} of {samples.size} samples '
          'would be clipped')


def read_audio(path: str) -> Tuple[np.ndarray, int]:
  """Reads an audio file (WAV, FLAC, OGG) at its native rate and channels.

  Args:
    path: local file path.

  Returns:
    (samples, sample_rate): finite float32 samples of shape
    [num_frames, num_channels], in [-1, 1) for integer formats, [-1, 1] for
    float formats (lossy codecs may overshoot slightly), and the file's
    sample rate in Hz.

  Raises:
    AudioDecodeError: the file is missing, unreadable, empty, corrupt,
      truncated or holds no samples, or holds NaN/infinite samples, or
      float samples beyond full scale.
  """
  _check_path(path)
  if path.lower().endswith('.wav'):
    _check_wav_data_chunk(path)
  try:
    with soundfile.SoundFile(path) as audio_file:
      declared_frames = audio_file.frames
      sample_rate = audio_file.samplerate
      subtype = audio_file.subtype
      try:
        samples = audio_file.read(dtype='float32', always_2d=True)
      except (soundfile.LibsndfileError, RuntimeError) as error:
        # The header opened fine, so the stream itself broke off or is
        # damaged; for FLAC libsndfile reports this as lost sync.
        raise AudioDecodeError(path, TRUNCATED_AUDIO, str(error)) from error
  except soundfile.LibsndfileError as error:
    raise AudioDecodeError(path, CORRUPT_AUDIO, str(error)) from error
  except OSError as error:
    raise AudioDecodeError(path, UNREADABLE_FILE, str(error)) from error
  if samples.shape[0] < declared_frames:
    raise AudioDecodeError(
        path, TRUNCATED_AUDIO,
        f'header declares {declared_frames} frames, decoded {samples.shape[0]}')
  if samples.shape[0] == 0:
    raise AudioDecodeError(path, NO_SAMPLES, 'audio stream has zero frames')
  _check_sample_values(path, samples, subtype)
  return samples, sample_rate


def _to_float64_mono(samples: np.ndarray) -> np.ndarray:
  """int16 (full scale 32768) or float samples, 1-D or 2-D -> float64 1-D."""
  if samples.dtype == np.int16:
    samples = samples.astype(np.float64) / 32768.0
  else:
    samples = samples.astype(np.float64)
  if samples.ndim == 2:
    samples = samples.mean(axis=1)  # Downmix: average of the channels.
  return samples


def _quantize(samples: np.ndarray) -> np.ndarray:
  # The resampling filter can overshoot full scale slightly: clip, not wrap.
  return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
  """Downmixes to mono, resamples to 16 kHz and quantizes to int16.

  At 16 kHz the conversion runs in blocks of CONVERSION_BLOCK_FRAMES, so an
  hour of audio needs no float64 copy of itself (only the int16 result).

  Args:
    samples: [num_frames] or [num_frames, num_channels] array, either int16
      (full scale 32768) or float in [-1, 1).
    sample_rate: rate of `samples` in Hz.

  Returns:
    1-D int16 array at 16 kHz of length ceil(num_frames * 16000 / rate).
  """
  samples = np.asarray(samples)
  if samples.ndim not in (1, 2):
    raise ValueError(f'samples must be 1-D or 2-D, got shape {samples.shape}')
  if sample_rate != TARGET_SAMPLE_RATE:
    divisor = math.gcd(int(sample_rate), TARGET_SAMPLE_RATE)
    return _quantize(signal.resample_poly(
        _to_float64_mono(samples), TARGET_SAMPLE_RATE // divisor,
        int(sample_rate) // divisor))
  mono = np.empty([samples.shape[0]], np.int16)
  for start in range(0, samples.shape[0], CONVERSION_BLOCK_FRAMES):
    end = start + CONVERSION_BLOCK_FRAMES
    mono[start:end] = _quantize(_to_float64_mono(samples[start:end]))
  return mono


def conversion_notes(samples: np.ndarray, sample_rate: int) -> List[str]:
  """What `to_mono_16k` will do to `read_audio`'s output, for NOTE lines.

  Args:
    samples: [num_frames, num_channels] from `read_audio`.
    sample_rate: its rate in Hz.

  Returns:
    e.g. ['resampled 8000 Hz to 16000 Hz', 'downmixed 2 channels to mono'].
  """
  notes = []
  if sample_rate != TARGET_SAMPLE_RATE:
    notes.append(f'resampled {sample_rate} Hz to {TARGET_SAMPLE_RATE} Hz')
  if samples.ndim == 2 and samples.shape[1] > 1:
    notes.append(f'downmixed {samples.shape[1]} channels to mono')
  return notes


def load_mono_16k(path: str) -> np.ndarray:
  """Reads an audio file as 16 kHz mono int16 samples (read + convert).

  Args:
    path: local file path (WAV, FLAC or OGG).

  Returns:
    1-D int16 array at 16 kHz.

  Raises:
    AudioDecodeError: see `read_audio`.
  """
  samples, sample_rate = read_audio(path)
  return to_mono_16k(samples, sample_rate)
