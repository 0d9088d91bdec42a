r"""The main job on the bundled demo corpus, end to end (`make demo`).

  python -m asr_kd.bin.demo --work_dir=demo_run

Each stage runs the same public command a user would run (printed before it
starts) and leaves its outputs under --work_dir. A stage whose outputs exist
is skipped, so an interrupted demo continues where it stopped; delete
--work_dir (or one stage's folder) to redo it.
"""

import glob
import json
import os
import shlex
import subprocess
import sys
import time
from typing import Callable, List, NamedTuple, Optional, Sequence

from absl import app
from absl import flags

from asr_kd.experiments import results

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
  flags.DEFINE_integer('num_harness_files', 3,
                       'Test files streamed through the TFLite harness.',
                       flag_values=flag_values)


class Stage(NamedTuple):
  name: str
  done_marker: str  # Path that exists once the stage has finished.
  commands: Callable[[], List[List[str]]]
  # JSON file that accumulates the stage's wall seconds ({'seconds': s})
  # over runs, so a resumed stage reports its whole time.
  time_file: str = ''


def add_wall_time(path: str, seconds: float):
  if os.path.exists(path):
    with open(path) as time_file:
      seconds += json.load(time_file)['seconds']
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path, 'w') as time_file:
    json.dump({'seconds': seconds}, time_file)


def run_command(command: List[str]):
  """Runs one stage command, echoing it, and stops the demo if it fails."""
  print('+ ' + ' '.join(shlex.quote(part) for part in command), flush=True)
  result = subprocess.run(command, check=False)
  if result.returncode != 0:
    sys.exit(f'demo: stage command failed with exit code {result.returncode}:'
             f' {" ".join(command)}')


def run_stages(stages: List[Stage], start: float):
  """Runs the stages in order, skipping those whose done_marker exists."""
  for number, stage in enumerate(stages, 1):
    header = f'[{number}/{len(stages)}] {stage.name}'
    if stage.done_marker and os.path.exists(stage.done_marker):
      print(f'{header}: done already ({stage.done_marker})', flush=True)
      continue
    print(f'{header} ({time.time() - start:.0f} s elapsed)', flush=True)
    stage_start = time.time()
    for command in stage.commands():
      run_command(command)
    if stage.time_file:
      add_wall_time(stage.time_file, time.time() - stage_start)


def python_module(module: str, *args: str) -> List[str]:
  return [sys.executable, '-m', module, *args]


def data_overrides(work_dir: str) -> str:
  """--params_override pointing an experiment at this demo's files."""
  records = os.path.join(work_dir, 'tfrecords')
  stats = os.path.join(work_dir, 'feature_stats.json')
  return ','.join([
      f'task.tokenizer_model_path={work_dir}/tokenizer/spm.model',
      f'task.train_data.input_path={records}/train-*.tfrecord*',
      f'task.train_data.feature_stats_file={stats}',
      f'task.validation_data.input_path={records}/dev-*.tfrecord*',
      f'task.validation_data.feature_stats_file={stats}',
  ])


def train_command(experiment: str, config_file: str, model_dir: str,
                  overrides: str, train_steps: Optional[int],
                  cpu_replicas: int = 1) -> List[str]:
  if train_steps:
    overrides += f',trainer.train_steps={train_steps}'
  command = python_module('asr_kd.bin.train', f'--experiment={experiment}',
                          f'--config_file={config_file}', '--mode=train',
                          f'--model_dir={model_dir}',
                          f'--params_override={overrides}')
  if cpu_replicas > 1:
    command.append(f'--cpu_replicas={cpu_replicas}')
  return command


def cpu_only_host() -> bool:
  """True when TensorFlow sees no GPU or TPU (the test `train` applies)."""
  from asr_kd.bin import train  # pylint: disable=g-import-not-at-top  (slow import)
  return not train.accelerator_present()


def summary_path(model_dir: str, split: str) -> str:
  """Where `evaluate_command` writes a split's WER summary."""
  return os.path.join(model_dir, f'{split}_summary.json')


# The demo scores both models with beam search of width 4, as an offline
# teacher labels and a server decodes: on dev it lowered the teacher's WER
# from 10.81% (greedy) to 9.33% and the student's from 14.06% to 12.79%
# (runs T3 and S6, docs/results.md). The exported student decodes greedily
# on the device; its streamed WERs are in docs/benchmarks.md.
EVALUATION_BEAM_SIZE = 4


def evaluate_command(model_dir: str, records: str,
                     split: str = 'test') -> List[str]:
  """Beam-search evaluation of `model_dir` on the `split` TFRecords."""
  return python_module(
      'asr_kd.bin.evaluate', f'--model_dir={model_dir}',
      f'--tfrecords={records}/{split}-*', '--decoder=beam',
      f'--beam_size={EVALUATION_BEAM_SIZE}',
      f'--output={model_dir}/{split}_hypotheses.jsonl',
      f'--summary_output={summary_path(model_dir, split)}')


