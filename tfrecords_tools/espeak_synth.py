"""English speech synthesis with eSpeak NG through ctypes, at 16 kHz int16.

The PyPI package `espeakng-loader` ships `libespeak-ng.so` and its data
folder (dictionaries, languages, voice variants), so no system package is
needed. eSpeak NG keeps its state (current voice, parameters, the synth
callback, pitch flutter phase) in process-global C variables. A synthesis
request is fully described by a `VoiceSettings` plus the text, and
`EspeakSynthesizer` gives every request a freshly loaded library, so the
audio of an utterance is bit-exact the same whichever process makes it and
whatever that process synthesized before; worker processes (multiprocessing)
each use their own `EspeakSynthesizer.get()`.
"""

import ctypes
import _ctypes  # dlclose, to unload the library between utterances.
import dataclasses
import os
import threading
import zlib
from typing import List, Optional

import espeakng_loader
import numpy as np
from scipy import signal

OUTPUT_SAMPLE_RATE = 16000

# espeak_AUDIO_OUTPUT: synchronous synthesis delivered to our callback.
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
# Makes espeak_Initialize return an error instead of calling exit().
_INITIALIZE_DONT_EXIT = 0x8000
# espeak_PARAMETER values from speak_lib.h.
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7
# espeak_POSITION_TYPE POS_CHARACTER and the espeakCHARS_UTF8 flag.
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
# Length in ms of the buffer eSpeak fills before each callback.
_BUFFER_MS = 500

# English accents of the shipped data (lang/gmw/en*), as voice names.
# en-shaw is left out: it reads the Shavian alphabet, not Latin text.
ENGLISH_ACCENTS = (
    'en', 'en-us', 'en-gb-scotland', 'en-gb-x-rp', 'en-gb-x-gbclan',
    'en-gb-x-gbcwmd', 'en-us-nyc', 'en-029',
)

# Voice variants (voices/!v) that still sound like speech. Left out:
# whisper/whisperf (no voicing), Demonic, croak, UniRobot, anikaRobot and
# robosoft* (heavy echo, roughness or robotic tone), fast (an unstable test
# setting) and 'Mr serious' (a space in the name).
VOICE_VARIANTS = (
    '', 'm1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8',
    'f1', 'f2', 'f3', 'f4', 'f5',
    'klatt', 'klatt2', 'klatt3', 'klatt4', 'klatt6',
    'Alex', 'Alicia', 'Andy', 'Annie', 'Gene', 'Lee', 'Michael', 'Mike',
    'Reed', 'Storm', 'adam', 'anika', 'announcer', 'aunty', 'belinda',
    'benjamin', 'boris', 'caleb', 'david', 'ed', 'edward', 'grandma',
    'grandpa', 'ian', 'iven', 'john', 'linda', 'max', 'michel', 'norbert',
    'paul', 'quincy', 'rob', 'robert', 'shelby', 'steph', 'travis',
    'victor', 'zac',
)

# Silence trimming: a 10 ms frame is speech when its peak exceeds this
# fraction of the utterance peak; this much audio is kept on each side so
# onsets and final stops are not clipped.
_SILENCE_FRACTION = 0.02
_FRAME_SAMPLES = 160
_KEEP_SILENCE_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class VoiceSettings:
  """Everything that shapes the voice of one utterance.

  Attributes:
    accent: an eSpeak NG English voice name, e.g. 'en-us'.
    variant: a voice variant from voices/!v, e.g. 'm3'; '' for none.
    rate: speaking rate in words per minute (eSpeak accepts 80-450).
    pitch: base pitch, 0-100 (eSpeak default 50).
    pitch_range: pitch range (intonation), 0-100 (default 50).
    word_gap: extra pause between words in units of 10 ms.
  """
  accent: str = 'en-us'
  variant: str = ''
  rate: int = 175
  pitch: int = 50
  pitch_range: int = 50
  word_gap: int = 0

  @property
  def voice_name(self) -> str:
    """Name for espeak_SetVoiceByName, e.g. 'en-us+m3'."""
    return f'{self.accent}+{self.variant}' if self.variant else self.accent


