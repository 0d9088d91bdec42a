r"""The main job on the bundled demo corpus, end to end (`make demo`).

  python -m asr_kd.bin.demo --work_dir=demo_run [--data_only]

Each stage runs the same public command a user would run (printed before it
starts) and leaves its outputs under --work_dir. A stage whose outputs exist
is skipped, so an interrupted demo continues where it stopped; delete
--work_dir (or one stage's folder) to redo it.
"""

import glob
import json
import os
import time
from typing import List

from absl import app
from absl import flags

from asr_kd.experiments import results
from asr_kd.experiments import stages

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS):
  flags.DEFINE_string('work_dir', 'demo_run', 'Where every stage writes.',
                      flag_values=flag_values)
  # 24,000 utterances (17.7 h): the teacher's 20 minutes see each about
  # twice, so more voices and words instead of more repeats.
  flags.DEFINE_integer('num_train', 24000, 'Training utterances to synthesize.',
                       flag_values=flag_values)
  flags.DEFINE_integer('seed', 0, 'Corpus seed.',
                       flag_values=flag_values)
  flags.DEFINE_float('flite_fraction', 0.0,
                     'Fraction of the corpus spoken by Flite instead of '
                     'eSpeak NG (make_demo_corpus --flite_fraction).',
                     flag_values=flag_values)
  flags.DEFINE_integer('num_shards', 8, 'TFRecord shards per split.',
                       flag_values=flag_values)
  flags.DEFINE_integer('teacher_train_steps', None,
                       'Override the teacher config\'s trainer.train_steps.',
                       flag_values=flag_values)
  flags.DEFINE_integer('teacher_cpu_replicas', 2,
                       'On a host without GPU/TPU, train the teacher with '
                       'train --cpu_replicas=N (1: one device).',
                       flag_values=flag_values)
  flags.DEFINE_integer('student_train_steps', None,
                       'Override the student config\'s trainer.train_steps.',
                       flag_values=flag_values)
  flags.DEFINE_integer('student_cpu_replicas', 2,
                       'On a host without GPU/TPU, distill the student with '
                       'train --cpu_replicas=N (1: one device).',
                       flag_values=flag_values)
  flags.DEFINE_bool('data_only', False,
                    'Stop after the data stages (corpus, TFRecords, '
                    'tokenizer, feature statistics): what `make '
                    'experiments` needs, without the demo\'s own teacher '
                    'and student.', flag_values=flag_values)
  flags.DEFINE_integer('num_harness_files', 3,
                       'Test files streamed through the TFLite harness.',
                       flag_values=flag_values)


def harness_files(corpus: str, count: int) -> List[str]:
  """The first `count` test-split audio files, in a stable order."""
  return sorted(glob.glob(os.path.join(corpus, 'test', '*', '*',
                                       '*.flac')))[:count]


def build_stages(work_dir: str,
                 options: flags.FlagValues = FLAGS) -> List[stages.Stage]:
  """The demo's stages, in order, for the flag values in `options`."""
  corpus = os.path.join(work_dir, 'corpus')
  records = os.path.join(work_dir, 'tfrecords')
  teacher = os.path.join(work_dir, 'teacher')
  student = os.path.join(work_dir, 'student')
  tflite = os.path.join(work_dir, 'export', 'student.tflite')
  splits = ('train', 'dev', 'test', 'ood')

  def convert():
    # in_memory: at demo size, starting a TensorFlow process per worker
    # costs more than the conversion itself (docs/data_tools.md).
    commands = [stages.python_module(
        'tfrecords_tools.convert', f'--input={corpus}/{split}',
        '--format=librispeech', f'--output_dir={records}',
        f'--output_prefix={split}', f'--num_shards={options.num_shards}',
        '--direct_running_mode=in_memory') for split in splits]
    commands.append(stages.python_module(
        'tfrecords_tools.convert', f'--input={corpus}/unlabeled',
        '--format=audio_dir', f'--output_dir={records}',
        '--output_prefix=unlabeled', f'--num_shards={options.num_shards}',
        '--direct_running_mode=in_memory'))
    return commands

  demo_stages = [
      stages.Stage(
          'Synthesize the demo corpus (eSpeak NG, Flite)',
          os.path.join(corpus, 'corpus_info.json'),
          lambda: [stages.python_module(
              'tfrecords_tools.make_demo_corpus', f'--output_dir={corpus}',
              f'--num_train={options.num_train}', f'--seed={options.seed}',
              f'--flite_fraction={options.flite_fraction}',
              '--overwrite')]),
      stages.Stage(
          'Convert to TFRecords (Apache Beam)',
          os.path.join(records, 'unlabeled.summary.json'), convert),
      stages.Stage(
          'Inspect the TFRecords', '',
          lambda: [stages.python_module('tfrecords_tools.inspect',
                                 f'{records}/*.tfrecord*')]),
      stages.Stage(
          'Train the SentencePiece tokenizer',
          os.path.join(work_dir, 'tokenizer', 'spm.model'),
          lambda: [stages.python_module(
              'tfrecords_tools.train_tokenizer',
              f'--input={records}/train-*',
              f'--output_prefix={work_dir}/tokenizer/spm',
              # Characters: the demo's errors were spellings of rare words
              # split into subwords (docs/results.md).
              '--vocab_size=64', '--model_type=char')]),
      stages.Stage(
          'Compute feature statistics',
          os.path.join(work_dir, 'feature_stats.json'),
          lambda: [stages.python_module(
              'tfrecords_tools.compute_feature_stats',
              f'--input={records}/train-*',
              f'--output={work_dir}/feature_stats.json')]),
  ]
  model_stages = [
      # Training stages always run: train_lib resumes from the last
      # checkpoint and returns at once when the run is complete.
      stages.Stage(
          'Train the full-context Conformer teacher', '',
          lambda: [stages.train_command(
              'rnnt_demo_teacher', 'configs/rnnt_demo_teacher.yaml',
              teacher, stages.data_overrides(work_dir),
              options.teacher_train_steps,
              # Two single-threaded replicas use two cores better than one
              # device (docs/training.md); the preset's bucket batch
              # sizes are even for it.
              options.teacher_cpu_replicas if stages.cpu_only_host()
              else 1)]),
      stages.Stage(
          'Evaluate the teacher on the test and ood splits',
          stages.summary_path(teacher, 'ood'),
          lambda: stages.evaluate_commands(teacher, records,
                                           results.REPORTED_SPLITS)),
      stages.Stage(
          'Distill the streaming student (online soft targets)', '',
          lambda: [stages.train_command(
              'kd_demo_student', 'configs/kd_demo_student.yaml',
              student,
              stages.data_overrides(work_dir) +
              f',task.teacher_model_dir={teacher}',
              options.student_train_steps,
              options.student_cpu_replicas if stages.cpu_only_host()
              else 1)]),
      stages.Stage(
          'Evaluate the student on the test and ood splits',
          stages.summary_path(student, 'ood'),
          lambda: stages.evaluate_commands(student, records,
                                           results.REPORTED_SPLITS)),
      stages.Stage(
          'Export the student to streaming TFLite', tflite,
          lambda: [stages.python_module(
              'asr_kd.bin.export_tflite', f'--model_dir={student}',
              f'--output={tflite}', '--quantization=none')]),
      stages.Stage(
          'Stream test files through the TFLite harness', '',
          lambda: [stages.python_module(
              'asr_kd.bin.tflite_transcribe', f'--model={tflite}',
              '--threads=1',
              *harness_files(corpus, options.num_harness_files))]),
  ]
  if not options.data_only:
    demo_stages += model_stages
  # Each stage's time adds up over every `make demo` that ran it.
  return [stage._replace(time_file=stage_time_file(work_dir, number))
          for number, stage in enumerate(demo_stages, 1)]


