"""Stages of the demo and of the comparison: the public commands a user would
run, as subprocesses, each stage skipped once its done marker exists."""

import json
import os
import shlex
import subprocess
import sys
import time
from typing import Callable, List, NamedTuple, Optional, Sequence


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
    sys.exit(f'stage command failed with exit code {result.returncode}:'
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
      f'task.model.feature_stats_file={stats}',
      f'task.validation_data.input_path={records}/dev-*.tfrecord*',
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
  from asr_kd.runtime import devices  # pylint: disable=g-import-not-at-top  (slow import)
  return not devices.accelerator_present()


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
