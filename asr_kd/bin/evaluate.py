r"""Word error rate of a trained RNN-T model on TFRecords or a manifest.

  python -m asr_kd.bin.evaluate --model_dir=demo_run/teacher \
      --tfrecords='demo_run/tfrecords/test-*' --decoder=greedy \
      --output=demo_run/teacher/test_hypotheses.jsonl

  python -m asr_kd.bin.evaluate --model_dir=MODEL_DIR --manifest=test.jsonl \
      --decoder=beam --beam_size=8 --summary_output=summary.json

References (the records' `transcript`, or the manifest's "text") are
normalized with asr_kd.text.normalization, the same rule as the training
labels. Prints utterances, WER, CER, substitutions/insertions/deletions and
the real-time factor; the last line is always
`WER 12.34% (N utterances, M words)`. See docs/evaluation.md.
"""

import dataclasses
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from asr_kd.corpus_io import corpus_readers
from asr_kd.dataloaders import audio_decoding
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.decoding import decoder
from asr_kd.decoding import wer as wer_lib
from asr_kd.inference import model_loader
from asr_kd.inference import recognizer as recognizer_lib
from asr_kd.text import normalization

FLAGS = flags.FLAGS
_PROGRESS_EVERY_SECONDS = 10.0


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (only when run as one)."""
  model_loader.define_model_flags(flag_values)
  flags.DEFINE_string('tfrecords', None, 'Comma-separated TFRecord globs.',
                      flag_values=flag_values)
  flags.DEFINE_string('manifest', None, 'JSON-lines manifest with '
                      '"audio_filepath" and "text".', flag_values=flag_values)
  flags.DEFINE_enum('decoder', 'greedy', list(decoder.METHODS),
                    'Decoding method.', flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 8, 'Beam size for --decoder=beam.',
                       flag_values=flag_values)
  flags.DEFINE_integer('max_symbols_per_frame', None, 'Greedy: most tokens '
                       'per frame (default: the training config).',
                       flag_values=flag_values)
  flags.DEFINE_integer('batch_size', 16, 'Utterances decoded together.',
                       flag_values=flag_values)
  flags.DEFINE_integer('limit', None, 'Evaluate only the first N utterances.',
                       flag_values=flag_values)
  flags.DEFINE_string('output', None, 'JSONL file for per-utterance '
                      'hypotheses.', flag_values=flag_values)
  flags.DEFINE_string('summary_output', None, 'JSON file for the summary '
                      '(it is printed either way).', flag_values=flag_values)


@dataclasses.dataclass
class EvalUtterance:
  """One utterance to score: id, normalized reference, 16 kHz int16 audio."""
  utterance_id: str
  reference: str
  samples: np.ndarray


@dataclasses.dataclass
class Skipped:
  """An input that could not be evaluated, and why."""
  utterance_id: str
  reason: str


def _limited(limit: Optional[int]) -> Optional[int]:
  return None if limit is None or limit < 0 else limit


def read_tfrecords(input_path: str, limit: Optional[int] = None
                  ) -> List[EvalUtterance]:
  """Reads utterances from TFRecords of the project schema.

  Args:
    input_path: comma-separated globs (plain or GZIP files).
    limit: keep only the first N records (files in sorted order).

  Returns:
    Utterances with normalized references.

  Raises:
    ValueError: a glob matches nothing.
  """
  files = input_pipeline.expand_input_path(input_path)
  dataset = input_pipeline.read_records(files, deterministic=True).map(
      tfrecord_schema.parse_example)
  if _limited(limit) is not None:
    dataset = dataset.take(limit)
  utterances = []
  for example in dataset.as_numpy_iterator():
    utterances.append(EvalUtterance(
        example[tfrecord_schema.UTTERANCE_ID].decode('utf-8'),
        example[tfrecord_schema.TRANSCRIPT].decode('utf-8'),
        example['audio']))
  return _normalize_references(utterances)


def read_manifest(manifest_path: str, limit: Optional[int] = None
                 ) -> Tuple[List[EvalUtterance], List[Skipped]]:
  """Reads and decodes the audio of a JSON-lines manifest.

  Entries the reader rejects (bad line, no text) and audio that cannot be
  decoded are skipped and returned with their reason; the others are
  resampled / downmixed to 16 kHz mono like transcription input.

  Args:
    manifest_path: the manifest; "audio_filepath" is relative to its folder
      or absolute.
    limit: consider only the first N entries.

  Returns:
    (utterances, skipped).

  Raises:
    corpus_readers.CorpusError: the manifest is missing or empty.
  """
  entries = corpus_readers.read_manifest(manifest_path)
  if _limited(limit) is not None:
    entries = entries[:limit]
  utterances, skipped = [], []
  for entry in entries:
    if entry.reject_reason:
      skipped.append(Skipped(entry.utterance_id, f'{entry.reject_reason}: '
                             f'{entry.reject_detail}'))
      continue
    try:
      samples = audio_decoding.load_mono_16k(entry.audio_path)
    except audio_decoding.AudioDecodeError as error:
      skipped.append(Skipped(entry.utterance_id, str(error)))
      continue
    utterances.append(EvalUtterance(entry.utterance_id, entry.transcript,
                                    samples))
  return _normalize_references(utterances), skipped


def _normalize_references(utterances: List[EvalUtterance]
                         ) -> List[EvalUtterance]:
  if not utterances:
    return utterances
  normalized = normalization.normalize(
      tf.constant([u.reference for u in utterances], tf.string)).numpy()
  for utterance, reference in zip(utterances, normalized):
    utterance.reference = reference.decode('utf-8')
  return utterances


def error_breakdown(hypotheses: Sequence[str], references: Sequence[str]
                   ) -> Optional[Dict[str, int]]:
  """Substitutions, insertions and deletions from jiwer's alignment.

  Returns None when jiwer is not installed. Empty references (jiwer refuses
  them) contribute one insertion per hypothesis word.
  """
  try:
    import jiwer  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  pairs = [(h, r) for h, r in zip(hypotheses, references) if r.split()]
  counts = {'substitutions': 0, 'insertions': 0, 'deletions': 0}
  if pairs:
    # jiwer maps an empty hypothesis to all deletions itself.
    alignment = jiwer.process_words([r for _, r in pairs],
                                    [h for h, _ in pairs])
    counts = {'substitutions': alignment.substitutions,
              'insertions': alignment.insertions,
              'deletions': alignment.deletions}
  counts['insertions'] += sum(
      len(h.split()) for h, r in zip(hypotheses, references) if not r.split())
  return counts


def score(utterances: Sequence[EvalUtterance], hypotheses: Sequence[str]
         ) -> Tuple[List[dict], dict]:
  """Per-utterance records and corpus totals (WER from decoding/wer.py).

  Args:
    utterances: the references.
    hypotheses: one text per utterance.

  Returns:
    (records, summary): records hold utterance_id, reference, hypothesis,
    word_errors, reference_words; the summary holds totals, 'wer' and
    'cer' (fractions; None without reference words/characters) and, with
    jiwer installed, substitutions/insertions/deletions.
  """
  references = [u.reference for u in utterances]
  hyp_tensor = tf.constant(list(hypotheses), tf.string)
  ref_tensor = tf.constant(references, tf.string)
  word_errors, reference_words = (
      t.numpy() for t in wer_lib.word_error_counts(hyp_tensor, ref_tensor))
  char_errors, reference_chars = (
      t.numpy() for t in wer_lib.char_error_counts(hyp_tensor, ref_tensor))
  records = [{'utterance_id': u.utterance_id, 'reference': u.reference,
              'hypothesis': h, 'word_errors': int(e),
              'reference_words': int(n)}
             for u, h, e, n in zip(utterances, hypotheses, word_errors,
                                   reference_words)]
  totals = {'utterances': len(records),
            'word_errors': int(word_errors.sum()),
            'reference_words': int(reference_words.sum()),
            'char_errors': int(char_errors.sum()),
            'reference_chars': int(reference_chars.sum())}
  summary = dict(totals)
  summary['wer'] = (totals['word_errors'] / totals['reference_words']
                    if totals['reference_words'] else None)
  summary['cer'] = (totals['char_errors'] / totals['reference_chars']
                    if totals['reference_chars'] else None)
  breakdown = error_breakdown(hypotheses, references)
  if breakdown is not None:
    summary.update(breakdown)
  return records, summary


def evaluate(recognizer: recognizer_lib.Recognizer,
             utterances: Sequence[EvalUtterance],
             sample_rate: int = audio_decoding.TARGET_SAMPLE_RATE,
             log_progress: bool = False) -> Tuple[List[dict], dict]:
  """Decodes and scores utterances.

  Args:
    recognizer: the restored model's recognizer.
    utterances: what to decode.
    sample_rate: rate of the samples (for audio seconds).
    log_progress: write progress lines to stderr.

  Returns:
    (records, summary) as from `score`, plus audio_seconds, decode_seconds
    and real_time_factor (decode time / audio time) in the summary.
  """
  last_report = [time.monotonic()]

  def progress(done: int, total: int):
    if log_progress and (done == total or time.monotonic() - last_report[0]
                         >= _PROGRESS_EVERY_SECONDS):
      last_report[0] = time.monotonic()
      print(f'evaluate: decoded {done}/{total} utterances', file=sys.stderr,
            flush=True)

  recognizer.warm_up()  # Tracing is not decoding time.
  start = time.perf_counter()
  hypotheses = recognizer.recognize([u.samples for u in utterances],
                                    progress=progress)
  decode_seconds = time.perf_counter() - start
  records, summary = score(utterances, hypotheses)
  audio_seconds = sum(u.samples.shape[0] for u in utterances) / sample_rate
  summary['audio_seconds'] = audio_seconds
  summary['decode_seconds'] = decode_seconds
  summary['real_time_factor'] = (decode_seconds / audio_seconds
                                 if audio_seconds else None)
  return records, summary


def wer_line(summary: dict) -> str:
  """The final line scripts parse: `WER 12.34% (N utterances, M words)`."""
  return (f'WER {100.0 * summary["wer"]:.2f}% ({summary["utterances"]} '
          f'utterances, {summary["reference_words"]} words)')


def _print_summary(summary: dict) -> None:
  print(f'utterances: {summary["utterances"]}')
  if summary.get('skipped'):
    print(f'skipped: {summary["skipped"]} (see stderr)')
  print(f'CER: {100.0 * summary["cer"]:.2f}% ({summary["char_errors"]} / '
        f'{summary["reference_chars"]} characters)')
  if 'substitutions' in summary:
    print(f'substitutions: {summary["substitutions"]}  insertions: '
          f'{summary["insertions"]}  deletions: {summary["deletions"]}')
  if summary['real_time_factor'] is not None:
    print(f'real-time factor: {summary["real_time_factor"]:.4f} '
          f'({summary["decode_seconds"]:.2f} s for '
          f'{summary["audio_seconds"]:.1f} s of audio)')
  print(wer_line(summary))


def _write_jsonl(path: str, records: Sequence[dict]) -> None:
  with tf.io.gfile.GFile(path, 'w') as output_file:
    for record in records:
      output_file.write(json.dumps(record, ensure_ascii=False) + '\n')


def decoding_config_from_flags(base, flag_values=FLAGS):
  """The training config's DecodingConfig with the command-line choices."""
  override = {'method': flag_values.decoder,
              'beam_size': flag_values.beam_size}
  if flag_values.max_symbols_per_frame is not None:
    override['max_symbols_per_frame'] = flag_values.max_symbols_per_frame
  return base.replace(**override)