def stage_time_file(work_dir: str, number: int) -> str:
  return os.path.join(work_dir, 'stage_times', f'stage{number:02d}.json')


def report_times(demo_stages: List[stages.Stage]):
  """Prints each stage's wall and CPU minutes, summed over resumed runs."""
  total_wall = total_cpu = 0.0
  for number, stage in enumerate(demo_stages, 1):
    if not os.path.exists(stage.time_file):
      continue
    with open(stage.time_file) as time_file:
      times = json.load(time_file)
    total_wall += times['seconds']
    total_cpu += times['cpu_seconds']
    print(f'time     [{number}/{len(demo_stages)}] {stage.name}: '
          f'{times["seconds"] / 60:.1f} min wall, '
          f'{times["cpu_seconds"] / 60:.1f} min CPU', flush=True)
  print(f'time     all stages: {total_wall / 60:.1f} min wall, '
        f'{total_cpu / 60:.1f} min CPU', flush=True)


def describe_model(model_dir: str) -> str:
  """Parameters, and for a streaming encoder its chunk and contexts.

  Counts the weights of the model that transcribes and exports (what
  `model_loader` restores), so training-only heads such as the CTC head do
  not count.

  Args:
    model_dir: a trained model_dir (params.yaml and a checkpoint).

  Returns:
    e.g. '1,281,037 parameters, streaming: 320 ms chunks (look-ahead to the
    chunk's end), 1280 ms left context', or '' without a checkpoint.
  """
  # Slow imports, needed only once models exist.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from asr_kd.inference import model_loader  # pylint: disable=g-import-not-at-top
  if not tf.train.latest_checkpoint(model_dir):
    return ''
  loaded = model_loader.load_model(model_dir)
  parameters = sum(int(variable.shape.num_elements())
                   for variable in loaded.model.trainable_variables)
  encoder = loaded.config.task.model.encoder
  if not encoder.causal:
    return f'{parameters:,} parameters, full context'
  frame_ms = (loaded.config.task.model.features.frame_step_ms *
              encoder.subsampling_factor)
  chunk_ms = encoder.chunk_size * frame_ms
  return (f'{parameters:,} parameters, streaming: {chunk_ms:.0f} ms chunks '
          f'(look-ahead to the chunk\'s end), '
          f'{encoder.left_chunks * chunk_ms:.0f} ms left context')


def report_wers(work_dir: str):
  """Prints each model's size and test and ood WERs (beam search)."""
  for name in ('teacher', 'student'):
    description = describe_model(os.path.join(work_dir, name))
    if description:
      print(f'{name:8s} {description}', flush=True)
    parts = []
    for split in results.REPORTED_SPLITS:
      path = stages.summary_path(os.path.join(work_dir, name), split)
      if os.path.exists(path):
        with open(path) as summary_file:
          summary = json.load(summary_file)
        parts.append(f'{split} WER {100.0 * summary["wer"]:6.2f}% '
                     f'({summary["utterances"]} utterances, beam '
                     f'{stages.EVALUATION_BEAM_SIZE})')
    if parts:
      print(f'{name:8s} ' + '  '.join(parts), flush=True)


def main(argv):
  del argv
  work_dir = FLAGS.work_dir
  os.makedirs(work_dir, exist_ok=True)
  start = time.time()
  demo_stages = build_stages(work_dir, FLAGS)
  stages.run_stages(demo_stages, start)
  report_wers(work_dir)
  report_times(demo_stages)
  print(f'demo: finished in {time.time() - start:.0f} s; outputs in '
        f'{work_dir}/', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
