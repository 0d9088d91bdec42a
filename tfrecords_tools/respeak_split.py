r"""Speaks a labeled split's sentences again with another synthesizer.

Usage:
  python -m tfrecords_tools.respeak_split --input=demo_run/corpus/ood \
      --output_dir=demo_run/corpus_flite/ood_flite \
      [--synthesizer=flite --voices=slt,rms,awb,kal16 --per_voice=100 \
       --seed=0 --overwrite]

--synthesizer is `flite` (Debian's CMU Flite; default voices slt, rms, awb,
kal16) or `festival` (the Festival Speech Synthesis System; voices ked,
kal).

Reads the transcripts of a LibriSpeech-layout split
(<input>/<speaker>/<chapter>/*.trans.txt), draws --per_voice sentences for
each voice (seeded; no sentence twice) and writes them in the same layout:
speaker 900 + the voice's index, chapter 1, 16 kHz FLAC, the input's
transcripts, and respeak_info.json (input, synthesizer and its version,
voices, counts, seed). The text is the input split's and only the
synthesizer differs, so a model's WER here against its WER on the input
split measures how much of what it learned belongs to its training
synthesizers' voices rather than to speech (docs/demo_corpus.md, "Another
synthesizer").
"""

import glob
import json
import os
import random
import shutil
import sys
from typing import List, Sequence, Tuple

from absl import app
from absl import flags
import soundfile
import tqdm

from tfrecords_tools import festival_synth
from tfrecords_tools import flite_synth

INFO_FILE = 'respeak_info.json'
# Each has VOICES, check_voices(voices), speak(text, voice) and version().
SYNTHESIZERS = {'flite': flite_synth, 'festival': festival_synth}
SYNTHESIZER_ERRORS = (flite_synth.FliteError, festival_synth.FestivalError)
FIRST_SPEAKER_ID = 900
CHAPTER = 1

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('input', None, 'LibriSpeech-layout split whose '
                      'sentences are spoken (e.g. demo_run/corpus/ood).')
  flags.DEFINE_string('output_dir', None, 'Folder of the new split.')
  flags.DEFINE_enum('synthesizer', 'flite', sorted(SYNTHESIZERS),
                    'The synthesizer that speaks the sentences.')
  flags.DEFINE_list('voices', None, 'Its voices, one speaker each (default: '
                    'all of them: flite slt,rms,awb,kal16; festival ked,kal).')
  flags.DEFINE_integer('per_voice', 100, 'Utterances per voice.')
  flags.DEFINE_integer('seed', 0, 'Seed of the sentence draw.')
  flags.DEFINE_bool('overwrite', False, 'Replace an earlier output of this '
                    'tool in --output_dir.')


class RespeakError(Exception):
  pass


def read_transcripts(split_dir: str) -> List[Tuple[str, str]]:
  """(utterance id, transcript) of every *.trans.txt line, sorted by id."""
  paths = glob.glob(os.path.join(split_dir, '*', '*', '*.trans.txt'))
  if not paths:
    raise RespeakError(f'no <speaker>/<chapter>/*.trans.txt under '
                       f'{split_dir}: not a LibriSpeech-layout split')
  lines = []
  for path in paths:
    with open(path, encoding='utf-8') as transcript_file:
      for line in transcript_file:
        if line.strip():
          utterance_id, _, text = line.strip().partition(' ')
          lines.append((utterance_id, text))
  return sorted(lines)


def draw_sentences(transcripts: Sequence[Tuple[str, str]],
                   voices: Sequence[str], per_voice: int,
                   seed: int) -> List[List[str]]:
  """`per_voice` distinct transcripts for each voice, none used twice."""
  sentences = sorted({text for _, text in transcripts if text})
  needed = per_voice * len(voices)
  if needed > len(sentences):
    raise RespeakError(f'{len(voices)} voices x {per_voice} utterances need '
                       f'{needed} distinct sentences; the input has '
                       f'{len(sentences)}')
  random.Random(seed).shuffle(sentences)
  return [sentences[index * per_voice:(index + 1) * per_voice]
          for index in range(len(voices))]