def run(flag_values=FLAGS) -> int:
  """Runs the binary with parsed flags; returns the exit code."""
  if not flag_values.model_dir:
    sys.exit('evaluate: --model_dir is required.')
  if bool(flag_values.tfrecords) == bool(flag_values.manifest):
    sys.exit('evaluate: give exactly one of --tfrecords or --manifest.')
  if flag_values.batch_size < 1 or flag_values.beam_size < 1:
    sys.exit('evaluate: --batch_size and --beam_size must be >= 1.')
  try:
    loaded = model_loader.load_model(flag_values.model_dir,
                                     flag_values.checkpoint,
                                     flag_values.experiment)
  except model_loader.ModelLoadError as error:
    sys.exit(f'evaluate: {error}')
  skipped = []
  try:
    if flag_values.tfrecords:
      utterances = read_tfrecords(flag_values.tfrecords, flag_values.limit)
    else:
      if not os.path.isfile(flag_values.manifest):
        sys.exit(f'evaluate: --manifest {flag_values.manifest} is not a file.')
      utterances, skipped = read_manifest(flag_values.manifest,
                                          flag_values.limit)
  except (ValueError, corpus_readers.CorpusError,
          tf.errors.OpError) as error:
    sys.exit(f'evaluate: cannot read the data: {error}')
  for skip in skipped:
    print(f'{skip.utterance_id}\tSKIPPED: {skip.reason}', file=sys.stderr)
  if not utterances:
    sys.exit('evaluate: no utterances to evaluate.')
  recognizer = recognizer_lib.from_loaded_model(
      loaded, decoding_config_from_flags(loaded.config.task.decoding,
                                         flag_values),
      batch_size=flag_values.batch_size)
  records, summary = evaluate(recognizer, utterances, log_progress=True)
  if summary['wer'] is None:
    sys.exit('evaluate: the references contain no words; WER is undefined '
             '(unlabeled data?).')
  summary.update(skipped=len(skipped), checkpoint=loaded.checkpoint_path,
                 decoder=flag_values.decoder,
                 beam_size=flag_values.beam_size if
                 flag_values.decoder == 'beam' else None)
  if flag_values.output:
    _write_jsonl(flag_values.output, records)
  summary_json = json.dumps(summary, indent=2)
  if flag_values.summary_output:
    with tf.io.gfile.GFile(flag_values.summary_output, 'w') as summary_file:
      summary_file.write(summary_json + '\n')
  else:
    print(summary_json)
  _print_summary(summary)
  return 0


def main(argv):
  if len(argv) > 1:
    sys.exit(f'evaluate: unexpected arguments {argv[1:]}')
  return run()


if __name__ == '__main__':
  define_flags()
  app.run(main)