def available_variants(data_path: Optional[str] = None) -> List[str]:
  """Returns the entries of VOICE_VARIANTS present in the eSpeak data.

  Args:
    data_path: eSpeak NG data folder; default: the one espeakng_loader ships.

  Returns:
    Variant names in VOICE_VARIANTS order ('' always included).
  """
  variants_dir = os.path.join(data_path or espeakng_loader.get_data_path(),
                              'voices', '!v')
  present = set(os.listdir(variants_dir)) if os.path.isdir(variants_dir) else ()
  return [v for v in VOICE_VARIANTS if not v or v in present]


def resample_to_16k(samples: np.ndarray, source_rate: int) -> np.ndarray:
  """Resamples int16 audio to 16 kHz with a polyphase anti-aliasing filter.

  Args:
    samples: 1-D int16 samples at `source_rate`.
    source_rate: sample rate of `samples` in Hz.

  Returns:
    1-D int16 samples at OUTPUT_SAMPLE_RATE.
  """
  if source_rate == OUTPUT_SAMPLE_RATE:
    return samples.astype(np.int16)
  divisor = np.gcd(source_rate, OUTPUT_SAMPLE_RATE)
  resampled = signal.resample_poly(samples.astype(np.float64),
                                   OUTPUT_SAMPLE_RATE // divisor,
                                   source_rate // divisor)
  return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def trim_silence(samples: np.ndarray, sample_rate: int) -> np.ndarray:
  """Cuts leading/trailing silence down to `_KEEP_SILENCE_SECONDS`.

  Args:
    samples: 1-D int16 samples.
    sample_rate: their sample rate in Hz.

  Returns:
    The trimmed samples (unchanged if all silent).
  """
  num_frames = len(samples) // _FRAME_SAMPLES
  if num_frames == 0:
    return samples
  frame_peaks = np.abs(
      samples[:num_frames * _FRAME_SAMPLES].astype(np.int32)).reshape(
          num_frames, _FRAME_SAMPLES).max(axis=1)
  voiced = np.nonzero(frame_peaks > _SILENCE_FRACTION * frame_peaks.max())[0]
  if frame_peaks.max() == 0 or voiced.size == 0:
    return samples
  keep = int(_KEEP_SILENCE_SECONDS * sample_rate)
  start = max(0, voiced[0] * _FRAME_SAMPLES - keep)
  end = min(len(samples), (voiced[-1] + 1) * _FRAME_SAMPLES + keep)
  return samples[start:end]


# int t_espeak_callback(short *wav, int numsamples, espeak_EVENT *events)
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short),
                                   ctypes.c_int, ctypes.c_void_p)


_LIBC = ctypes.CDLL(None)  # The C library the process (and eSpeak) uses.
_LIBC.srand.argtypes = [ctypes.c_uint]


class EspeakError(RuntimeError):
  """eSpeak NG could not be loaded or refused a request."""


