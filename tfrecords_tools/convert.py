r"""Converts a speech corpus to sharded TFRecords with an Apache Beam pipeline.

  python -m tfrecords_tools.convert --input=/data/LibriSpeech/dev-clean \
      --format=librispeech --output_dir=/data/tfrecords/dev-clean \
      --num_shards=16 --compression=gzip

Records follow asr_kd/dataloaders/tfrecord_schema.py (docs/tfrecord_schema.md).
Inputs that cannot become a record are written to `<prefix>.rejects.tsv`
(path, reason, detail) and counted in `<prefix>.summary.json`; every good
input is still written, and inputs = written + rejected. The shards,
rejects and summary are committed as one set (asr_kd.corpus_io.staged_output):
a killed run leaves nothing the shard globs match, and a rerun replaces the
folder's earlier set of the same prefix. Flags this binary
does not define are Beam pipeline options, so `--runner=DataflowRunner
--project=... --temp_location=gs://...` scales the same pipeline out; the
default is the DirectRunner with one worker process per CPU.
"""

import json
import logging as std_logging
import re
import time
from typing import Dict, Iterable, List, Optional

from absl import app
from absl import flags
from absl import logging
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
import tensorflow as tf

from asr_kd.corpus_io import beam_pipeline
from asr_kd.corpus_io import corpus_readers
from asr_kd.corpus_io import sharded_sink
from asr_kd.corpus_io import staged_output
from asr_kd.dataloaders import audio_decoding
from asr_kd.dataloaders import tfrecord_schema

_PROGRAM = 'convert'

# Reject reasons decided here (the others come from the reader and decoder).
TOO_LONG = 'too_long'
TOO_SHORT = 'too_short'