def evaluate_commands(model_dir: str, records: str,
                      splits: Sequence[str]) -> List[List[str]]:
  """`evaluate_command` for each split not scored yet."""
  return [evaluate_command(model_dir, records, split) for split in splits
          if not os.path.exists(summary_path(model_dir, split))]


def harness_files(corpus: str, count: int) -> List[str]:
  """The first `count` test-split audio files, in a stable order."""
  return sorted(glob.glob(os.path.join(corpus, 'test', '*', '*',
                                       '*.flac')))[:count]


def build_stages(work_dir: str,
                 options: flags.FlagValues = FLAGS) -> List[Stage]:
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
    commands = [python_module(
        'tfrecords_tools.convert', f'--input={corpus}/{split}',
        '--format=librispeech', f'--output_dir={records}',
        f'--output_prefix={split}', f'--num_shards={options.num_shards}',
        '--direct_running_mode=in_memory') for split in splits]
    commands.append(python_module(
        'tfrecords_tools.convert', f'--input={corpus}/unlabeled',
        '--format=audio_dir', f'--output_dir={records}',
        '--output_prefix=unlabeled', f'--num_shards={options.num_shards}',
        '--direct_running_mode=in_memory'))
    return commands

  return [
      Stage('Synthesize the demo corpus (eSpeak NG)',
            os.path.join(corpus, 'corpus_info.json'),
            lambda: [python_module(
                'tfrecords_tools.make_demo_corpus', f'--output_dir={corpus}',
                f'--num_train={options.num_train}', f'--seed={options.seed}',
                '--overwrite')]),
      Stage('Convert to TFRecords (Apache Beam)',
            os.path.join(records, 'unlabeled.summary.json'), convert),
      Stage('Inspect the TFRecords', '',
            lambda: [python_module('tfrecords_tools.inspect',
                                   f'{records}/*.tfrecord*')]),
      Stage('Train the SentencePiece tokenizer',
            os.path.join(work_dir, 'tokenizer', 'spm.model'),
            lambda: [python_module(
                'tfrecords_tools.train_tokenizer',
                f'--input={records}/train-*',
                f'--output_prefix={work_dir}/tokenizer/spm',
                # Characters: the demo's errors were spellings of rare words
                # split into subwords (docs/results.md).
                '--vocab_size=64', '--model_type=char')]),
      Stage('Compute feature statistics',
            os.path.join(work_dir, 'feature_stats.json'),
            lambda: [python_module(
                'tfrecords_tools.compute_feature_stats',
                f'--input={records}/train-*',
                f'--output={work_dir}/feature_stats.json')]),
      # Training stages always run: train_lib resumes from the last
      # checkpoint and returns at once when the run is complete.
      Stage('Train the full-context Conformer teacher', '',
            lambda: [train_command(
                'rnnt_demo_teacher', 'configs/rnnt_demo_teacher.yaml',
                teacher, data_overrides(work_dir),
                options.teacher_train_steps,
                # Two single-threaded replicas use two cores better than one
                # device (docs/training.md); the preset's bucket batch
                # sizes are even for it.
                options.teacher_cpu_replicas if cpu_only_host() else 1)]),
      Stage('Evaluate the teacher on the test and ood splits',
            summary_path(teacher, 'ood'),
            lambda: evaluate_commands(teacher, records,
                                      results.REPORTED_SPLITS)),
      Stage('Distill the streaming student (online soft targets)', '',
            lambda: [train_command(
                'kd_demo_student', 'configs/kd_demo_student.yaml',
                student,
                data_overrides(work_dir) + f',task.teacher_model_dir={teacher}',
                options.student_train_steps,
                options.student_cpu_replicas if cpu_only_host() else 1)]),
      Stage('Evaluate the student on the test and ood splits',
            summary_path(student, 'ood'),
            lambda: evaluate_commands(student, records,
                                      results.REPORTED_SPLITS)),
      Stage('Export the student to streaming TFLite', tflite,
            lambda: [python_module(
                'asr_kd.bin.export_tflite', f'--model_dir={student}',
                f'--output={tflite}', '--quantization=none')]),
      Stage('Stream test files through the TFLite harness', '',
            lambda: [python_module(
                'asr_kd.bin.tflite_transcribe', f'--model={tflite}',
                '--threads=1',
                *harness_files(corpus, options.num_harness_files))]),
  ]


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
  frame_ms = (loaded.config.task.train_data.features.frame_step_ms *
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
      path = summary_path(os.path.join(work_dir, name), split)
      if os.path.exists(path):
        with open(path) as summary_file:
          summary = json.load(summary_file)
        parts.append(f'{split} WER {100.0 * summary["wer"]:6.2f}% '
                     f'({summary["utterances"]} utterances, beam '
                     f'{EVALUATION_BEAM_SIZE})')
    if parts:
      print(f'{name:8s} ' + '  '.join(parts), flush=True)


def main(argv):
  del argv
  work_dir = FLAGS.work_dir
  os.makedirs(work_dir, exist_ok=True)
  stages = build_stages(work_dir)
  start = time.time()
  run_stages(stages, start)
  report_wers(work_dir)
  print(f'demo: finished in {time.time() - start:.0f} s; outputs in '
        f'{work_dir}/', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