def _prepare_output_dir(output_dir: str, overwrite: bool):
  if os.path.isdir(output_dir) and os.listdir(output_dir):
    if not os.path.exists(os.path.join(output_dir, INFO_FILE)):
      raise RespeakError(f'--output_dir {output_dir} is not empty and was '
                         'not written by this tool; pick another folder')
    if not overwrite:
      raise RespeakError(f'--output_dir {output_dir} holds an earlier '
                         'split; pass --overwrite to replace it')
    shutil.rmtree(output_dir)
  os.makedirs(output_dir, exist_ok=True)


def respeak(input_dir: str, output_dir: str, voices: Sequence[str],
            per_voice: int, seed: int, overwrite: bool = False,
            synthesizer: str = 'flite') -> dict:
  """Writes the split (module docstring) and returns its info."""
  if synthesizer not in SYNTHESIZERS:
    raise RespeakError(f'unknown synthesizer {synthesizer!r}; one of '
                       f'{sorted(SYNTHESIZERS)}')
  synth = SYNTHESIZERS[synthesizer]
  synth.check_voices(voices)
  drawn = draw_sentences(read_transcripts(input_dir), voices, per_voice,
                         seed)
  _prepare_output_dir(output_dir, overwrite)
  seconds = {}
  with tqdm.tqdm(total=per_voice * len(voices), unit='utt',
                 desc=synthesizer) as progress:
    for index, (voice, sentences) in enumerate(zip(voices, drawn)):
      speaker = FIRST_SPEAKER_ID + index
      folder = os.path.join(output_dir, str(speaker), str(CHAPTER))
      os.makedirs(folder)
      lines = []
      samples_written = 0
      for number, text in enumerate(sentences):
        utterance_id = f'{speaker}-{CHAPTER}-{number:04d}'
        samples = synth.speak(text, voice)
        soundfile.write(os.path.join(folder, f'{utterance_id}.flac'),
                        samples, synth.OUTPUT_SAMPLE_RATE,
                        subtype='PCM_16', format='FLAC')
        samples_written += samples.shape[0]
        lines.append(f'{utterance_id} {text}\n')
        progress.update()
      with open(os.path.join(folder, f'{speaker}-{CHAPTER}.trans.txt'), 'w',
                encoding='utf-8') as transcript_file:
        transcript_file.writelines(lines)
      seconds[voice] = samples_written / synth.OUTPUT_SAMPLE_RATE
  info = {
      'input': input_dir, 'seed': seed, 'per_voice': per_voice,
      'synthesizer': synthesizer, 'synthesizer_version': synth.version(),
      'speakers': {str(FIRST_SPEAKER_ID + index): voice
                   for index, voice in enumerate(voices)},
      'seconds_per_voice': seconds,
  }
  with open(os.path.join(output_dir, INFO_FILE), 'w') as info_file:
    json.dump(info, info_file, indent=1)
  return info


def main(argv):
  del argv
  if not FLAGS.input or not FLAGS.output_dir:
    raise app.UsageError('--input and --output_dir are required')
  if FLAGS.per_voice < 1:
    raise app.UsageError('--per_voice must be at least 1')
  try:
    info = respeak(FLAGS.input, FLAGS.output_dir,
                   FLAGS.voices or SYNTHESIZERS[FLAGS.synthesizer].VOICES,
                   FLAGS.per_voice, FLAGS.seed, FLAGS.overwrite,
                   FLAGS.synthesizer)
  except (RespeakError,) + SYNTHESIZER_ERRORS as error:
    sys.exit(f'respeak_split: {error}')
  print(json.dumps(info, indent=1))


if __name__ == '__main__':
  define_flags()
  app.run(main)
