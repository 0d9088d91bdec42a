"""The pseudo-labeling Beam pipeline: TFRecords in, labeled TFRecords out.

  files -> ReadRecords -> ParseRecord -> BatchElements -> LabelBatch
        -> WriteShardedTFRecords
  (every stage's failures) -> <prefix>.rejects.tsv

Each output record is the input record (utterance id, speaker, audio,
transcript kept as they were) plus the schema's pseudo-label fields: the
teacher's hypothesis, its confidence and the teacher's id. Nothing is
dropped silently: a record that cannot be parsed, has no audio frame, or a
file whose framing breaks (truncated, bad CRC) becomes a line of the
rejects file, and the summary reconciles inputs = written + rejected (a
broken file tail counts as one input). Confidence filtering is not done
here: it is a training option (AsrDataConfig.min_pseudo_label_confidence).
"""

import json
import math
import sys
import time
from typing import Dict, Iterable, List, NamedTuple, Optional

from absl import logging
import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
import tensorflow as tf

from asr_kd.corpus_io import beam_pipeline
from asr_kd.corpus_io import sharded_sink
from asr_kd.corpus_io import staged_output
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.inference import model_loader
from asr_kd.pseudo_labeling import teacher as teacher_lib

# Reject reasons.
UNREADABLE_FILE = 'unreadable_file'
UNPARSABLE_RECORD = 'unparsable_record'
NO_AUDIO_FRAMES = 'no_audio_frames'
# Source id of labels copied from the transcript (keep_transcripts).
TRANSCRIPT_SOURCE = 'transcript'
# Same columns as the converter's rejects file; location is '<file>#<index>'.
REJECTS_HEADER = 'location\treason\tdetail'

_PROGRESS_EVERY = 200  # Utterances per worker between progress lines.
_METRICS_NAMESPACE = 'pseudo_label'


def _reject(reason: str, location: str, detail: str):
  beam.metrics.Metrics.counter(_METRICS_NAMESPACE, 'rejected_' + reason).inc()
  return beam.pvalue.TaggedOutput(
      'rejected', beam_pipeline.format_reject(location, reason, detail))


class ReadRecordsFn(beam.DoFn):
  """Yields (location, serialized record) for every record of a file.

  `location` is '<path>#<record index>'. If the file's framing breaks, the
  records before the break are still yielded and the rest of the file
  becomes one reject.
  """

  def process(self, path: str) -> Iterable[object]:
    compression = tfrecord_schema.compression_of(path)
    index = 0
    try:
      for serialized in tf.data.TFRecordDataset(
          path, compression_type=compression).as_numpy_iterator():
        beam.metrics.Metrics.counter(_METRICS_NAMESPACE, 'records_read').inc()
        yield f'{path}#{index}', serialized
        index += 1
    except (tf.errors.DataLossError, tf.errors.OpError) as error:
      yield _reject(UNREADABLE_FILE, f'{path}#{index}',
                    f'records from #{index} on are lost: {error.message}')


class ParseRecordFn(beam.DoFn):
  """Parses a record with the schema into a plain dict (or rejects it)."""

  def __init__(self, feature_config):
    super().__init__()
    self._feature_config = feature_config

  def process(self, located_record) -> Iterable[object]:
    location, serialized = located_record
    try:
      parsed = tfrecord_schema.parse_example(tf.constant(serialized))
    except tf.errors.OpError as error:
      # Eager op errors start with '{{function_node ...}} '; keep the reason.
      message = error.message.splitlines()[0].rpartition('}} ')[2]
      yield _reject(UNPARSABLE_RECORD, location, message)
      return
    samples = parsed['audio'].numpy()
    utterance_id = parsed[tfrecord_schema.UTTERANCE_ID].numpy().decode(
        'utf-8', 'replace')
    if features_lib.num_frames(samples.shape[0], self._feature_config) < 1:
      yield _reject(NO_AUDIO_FRAMES, location,
                    f'{utterance_id}: {samples.shape[0]} samples')
      return
    yield {
        'utterance_id': utterance_id,
        'speaker': parsed[tfrecord_schema.SPEAKER].numpy().decode('utf-8'),
        'transcript': parsed[tfrecord_schema.TRANSCRIPT].numpy().decode(
            'utf-8'),
        'samples': samples,
    }


