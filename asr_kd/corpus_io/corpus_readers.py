"""Turns the three supported corpus layouts into utterance descriptions.

Readers only look at file names and transcripts; they never decode audio
(that happens in the Beam pipeline, in parallel). Problems a reader can see
on its own (an audio file without a transcript line, an empty transcript, a
duplicate id, a malformed manifest line, a line that is not UTF-8) become
descriptions that carry a `reject_reason`, so the converter's counts
reconcile: inputs = written + rejected.

Formats:
  librispeech: <root>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt with
    lines "<utterance_id> <TEXT>" next to <utterance_id>.flac files.
  manifest: JSON lines with "audio_filepath" (relative to the manifest's
    folder, or absolute), "text", and optional "duration", "speaker", "id".
  audio_dir: a folder tree of unlabeled .wav/.flac/.ogg files.
"""

import dataclasses
import json
import os
from typing import Dict, Iterable, List, Optional, Tuple, Union

FORMATS = ('librispeech', 'manifest', 'audio_dir')
AUDIO_EXTENSIONS = ('.flac', '.wav', '.ogg')
_TRANSCRIPT_SUFFIX = '.trans.txt'

# Reader-level reject reasons (decode-level ones live in audio_decoding).
MISSING_TRANSCRIPT = 'missing_transcript'  # Audio with no transcript/text.
MISSING_AUDIO = 'missing_audio'  # LibriSpeech transcript line, no audio file.
EMPTY_TRANSCRIPT = 'empty_transcript'  # Transcript present but blank.
DUPLICATE_ID = 'duplicate_id'  # Same utterance id seen before.
BAD_MANIFEST_LINE = 'bad_manifest_line'  # Not JSON / no audio_filepath.
INVALID_UTF8 = 'invalid_utf8'  # Transcript or manifest line is not UTF-8.


class CorpusError(Exception):
  """The corpus as a whole cannot be read (bad path, wrong layout)."""


@dataclasses.dataclass(frozen=True)
class Utterance:
  """One input of the converter.

  Attributes:
    utterance_id: unique id (see each reader for how it is formed).
    audio_path: path of the audio file ('' when there is none to name).
    transcript: reference text, '' for unlabeled audio.
    speaker: speaker id, '' when unknown.
    labeled: whether the corpus format carries transcripts.
    reject_reason: '' for a good input, else why the reader rejected it.
    reject_detail: human-readable explanation of the reject.
  """
  utterance_id: str
  audio_path: str
  transcript: str = ''
  speaker: str = ''
  labeled: bool = True
  reject_reason: str = ''
  reject_detail: str = ''


def _rejected(utterance_id: str, audio_path: str, reason: str,
              detail: str) -> Utterance:
  return Utterance(utterance_id, audio_path, reject_reason=reason,
                   reject_detail=detail)


def _read_lines(path: str
               ) -> Iterable[Tuple[int, Union[str, UnicodeDecodeError]]]:
  """Yields (line number, text) per line; an undecodable line yields its
  UnicodeDecodeError instead, so one bad line costs one input, not the
  whole file.

  Raises:
    OSError: the file cannot be read.
  """
  with open(path, 'rb') as text_file:
    for line_number, line in enumerate(text_file, start=1):
      try:
        yield line_number, line.decode('utf-8')
      except UnicodeDecodeError as error:
        yield line_number, error


def _invalid_utf8_detail(error: UnicodeDecodeError) -> str:
  return (f'invalid UTF-8 (byte 0x{error.object[error.start]:02x} at '
          f'column {error.start + 1})')


def _walk_files(root: str) -> Iterable[str]:
  """Yields every file path under root in a stable (sorted) order."""
  for directory, subdirectories, file_names in os.walk(root):
    subdirectories.sort()
    for file_name in sorted(file_names):
      yield os.path.join(directory, file_name)


def _strip_audio_extension(path: str) -> Optional[str]:
  """Returns path without its audio extension, or None if not audio."""
  stem, extension = os.path.splitext(path)
  return stem if extension.lower() in AUDIO_EXTENSIONS else None


