r"""WER of a demo-corpus split per synthesizer and per voice.

  python -m tfrecords_tools.wer_by_voice \
      --hypotheses=demo_run/teacher/test_hypotheses.jsonl \
      --corpus_info=demo_run/corpus/corpus_info.json [--by_voice] \
      [--output=table.json]

`--hypotheses` is the JSON-lines file of `asr_kd.bin.evaluate --output`
(`utterance_id`, `word_errors` and `reference_words` per utterance);
`--corpus_info` is the corpus_info.json of `make_demo_corpus`, whose
`speakers` name each speaker's synthesizer and voice. An utterance's
speaker is the first field of its id. Prints a markdown table: one row per
synthesizer and, with --by_voice, one per voice (eSpeak NG: accent+variant;
Flite: the voice), each with utterances, reference words, word errors and
WER.
"""

import collections
import json
import sys
from typing import Dict, List, Mapping, Sequence

from absl import app
from absl import flags


class WerByVoiceError(Exception):
  pass


def voice_of(speaker: Mapping[str, object]) -> str:
  """'espeak:<accent>[+<variant>]' or 'flite:<voice>'."""
  if speaker.get('synthesizer', 'espeak') == 'flite':
    return f'flite:{speaker["flite_voice"]}'
  variant = speaker['variant']
  return f'espeak:{speaker["accent"]}' + (f'+{variant}' if variant else '')


def group_errors(utterances: Sequence[Mapping[str, object]],
                 speakers: Mapping[str, Mapping[str, object]],
                 by_voice: bool = False) -> List[Dict[str, object]]:
  """Rows of (group, utterances, reference words, word errors, WER).

  Args:
    utterances: evaluate's JSON lines.
    speakers: corpus_info.json's `speakers` ({speaker id: speaker}).
    by_voice: add a row per voice.

  Returns:
    One row per synthesizer, then (by_voice) one per voice, each sorted by
    name.

  Raises:
    WerByVoiceError: for an utterance whose speaker the corpus lacks.
  """
  totals = collections.defaultdict(lambda: [0, 0, 0])
  for utterance in utterances:
    speaker_id = str(utterance['utterance_id']).split('-')[0]
    if speaker_id not in speakers:
      raise WerByVoiceError(f'utterance {utterance["utterance_id"]}: '
                            f'speaker {speaker_id} is not in the corpus info')
    speaker = speakers[speaker_id]
    groups = [speaker.get('synthesizer', 'espeak')]
    if by_voice:
      groups.append(voice_of(speaker))
    for group in groups:
      total = totals[group]
      total[0] += 1
      total[1] += int(utterance['reference_words'])
      total[2] += int(utterance['word_errors'])
  synthesizers = sorted(group for group in totals if ':' not in group)
  voices = sorted(group for group in totals if ':' in group)
  return [{'group': group, 'utterances': totals[group][0],
           'reference_words': totals[group][1],
           'word_errors': totals[group][2],
           'wer': totals[group][2] / max(totals[group][1], 1)}
          for group in synthesizers + voices]


def markdown(rows: Sequence[Mapping[str, object]]) -> str:
  lines = ['| group | utterances | words | word errors | WER |',
           '|---|---|---|---|---|']
  lines += [f'| {row["group"]} | {row["utterances"]} | '
            f'{row["reference_words"]:,} | {row["word_errors"]:,} | '
            f'{100 * row["wer"]:.2f}% |' for row in rows]
  return '\n'.join(lines)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string('hypotheses', None, 'evaluate --output JSONL file.',
                      flag_values=flag_values)
  flags.DEFINE_string('corpus_info', None, 'make_demo_corpus\'s '
                      'corpus_info.json.', flag_values=flag_values)
  flags.DEFINE_bool('by_voice', False, 'Add a row per voice.',
                    flag_values=flag_values)
  flags.DEFINE_string('output', None, 'Also write the rows as JSON here.',
                      flag_values=flag_values)


def main(argv):
  del argv
  flag_values = flags.FLAGS
  if not flag_values.hypotheses or not flag_values.corpus_info:
    sys.exit('wer_by_voice: --hypotheses and --corpus_info are required')
  try:
    with open(flag_values.corpus_info, encoding='utf-8') as info_file:
      speakers = json.load(info_file)['speakers']
    with open(flag_values.hypotheses, encoding='utf-8') as lines:
      utterances = [json.loads(line) for line in lines if line.strip()]
    rows = group_errors(utterances, speakers, flag_values.by_voice)
  except (OSError, KeyError, ValueError, WerByVoiceError) as error:
    sys.exit(f'wer_by_voice: {type(error).__name__}: {error}')
  print(markdown(rows))
  if flag_values.output:
    with open(flag_values.output, 'w', encoding='utf-8') as output:
      json.dump(rows, output, indent=1)


if __name__ == '__main__':
  define_flags()
  app.run(main)
