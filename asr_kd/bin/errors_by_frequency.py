r"""Word errors grouped by how often each reference word occurs in training.

  python -m asr_kd.bin.errors_by_frequency \
      --hypotheses=demo_run/teacher/test_hypotheses.jsonl \
      --train_corpus=demo_run/corpus/train [--format=librispeech] \
      [--bins=0,2,10,50,500] [--output=table.json]

`--hypotheses` is the JSON-lines file of `asr_kd.bin.evaluate --output`
(`reference` and `hypothesis` per utterance; repeat the flag to compare
several models on the same references). `--train_corpus` is read with the
TFRecord converter's readers (`--format` librispeech or manifest), so the
counts come from the transcripts a model was trained on, normalized as
training normalizes them.

Each reference word is aligned to the hypothesis by a minimum edit distance
alignment (substitution, deletion, insertion all cost 1); a reference word
is an error unless it is aligned to an identical hypothesis word. A model
that has not learned the spelling of rarely seen words shows it here: the
error share of the low-count rows is high while frequent words are right.
"""

import collections
import json
import sys
from typing import Dict, List, Sequence

from absl import app
from absl import flags

from asr_kd.corpus_io import corpus_readers
from asr_kd.text import normalization


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_multi_string('hypotheses', None, 'evaluate --output JSONL '
                            'file(s).', flag_values=flag_values)
  flags.DEFINE_string('train_corpus', None, 'Training corpus folder '
                      '(librispeech) or manifest JSONL.',
                      flag_values=flag_values)
  flags.DEFINE_enum('format', 'librispeech', ['librispeech', 'manifest'],
                    'Layout of --train_corpus.', flag_values=flag_values)
  flags.DEFINE_list('bins', ['0', '2', '10', '50', '500'], 'Upper bounds '
                    '(inclusive) of the training-count rows; a last row '
                    'holds the counts above the last bound.',
                    flag_values=flag_values)
  flags.DEFINE_string('output', None, 'Optional JSON file for the table.',
                      flag_values=flag_values)
  flags.mark_flags_as_required(['hypotheses', 'train_corpus'],
                               flag_values=flag_values)


def correct_reference_words(reference: Sequence[str],
                            hypothesis: Sequence[str]) -> List[bool]:
  """Per reference word: matched by an identical word in an optimal alignment.

  Among optimal alignments the backtrace (from the end) takes the diagonal
  step (match or substitution) whenever it is optimal, then a deletion.

  Args:
    reference: reference words.
    hypothesis: hypothesis words.

  Returns:
    One bool per reference word.
  """
  rows, cols = len(reference), len(hypothesis)
  cost = [[0] * (cols + 1) for _ in range(rows + 1)]
  for i in range(rows + 1):
    cost[i][0] = i
  for j in range(cols + 1):
    cost[0][j] = j
  for i in range(1, rows + 1):
    for j in range(1, cols + 1):
      diagonal = cost[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1])
      cost[i][j] = min(diagonal, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
  correct = [False] * rows
  i, j = rows, cols
  while i > 0 and j > 0:
    same = reference[i - 1] == hypothesis[j - 1]
    if cost[i][j] == cost[i - 1][j - 1] + (not same):
      correct[i - 1] = same
      i, j = i - 1, j - 1
    elif cost[i][j] == cost[i - 1][j] + 1:
      i -= 1
    else:
      j -= 1
  return correct


def training_word_counts(utterances) -> collections.Counter:
  """Normalized word counts over the labeled, accepted utterances."""
  counts = collections.Counter()
  for utterance in utterances:
    if utterance.labeled and not utterance.reject_reason:
      counts.update(
          normalization.normalize_text(utterance.transcript).split())
  return counts


def row_labels(bounds: Sequence[int]) -> List[str]:
  """'0', '1-2', ..., '> 500' for upper bounds [0, 2, ..., 500]."""
  labels, low = [], 0
  for bound in bounds:
    labels.append(str(bound) if bound == low else f'{low}-{bound}')
    low = bound + 1
  return labels + [f'> {bounds[-1]}']


def error_table(records: Sequence[dict], counts: collections.Counter,
                bounds: Sequence[int]) -> List[Dict[str, object]]:
  """Rows of {train_count, words, wrong, wrong_rate, error_share}.

  Args:
    records: evaluate --output records (reference, hypothesis).
    counts: training word counts.
    bounds: increasing inclusive upper bounds of the count rows.
  """
  words = [0] * (len(bounds) + 1)
  wrong = [0] * (len(bounds) + 1)
  for record in records:
    reference = normalization.normalize_text(record['reference']).split()
    hypothesis = normalization.normalize_text(record['hypothesis']).split()
    for word, correct in zip(reference,
                             correct_reference_words(reference, hypothesis)):
      row = sum(counts[word] > bound for bound in bounds)
      words[row] += 1
      wrong[row] += not correct
  total_wrong = max(1, sum(wrong))
  return [{'train_count': label, 'words': words[row], 'wrong': wrong[row],
           'wrong_rate': wrong[row] / words[row] if words[row] else 0.0,
           'error_share': wrong[row] / total_wrong}
          for row, label in enumerate(row_labels(bounds))]


def _read_jsonl(path: str) -> List[dict]:
  """Records of an evaluate --output file; exits with a message if unusable."""
  try:
    with open(path, encoding='utf-8') as jsonl_file:
      records = [json.loads(line) for line in jsonl_file if line.strip()]
  except (OSError, json.JSONDecodeError) as error:
    sys.exit(f'errors_by_frequency: cannot read {path}: {error}')
  if not records or any('reference' not in record or 'hypothesis' not in record
                        for record in records):
    sys.exit(f'errors_by_frequency: {path} has no evaluate --output records '
             '(reference and hypothesis per line).')
  return records


def run(flag_values: flags.FlagValues = flags.FLAGS) -> int:
  """Runs the binary with parsed flags; returns the exit code."""
  try:
    bounds = [int(bound) for bound in flag_values.bins]
  except ValueError:
    bounds = []
  if not bounds or bounds[0] < 0 or any(
      high <= low for low, high in zip(bounds, bounds[1:])):
    sys.exit(f'errors_by_frequency: --bins must be increasing counts >= 0, '
             f'got {",".join(flag_values.bins)}')
  try:
    utterances = corpus_readers.read_corpus(flag_values.train_corpus,
                                            flag_values.format)
  except corpus_readers.CorpusError as error:
    sys.exit(f'errors_by_frequency: {error}')
  counts = training_word_counts(utterances)
  if not counts:
    sys.exit(f'errors_by_frequency: no labeled utterances in '
             f'{flag_values.train_corpus}')
  tables = {}
  for path in flag_values.hypotheses:
    tables[path] = error_table(_read_jsonl(path), counts, bounds)
    print(path)
    print(f'{"train count":>12} {"words":>7} {"wrong":>7} {"share":>7}')
    for row in tables[path]:
      print(f'{row["train_count"]:>12} {row["words"]:7d} '
            f'{100 * row["wrong_rate"]:6.1f}% {100 * row["error_share"]:6.1f}%')
  if flag_values.output:
    with open(flag_values.output, 'w', encoding='utf-8') as output_file:
      json.dump(tables, output_file, indent=2)
  return 0


def main(argv):
  if len(argv) > 1:
    sys.exit(f'errors_by_frequency: unexpected arguments {argv[1:]}')
  return run()


if __name__ == '__main__':
  define_flags()
  app.run(main)