def _mark_duplicates(utterances: List[Utterance]) -> List[Utterance]:
  """Rejects every repeat of an already seen utterance id (first one wins)."""
  seen = set()
  result = []
  for utterance in utterances:
    if not utterance.reject_reason and utterance.utterance_id in seen:
      utterance = _rejected(
          utterance.utterance_id, utterance.audio_path, DUPLICATE_ID,
          f'utterance id {utterance.utterance_id!r} already used')
    elif not utterance.reject_reason:
      seen.add(utterance.utterance_id)
    result.append(utterance)
  return result


def read_librispeech(root: str) -> List[Utterance]:
  """Reads a LibriSpeech-layout tree.

  Every transcript line becomes an utterance whose audio is `<id>.flac`
  (or `.wav`/`.ogg`) next to the transcript file. A line with no such file
  is rejected as `missing_audio`, one with no text as `empty_transcript`,
  one that is not UTF-8 as `invalid_utf8` (path `<transcript file>:<line>`),
  and audio files that no line names as `missing_transcript`.

  Args:
    root: corpus root, e.g. .../LibriSpeech/dev-clean.

  Returns:
    Utterances in a stable order (transcript files sorted by path).

  Raises:
    CorpusError: root is not a directory or holds no transcript files.
  """
  if not os.path.isdir(root):
    raise CorpusError(f'--input {root!r} is not a directory')
  transcript_files = []
  audio_by_stem: Dict[str, str] = {}
  for path in _walk_files(root):
    if path.endswith(_TRANSCRIPT_SUFFIX):
      transcript_files.append(path)
    else:
      stem = _strip_audio_extension(path)
      if stem is not None:
        audio_by_stem.setdefault(stem, path)
  if not transcript_files:
    raise CorpusError(f'no *{_TRANSCRIPT_SUFFIX} files under {root!r}; is '
                      'this a LibriSpeech-layout folder?')

  utterances = []
  transcribed_stems = set()
  for transcript_path in transcript_files:
    directory = os.path.dirname(transcript_path)
    # <speaker>-<chapter>.trans.txt names the speaker for the whole chapter.
    speaker = os.path.basename(transcript_path)[:-len(_TRANSCRIPT_SUFFIX)]
    speaker = speaker.split('-')[0]
    for line_number, line in _read_lines(transcript_path):
      where = f'{transcript_path}:{line_number}'
      if isinstance(line, UnicodeDecodeError):
        # The id still names the line's audio file (decoded as os.walk
        # decodes file names), so that file is not also counted as
        # missing_transcript.
        fields = line.object.split(maxsplit=1)
        if fields:
          utterance_id = os.fsdecode(fields[0])
          transcribed_stems.add(os.path.join(directory, utterance_id))
          utterances.append(_rejected(
              utterance_id, where, INVALID_UTF8,
              f'line for {utterance_id}: {_invalid_utf8_detail(line)}'))
        continue
      fields = line.strip().split(maxsplit=1)
      if not fields:
        continue  # Blank lines carry no utterance.
      utterance_id = fields[0]
      stem = os.path.join(directory, utterance_id)
      transcribed_stems.add(stem)
      audio_path = audio_by_stem.get(stem)
      text = fields[1].strip() if len(fields) > 1 else ''
      if audio_path is None:
        utterances.append(_rejected(
            utterance_id, stem + '.flac', MISSING_AUDIO,
            f'{where} names {utterance_id} but no audio file exists'))
      elif not text:
        utterances.append(_rejected(
            utterance_id, audio_path, EMPTY_TRANSCRIPT,
            f'line for {utterance_id} in {where} has no text'))
      else:
        utterances.append(Utterance(utterance_id, audio_path, text, speaker))
  for stem, audio_path in sorted(audio_by_stem.items()):
    if stem not in transcribed_stems:
      utterances.append(_rejected(
          os.path.basename(stem), audio_path, MISSING_TRANSCRIPT,
          'no transcript line names this file'))
  return _mark_duplicates(utterances)


def _manifest_id(audio_path: str, manifest_dir: str) -> str:
  """A stable id: the path (relative to the manifest if inside it), no ext."""
  relative = os.path.relpath(audio_path, manifest_dir)
  if relative.startswith(os.pardir):
    relative = audio_path.lstrip(os.sep)
  return os.path.splitext(relative)[0]