_REJECTS_HEADER = 'path\treason\tdetail'
_PROGRESS_EVERY = 500  # Records per worker between progress log lines.


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (only when run as one, so importing this
  module never collides with other binaries' --input/--output_dir)."""
  flags.DEFINE_string(
      'input', None, 'Corpus root (librispeech, audio_dir) or manifest file.',
      flag_values=flag_values)
  flags.DEFINE_enum('format', None, list(corpus_readers.FORMATS),
                    'Layout of --input.', flag_values=flag_values)
  flags.DEFINE_string(
      'output_dir', None, 'Folder for shards, rejects and summary (local, or '
      'any filesystem TensorFlow and Beam both support, e.g. gs://).',
      flag_values=flag_values)
  flags.DEFINE_string(
      'output_prefix', 'data', 'Shard file name prefix (e.g. the split '
      'name): <output_dir>/<prefix>-SSSSS-of-NNNNN.tfrecord[.gz].',
      flag_values=flag_values)
  flags.DEFINE_integer('num_shards', 1, 'Number of output shards.',
                       lower_bound=1, flag_values=flag_values)
  flags.DEFINE_enum('compression', 'none', ['none', 'gzip'],
                    'TFRecord compression.', flag_values=flag_values)
  flags.DEFINE_float('max_duration_s', 35.0,
                     'Reject audio longer than this many seconds.',
                     flag_values=flag_values)
  flags.DEFINE_float('min_duration_s', 0.1,
                     'Reject audio shorter than this many seconds.',
                     flag_values=flag_values)
  flags.DEFINE_bool(
      'strict', False, 'Exit non-zero if any input was rejected (outputs are '
      'still written so the rejects can be inspected).',
      flag_values=flag_values)


class UsageError(ValueError):
  """A setting that cannot be right; the binary prints it as one line."""


def check_settings(output_prefix: str, num_shards: int,
                   min_duration_s: float, max_duration_s: float) -> None:
  """Refuses settings under which no conversion can be right.

  Raises:
    UsageError: naming the flag and why.
  """
  # `not 0 < x` also catches NaN, which compares false with everything;
  # an infinite --max_duration_s means no limit and is allowed.
  if not 0 < max_duration_s:
    raise UsageError(f'--max_duration_s={max_duration_s:g} must be > 0')
  if not 0 <= min_duration_s < max_duration_s:
    raise UsageError(f'--min_duration_s={min_duration_s:g} must be >= 0 and '
                     f'below --max_duration_s={max_duration_s:g}')
  if num_shards < 1:
    raise UsageError(f'--num_shards={num_shards} must be >= 1')
  # The prefix becomes part of file names and of the shard glob.
  if not re.fullmatch(r'[\w.-]+', output_prefix):
    raise UsageError(f'--output_prefix={output_prefix!r} must be a non-empty '
                     'file name of letters, digits, "_", "-" and "."')


class ConvertUtteranceFn(beam.DoFn):
  """Decodes, validates and serializes one utterance.

  Main output: (utterance_id, serialized tf.train.Example, num_samples).
  Tagged output 'rejected': rejects-file lines.
  """

  def __init__(self, min_duration_s: float, max_duration_s: float):
    super().__init__()
    self._min_duration_s = min_duration_s
    self._max_duration_s = max_duration_s
    self._processed = 0

  def _reject(self, path: str, reason: str, detail: str):
    beam.metrics.Metrics.counter('convert', 'rejected_' + reason).inc()
    return beam.pvalue.TaggedOutput('rejected',
                                    beam_pipeline.format_reject(path, reason, detail))

  def process(self, utterance: corpus_readers.Utterance
             ) -> Iterable[object]:
    self._processed += 1
    if self._processed % _PROGRESS_EVERY == 0:
      logging.info('convert worker: %d utterances processed', self._processed)
    if utterance.reject_reason:
      yield self._reject(utterance.audio_path, utterance.reject_reason,
                         utterance.reject_detail)
      return
    try:
      samples = audio_decoding.load_mono_16k(utterance.audio_path)
    except audio_decoding.AudioDecodeError as error:
      yield self._reject(utterance.audio_path, error.reason, error.detail)
      return
    duration_s = samples.shape[0] / tfrecord_schema.SAMPLE_RATE
    if duration_s > self._max_duration_s:
      yield self._reject(
          utterance.audio_path, TOO_LONG,
          f'{duration_s:.2f} s > --max_duration_s={self._max_duration_s:g}')
      return
    if duration_s < self._min_duration_s:
      yield self._reject(
          utterance.audio_path, TOO_SHORT,
          f'{duration_s:.3f} s < --min_duration_s={self._min_duration_s:g}')
      return
    example = tfrecord_schema.make_example(
        utterance.utterance_id, samples, transcript=utterance.transcript,
        speaker=utterance.speaker)
    beam.metrics.Metrics.counter('convert', 'written').inc()
    yield (utterance.utterance_id, example.SerializeToString(),
           int(samples.shape[0]))


def build_pipeline(pipeline: beam.Pipeline,
                   utterances: List[corpus_readers.Utterance],
                   paths: Dict[str, str], num_shards: int, compression: str,
                   min_duration_s: float, max_duration_s: float) -> None:
  """Adds the conversion transforms to `pipeline`.

  Args:
    pipeline: the Beam pipeline to extend.
    utterances: inputs from a corpus reader.
    paths: from `staged_output.output_paths`.
    num_shards: number of TFRecord shards.
    compression: 'none' or 'gzip'.
    min_duration_s: shorter audio is rejected.
    max_duration_s: longer audio is rejected.
  """
  outputs = (
      pipeline
      | 'ListUtterances' >> beam.Create(utterances)
      # Spreads decoding over workers even though the list was made in one.
      | 'Reshuffle' >> beam.Reshuffle()
      | 'DecodeAndSerialize' >> beam.ParDo(
          ConvertUtteranceFn(min_duration_s, max_duration_s)).with_outputs(
              'rejected', main='ok'))
  _ = (
      outputs.ok
      | 'WriteShards' >> sharded_sink.WriteShardedTFRecords(
          paths['shard_prefix'], paths['shard_suffix'], num_shards,
          compression)
      | 'StatsToJson' >> beam.Map(
          lambda pair: json.dumps({'written': pair[0], 'samples': pair[1]}))
      | 'WriteStats' >> beam.io.WriteToText(paths['stats'],
                                            shard_name_template=''))
  _ = outputs.rejected | 'WriteRejects' >> beam.io.WriteToText(
      paths['rejects'], shard_name_template='', header=_REJECTS_HEADER)


def _read_text(path: str) -> str:
  with FileSystems.open(path) as text_file:
    return text_file.read().decode('utf-8')


def summarize(paths: Dict[str, str], num_inputs: int) -> dict:
  """Builds the run summary from the pipeline's stats and rejects files.

  Args:
    paths: from `staged_output.output_paths`.
    num_inputs: number of utterances the reader produced.

  Returns:
    Dict with inputs, written, rejected, rejected_by_reason, hours_written,
    samples_written, reconciled (inputs == written + rejected) and paths.
  """
  stats = json.loads(_read_text(paths['stats']))
  rejected_by_reason: Dict[str, int] = {}
  for line in _read_text(paths['rejects']).splitlines()[1:]:
    if line:
      reason = line.split('\t')[1]
      rejected_by_reason[reason] = rejected_by_reason.get(reason, 0) + 1
  num_rejected = sum(rejected_by_reason.values())
  return {
      'inputs': num_inputs,
      'written': stats['written'],
      'rejected': num_rejected,
      'rejected_by_reason': dict(sorted(rejected_by_reason.items())),
      'samples_written': stats['samples'],
      'hours_written': stats['samples'] / tfrecord_schema.SAMPLE_RATE / 3600,
      'reconciled': num_inputs == stats['written'] + num_rejected,
      'shard_pattern': paths['shard_pattern'],
      'rejects_file': paths['rejects'],
  }


def run_conversion(input_path: str, corpus_format: str, output_dir: str,
                   output_prefix: str = 'data', num_shards: int = 1,
                   compression: str = 'none', min_duration_s: float = 0.1,
                   max_duration_s: float = 35.0,
                   beam_args: Optional[List[str]] = None) -> dict:
  """Reads the corpus, runs the pipeline and commits its output.

  Everything is written under a staging folder first and moved into
  `output_dir` at the end, replacing the folder's earlier shards of this
  prefix (any shard count or compression); `<prefix>.summary.json`, moved
  last, lists the committed files (staged_output).

  Args:
    input_path: corpus root or manifest.
    corpus_format: one of corpus_readers.FORMATS.
    output_dir: destination folder (created if missing).
    output_prefix: shard name prefix.
    num_shards: number of TFRecord shards.
    compression: 'none' or 'gzip'.
    min_duration_s: shorter audio is rejected.
    max_duration_s: longer audio is rejected.
    beam_args: extra Beam pipeline flags.

  Returns:
    The summary dict (see `summarize` and `StagedOutput.commit`).

  Raises:
    UsageError: a setting that cannot be right.
    corpus_readers.CorpusError: the input cannot be read.
  """
  start_time = time.time()
  check_settings(output_prefix, num_shards, min_duration_s, max_duration_s)
  utterances = corpus_readers.read_corpus(input_path, corpus_format)
  num_reader_rejects = sum(1 for u in utterances if u.reject_reason)
  print(f'convert: {len(utterances)} inputs found in {input_path} '
        f'({num_reader_rejects} already rejected by the reader)', flush=True)
  tf.io.gfile.makedirs(output_dir)
  output = staged_output.StagedOutput(output_dir, output_prefix, compression)
  output.begin()
  with beam.Pipeline(options=beam_pipeline.make_pipeline_options(beam_args or [])) as p:
    build_pipeline(p, utterances, output.staged, num_shards, compression,
                   min_duration_s, max_duration_s)
  summary = summarize(output.staged, len(utterances))
  summary.update({
      'input': input_path,
      'format': corpus_format,
      'num_shards': num_shards,
      'compression': compression,
      'seconds': round(time.time() - start_time, 1),
  })
  return output.commit(summary)


def main(argv: List[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Runs the conversion; argv[1:] are the Beam pipeline flags."""
  # The runner's job service relays worker logs at INFO; show problems only.
  std_logging.getLogger('apache_beam').setLevel(std_logging.WARNING)
  beam_pipeline.require_flags(flag_values, ('input', 'format', 'output_dir'),
                              _PROGRAM)
  try:
    summary = run_conversion(
        flag_values.input, flag_values.format, flag_values.output_dir,
        flag_values.output_prefix, flag_values.num_shards,
        flag_values.compression, flag_values.min_duration_s,
        flag_values.max_duration_s, beam_args=argv[1:])
  except (UsageError, corpus_readers.CorpusError) as error:
    beam_pipeline.exit_with_error(_PROGRAM, str(error))
  except (tf.errors.OpError, OSError) as error:
    beam_pipeline.exit_with_error(
        _PROGRAM,
        f'cannot write to --output_dir={flag_values.output_dir!r}: {error}')
  beam_pipeline.finish_with_summary(summary, _PROGRAM, flag_values.strict)


def parse_flags(argv: List[str],
                flag_values: flags.FlagValues = flags.FLAGS) -> List[str]:
  return beam_pipeline.parse_known_flags(argv, flag_values, _PROGRAM)


if __name__ == '__main__':
  define_flags()
  app.run(main, flags_parser=parse_flags)