class TargetOptions(NamedTuple):
  """What stored teacher targets to write with the labels."""
  top_k: int  # Ids kept per lattice node.
  temperature: float  # Of the tempered log-probs.
  frame_ratio: int  # Teacher frames averaged into each stored frame.


class LabelBatchFn(beam.DoFn):
  """Labels a batch of parsed utterances with the teacher.

  The model is restored once per worker (`setup`). Output per utterance:
  (utterance_id, serialized labeled record, num_samples, confidence).
  """

  def __init__(self, model_dir: str, checkpoint: Optional[str],
               beam_size: int, keep_transcripts: bool,
               experiment: Optional[str] = None,
               targets: Optional[TargetOptions] = None):
    super().__init__()
    self._experiment = experiment
    self._targets = targets
    self._model_dir = model_dir
    self._checkpoint = checkpoint
    self._beam_size = beam_size
    self._keep_transcripts = keep_transcripts
    self._teacher = None
    self._labeled = 0

  def setup(self):
    self._teacher = teacher_lib.Teacher.from_model_dir(
        self._model_dir, self._checkpoint, self._beam_size, self._experiment)

  def process(self, utterances) -> Iterable[tuple]:
    """Labels one batch (a list of ParseRecordFn dicts)."""
    labels: List[Optional[teacher_lib.PseudoLabel]] = [None] * len(
        utterances)
    to_decode = []
    for index, utterance in enumerate(utterances):
      if self._keep_transcripts and utterance['transcript']:
        labels[index] = teacher_lib.PseudoLabel(utterance['transcript'], 1.0)
      else:
        to_decode.append(index)
    decoded = self._teacher.label_batch(
        [utterances[index]['samples'] for index in to_decode])
    for index, label in zip(to_decode, decoded):
      labels[index] = label
    decoded_set = set(to_decode)
    targets = [None] * len(utterances)
    if self._targets is not None:
      # On the lattice of each record's label: its transcript, or the
      # hypothesis just decoded.
      targets = self._teacher.lattice_targets(
          [utterance['samples'] for utterance in utterances],
          [label.hypothesis for label in labels], self._targets.top_k,
          self._targets.temperature, self._targets.frame_ratio)
    for index, (utterance, label) in enumerate(zip(utterances, labels)):
      source = (self._teacher.source_model if index in decoded_set
                else TRANSCRIPT_SOURCE)
      example = tfrecord_schema.make_example(
          utterance['utterance_id'], utterance['samples'],
          transcript=utterance['transcript'], speaker=utterance['speaker'],
          pseudo_label={'hypothesis': label.hypothesis,
                        'confidence': label.confidence,
                        'source_model': source},
          teacher_targets=targets[index])
      yield (utterance['utterance_id'], example.SerializeToString(),
             int(utterance['samples'].shape[0]), label.confidence)
    beam.metrics.Metrics.counter(_METRICS_NAMESPACE, 'decoded').inc(
        len(to_decode))
    beam.metrics.Metrics.counter(_METRICS_NAMESPACE, 'labeled').inc(
        len(utterances))
    previous, self._labeled = self._labeled, self._labeled + len(utterances)
    if previous // _PROGRESS_EVERY != self._labeled // _PROGRESS_EVERY:
      logging.info('pseudo_label worker: %d utterances labeled', self._labeled)


def _stats_json(written, num_read, mean_confidence) -> str:
  records, samples = written
  if isinstance(mean_confidence, float) and math.isnan(mean_confidence):
    mean_confidence = None  # No record was labeled.
  return json.dumps({'records_read': num_read, 'written': records,
                     'samples': samples, 'mean_confidence': mean_confidence})