class EspeakSynthesizer:
  """Synthesizes with libespeak-ng, one freshly loaded library per utterance.

  eSpeak NG keeps state in C globals, some of them function-local statics
  that espeak_Terminate/espeak_Initialize do not reset (e.g. the phase of the
  pitch "flutter" table in wavegen.c). Left alone, the audio of an utterance
  would depend on everything the process synthesized before it, so a corpus
  built by several workers would depend on their scheduling. Each call
  therefore loads the library, initializes it, synthesizes, terminates and
  unloads it (dlclose), which restores every global to its initial value;
  this costs about 3 ms per utterance. Calls in one process are serialized
  by a process-wide lock because the library is process-global. Nothing
  else in the process may hold the library open, or dlclose would not
  unload it; `EspeakSynthesizer.get()` returns the per-process instance.
  """

  _instance = None
  _instance_pid = None
  _instance_lock = threading.Lock()

  @classmethod
  def get(cls) -> 'EspeakSynthesizer':
    """Returns this process's synthesizer (a forked child gets its own)."""
    with cls._instance_lock:
      if cls._instance is None or cls._instance_pid != os.getpid():
        cls._instance = cls()
        cls._instance_pid = os.getpid()
      return cls._instance

  def __init__(self):
    self._library_path = espeakng_loader.get_library_path()
    self._data_path = espeakng_loader.get_data_path()
    self._lock = threading.Lock()
    self._chunks = []
    # Keep a reference: ctypes callbacks are freed with their Python object.
    self._callback = _SYNTH_CALLBACK(self._collect_samples)
    # Loading once up front reports a broken install at construction time.
    with self._lock:
      library = self._load()
      self.native_sample_rate = self._native_rate
      self._unload(library)

  def _load(self) -> ctypes.CDLL:
    """Loads and initializes a fresh copy of the library."""
    try:
      library = ctypes.CDLL(self._library_path)
    except OSError as e:
      raise EspeakError(f'cannot load {self._library_path}: {e}') from e
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int,
                                          ctypes.c_char_p, ctypes.c_int]
    library.espeak_Initialize.restype = ctypes.c_int
    library.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    library.espeak_SetSynthCallback.restype = None
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetVoiceByName.restype = ctypes.c_int
    library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int,
                                            ctypes.c_int]
    library.espeak_SetParameter.restype = ctypes.c_int
    library.espeak_Synth.argtypes = [
        ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    library.espeak_Synth.restype = ctypes.c_int
    library.espeak_Terminate.restype = ctypes.c_int
    library.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    library.espeak_ng_SetRandSeed.restype = None
    self._native_rate = library.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS,
        self._data_path.encode('utf-8'), _INITIALIZE_DONT_EXIT)
    if self._native_rate <= 0:
      self._unload(library)
      raise EspeakError(
          f'espeak_Initialize failed with data path {self._data_path}')
    library.espeak_SetSynthCallback(self._callback)
    return library

  @staticmethod
  def _unload(library: ctypes.CDLL) -> None:
    library.espeak_Terminate()
    _ctypes.dlclose(library._handle)  # pylint: disable=protected-access

  def _collect_samples(self, wav, num_samples, unused_events) -> int:
    if wav and num_samples > 0:
      self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,))
                          .astype(np.int16))
    return 0  # 0: continue synthesis.

  @staticmethod
  def _apply(library: ctypes.CDLL, settings: VoiceSettings) -> None:
    if library.espeak_SetVoiceByName(
        settings.voice_name.encode('utf-8')) != _EE_OK:
      raise EspeakError(f'unknown eSpeak voice {settings.voice_name!r}')
    for parameter, value in ((_PARAM_RATE, settings.rate),
                             (_PARAM_VOLUME, 100),
                             (_PARAM_PITCH, settings.pitch),
                             (_PARAM_RANGE, settings.pitch_range),
                             (_PARAM_WORDGAP, settings.word_gap)):
      if library.espeak_SetParameter(parameter, int(value), 0) != _EE_OK:
        raise EspeakError(f'eSpeak rejected parameter {parameter}={value}')

  def synthesize_native(self, text: str,
                        settings: VoiceSettings) -> np.ndarray:
    """Synthesizes `text` at the library's own rate (no trimming).

    Args:
      text: UTF-8 text to speak.
      settings: voice and prosody.

    Returns:
      1-D int16 samples at `self.native_sample_rate`.
    """
    encoded = text.encode('utf-8') + b'\0'
    # Breathy voices draw noise from a random generator that eSpeak seeds
    # from the clock (and, in some builds, from libc rand()); seed both from
    # the request so the noise is reproducible.
    noise_seed = zlib.crc32(encoded + settings.voice_name.encode('utf-8'))
    with self._lock:
      library = self._load()
      try:
        self._apply(library, settings)
        _LIBC.srand(noise_seed)
        library.espeak_ng_SetRandSeed(noise_seed)
        self._chunks = []
        status = library.espeak_Synth(encoded, len(encoded), 0,
                                      _POS_CHARACTER, 0, _CHARS_UTF8, None,
                                      None)
        chunks, self._chunks = self._chunks, []
      finally:
        self._unload(library)
    if status != _EE_OK:
      raise EspeakError(f'espeak_Synth failed ({status}) for {text!r}')
    if not chunks:
      return np.zeros([0], np.int16)
    return np.concatenate(chunks)

  def synthesize(self, text: str, settings: VoiceSettings) -> np.ndarray:
    """Synthesizes `text` as 16 kHz mono int16 with trimmed silences.

    Args:
      text: UTF-8 text to speak.
      settings: voice and prosody.

    Returns:
      1-D int16 samples at OUTPUT_SAMPLE_RATE.
    """
    native = self.synthesize_native(text, settings)
    return trim_silence(resample_to_16k(native, self.native_sample_rate),
                        OUTPUT_SAMPLE_RATE)