def _parse_manifest_line(line: str, line_number: int, manifest_path: str,
                         manifest_dir: str) -> Utterance:
  """Turns one JSON line of a manifest into an utterance (maybe rejected)."""
  where = f'{manifest_path}:{line_number}'
  try:
    entry = json.loads(line)
  except json.JSONDecodeError as error:
    return _rejected(where, where, BAD_MANIFEST_LINE, f'invalid JSON: {error}')
  if not isinstance(entry, dict) or not entry.get('audio_filepath'):
    return _rejected(where, where, BAD_MANIFEST_LINE,
                     'entry has no "audio_filepath"')
  audio_path = os.path.join(manifest_dir, str(entry['audio_filepath']))
  utterance_id = str(entry.get('id') or _manifest_id(audio_path, manifest_dir))
  if 'text' not in entry or entry['text'] is None:
    return _rejected(utterance_id, audio_path, MISSING_TRANSCRIPT,
                     f'{where} has no "text"')
  text = str(entry['text']).strip()
  if not text:
    return _rejected(utterance_id, audio_path, EMPTY_TRANSCRIPT,
                     f'{where} has an empty "text"')
  return Utterance(utterance_id, audio_path, text,
                   str(entry.get('speaker', '') or ''))


def read_manifest(manifest_path: str) -> List[Utterance]:
  """Reads a JSON-lines manifest (NeMo style).

  The optional "duration" field is not trusted: the converter measures the
  decoded audio. A line that is not UTF-8 is rejected as `invalid_utf8`
  (path `<manifest>:<line>`); the other lines are still read. Ids are the
  "id" field when present, else the audio path relative to the manifest's
  folder (absolute path for files outside it) without its extension.

  Args:
    manifest_path: path of the .jsonl/.json manifest.

  Returns:
    Utterances in manifest order.

  Raises:
    CorpusError: the manifest cannot be read or is empty.
  """
  if not os.path.isfile(manifest_path):
    raise CorpusError(f'--input {manifest_path!r} is not a manifest file')
  manifest_dir = os.path.dirname(os.path.abspath(manifest_path))
  utterances = []
  try:
    for line_number, line in _read_lines(manifest_path):
      if isinstance(line, UnicodeDecodeError):
        where = f'{manifest_path}:{line_number}'
        utterances.append(_rejected(where, where, INVALID_UTF8,
                                    _invalid_utf8_detail(line)))
      elif line.strip():
        utterances.append(_parse_manifest_line(line, line_number,
                                               manifest_path, manifest_dir))
  except OSError as error:
    raise CorpusError(f'cannot read manifest {manifest_path!r}: {error}')
  if not utterances:
    raise CorpusError(f'manifest {manifest_path!r} has no entries')
  return _mark_duplicates(utterances)


def read_audio_dir(root: str) -> List[Utterance]:
  """Lists unlabeled audio files (for pseudo-labeling).

  Args:
    root: folder searched recursively for .wav/.flac/.ogg files.

  Returns:
    Unlabeled utterances; the id is the path relative to root without its
    extension (so 'a/b.wav' and 'a/b.flac' collide and the second is
    rejected as a duplicate).

  Raises:
    CorpusError: root is not a directory or holds no audio files.
  """
  if not os.path.isdir(root):
    raise CorpusError(f'--input {root!r} is not a directory')
  utterances = []
  for path in _walk_files(root):
    stem = _strip_audio_extension(path)
    if stem is not None:
      utterances.append(Utterance(os.path.relpath(stem, root), path,
                                  labeled=False))
  if not utterances:
    raise CorpusError(f'no {"/".join(AUDIO_EXTENSIONS)} files under {root!r}')
  return _mark_duplicates(utterances)


def read_corpus(input_path: str, corpus_format: str) -> List[Utterance]:
  """Dispatches to the reader for `corpus_format` (one of FORMATS)."""
  readers = {
      'librispeech': read_librispeech,
      'manifest': read_manifest,
      'audio_dir': read_audio_dir,
  }
  if corpus_format not in readers:
    raise CorpusError(f'unknown --format {corpus_format!r}; expected one of '
                      f'{", ".join(FORMATS)}')
  return readers[corpus_format](input_path)