def build_pipeline(pipeline: beam.Pipeline, files: List[str],
                   paths: Dict[str, str], model_dir: str, checkpoint: str,
                   feature_config, beam_size: int = 8, batch_size: int = 8,
                   num_shards: int = 1, compression: str = 'none',
                   keep_transcripts: bool = False,
                   experiment: Optional[str] = None,
                   targets: Optional[TargetOptions] = None) -> None:
  """Adds the pseudo-labeling transforms to `pipeline`.

  Args:
    pipeline: the Beam pipeline to extend.
    files: input TFRecord files (GZIP when the name ends in .gz).
    paths: from `asr_kd.corpus_io.staged_output.output_paths`.
    model_dir: the teacher's training folder.
    checkpoint: the teacher checkpoint every worker restores.
    feature_config: the teacher's FeatureConfig (frame count check).
    beam_size: beam search width.
    batch_size: most utterances decoded together.
    num_shards: number of output shards.
    compression: 'none' or 'gzip'.
    keep_transcripts: records with a transcript take it as their label
      (confidence 1, source 'transcript') instead of being decoded.
    experiment: registered experiment whose config class holds the
      teacher's params.yaml.
    targets: also write the teacher's top-k targets on each record's
      label lattice (`Teacher.lattice_targets`); None: labels only.
  """
  read = (
      pipeline
      | 'ListFiles' >> beam.Create(files)
      | 'ReadRecords' >> beam.ParDo(ReadRecordsFn()).with_outputs(
          'rejected', main='ok'))
  parsed = (
      read.ok
      # Spreads parsing and decoding over workers (one file = one element).
      | 'Reshuffle' >> beam.Reshuffle()
      | 'ParseRecord' >> beam.ParDo(ParseRecordFn(feature_config))
      .with_outputs('rejected', main='ok'))
  labeled = (
      parsed.ok
      | 'Batch' >> beam.BatchElements(min_batch_size=1,
                                      max_batch_size=batch_size)
      | 'LabelBatch' >> beam.ParDo(LabelBatchFn(
          model_dir, checkpoint, beam_size, keep_transcripts, experiment,
          targets)))
  written = (
      labeled
      | 'DropConfidence' >> beam.Map(lambda record: record[:3])
      | 'WriteShards' >> sharded_sink.WriteShardedTFRecords(
          paths['shard_prefix'], paths['shard_suffix'], num_shards,
          compression))
  num_read = read.ok | 'CountRead' >> beam.combiners.Count.Globally()
  mean_confidence = (
      labeled
      | 'Confidences' >> beam.Map(lambda record: record[3])
      | 'MeanConfidence' >> beam.combiners.Mean.Globally())
  _ = (
      written
      | 'StatsToJson' >> beam.Map(
          _stats_json, num_read=beam.pvalue.AsSingleton(num_read),
          mean_confidence=beam.pvalue.AsSingleton(mean_confidence))
      | 'WriteStats' >> beam.io.WriteToText(paths['stats'],
                                            shard_name_template=''))
  _ = (
      (read.rejected, parsed.rejected)
      | 'AllRejects' >> beam.Flatten()
      | 'WriteRejects' >> beam.io.WriteToText(
          paths['rejects'], shard_name_template='', header=REJECTS_HEADER))


def _read_text(path: str) -> str:
  with FileSystems.open(path) as text_file:
    return text_file.read().decode('utf-8')


def summarize(paths: Dict[str, str]) -> dict:
  """Builds the run summary from the stats and rejects files.

  Args:
    paths: from `asr_kd.corpus_io.staged_output.output_paths`.

  Returns:
    Dict with inputs (records read + unreadable file tails), written,
    rejected, rejected_by_reason, reconciled (inputs == written +
    rejected), samples_written, mean_confidence and paths.
  """
  stats = json.loads(_read_text(paths['stats']))
  rejected_by_reason: Dict[str, int] = {}
  for line in _read_text(paths['rejects']).splitlines()[1:]:
    if line:
      reason = line.split('\t')[1]
      rejected_by_reason[reason] = rejected_by_reason.get(reason, 0) + 1
  num_rejected = sum(rejected_by_reason.values())
  num_inputs = stats['records_read'] + rejected_by_reason.get(
      UNREADABLE_FILE, 0)
  return {
      'inputs': num_inputs,
      'written': stats['written'],
      'rejected': num_rejected,
      'rejected_by_reason': dict(sorted(rejected_by_reason.items())),
      'reconciled': num_inputs == stats['written'] + num_rejected,
      'samples_written': stats['samples'],
      'hours_written': stats['samples'] / tfrecord_schema.SAMPLE_RATE / 3600,
      'mean_confidence': stats['mean_confidence'],
      'shard_pattern': paths['shard_pattern'],
      'rejects_file': paths['rejects'],
  }


def _counters(result) -> Dict[str, int]:
  """The pipeline's counters by name (committed values)."""
  try:
    counters = result.metrics().query()['counters']
  except (NotImplementedError, KeyError):  # Runners without metrics.
    return {}
  return {counter.key.metric.name: counter.committed
          for counter in counters
          if counter.key.metric.namespace == _METRICS_NAMESPACE}


def run_pseudo_labeling(model_dir: str, input_path: str, output_dir: str,
                        output_prefix: str = 'pseudo', num_shards: int = 1,
                        compression: str = 'none', beam_size: int = 8,
                        batch_size: int = 8,
                        checkpoint: Optional[str] = None,
                        keep_transcripts: bool = False,
                        experiment: Optional[str] = None,
                        beam_args: Optional[List[str]] = None,
                        targets: Optional[TargetOptions] = None) -> dict:
  """Labels every record of `input_path` and commits the output.

  Shards, rejects and summary are written under a staging folder and moved
  into `output_dir` together, replacing the folder's earlier shards of this
  prefix (asr_kd.corpus_io.staged_output). The summary file is moved last,
  so its presence marks a finished run.

  Args:
    model_dir: the teacher's training folder (params.yaml + checkpoints).
    input_path: comma-separated TFRecord globs (corpus schema).
    output_dir: destination folder (created if missing).
    output_prefix: shard name prefix.
    num_shards: number of output shards.
    compression: 'none' or 'gzip'.
    beam_size: beam search width.
    batch_size: most utterances decoded together.
    checkpoint: teacher checkpoint (default: latest in model_dir, resolved
      once here so every worker restores the same one).
    keep_transcripts: see `build_pipeline`.
    experiment: see `build_pipeline`.
    beam_args: Beam pipeline flags (see beam_pipeline.make_pipeline_options).
    targets: see `build_pipeline`.

  Returns:
    The summary dict (see `summarize`) plus run information.

  Raises:
    model_loader.ModelLoadError: unusable teacher.
    ValueError: `input_path` matches no file.
  """
  if targets is not None and (targets.top_k < 1 or
                              targets.temperature <= 0 or
                              targets.frame_ratio < 1):
    raise ValueError(f'teacher targets need top_k >= 1, temperature > 0 '
                     f'and frame_ratio >= 1; got {targets}.')
  start_time = time.time()
  config = model_loader.load_experiment_config(model_dir, experiment)
  checkpoint = model_loader.find_checkpoint(model_dir, checkpoint)
  files = input_pipeline.expand_input_path(input_path)
  source_model = teacher_lib.source_model_id(model_dir, checkpoint)
  print(f'pseudo_label: {len(files)} input files, teacher {source_model}, '
        f'beam_size={beam_size}', file=sys.stderr, flush=True)
  tf.io.gfile.makedirs(output_dir)
  output = staged_output.StagedOutput(output_dir, output_prefix, compression)
  output.begin()
  pipeline = beam.Pipeline(
      options=beam_pipeline.make_pipeline_options(beam_args or []))
  build_pipeline(pipeline, files, output.staged, model_dir, checkpoint,
                 config.task.model.features, beam_size, batch_size,
                 num_shards, compression, keep_transcripts, experiment,
                 targets)
  result = pipeline.run()
  result.wait_until_finish()
  summary = summarize(output.staged)
  summary.update({
      'input': input_path,
      'source_model': source_model,
      'beam_size': beam_size,
      'keep_transcripts': keep_transcripts,
      'teacher_targets': targets._asdict() if targets else None,
      'num_shards': num_shards,
      'compression': compression,
      'counters': _counters(result),
      'seconds': round(time.time() - start_time, 1),
  })
  return output.commit(summary)
