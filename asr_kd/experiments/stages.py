"""Stages of the demo and of the comparison: the public commands a user would
run, as subprocesses, each stage skipped once its done marker exists."""

import json
import os
import resource
import shlex
import subprocess
import sys
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Sequence


class Stage(NamedTuple):
  name: str
  done_marker: str  # Path that exists once the stage has finished.
  commands: Callable[[], List[List[str]]]
  # JSON file that accumulates the stage's wall and CPU seconds
  # ({'seconds': s, 'cpu_seconds': c}) over runs, so a resumed stage reports
  # its whole time.
  time_file: str = ''


# How often a running stage adds its time to its time file: a stage killed
# (a session's end, a preemption) loses at most this much of its time.
CLOCK_INTERVAL_SECONDS = 60.0


def add_stage_time(path: str, wall_seconds: float, cpu_seconds: float):
  """Adds to a stage's time file, replacing it atomically."""
  totals = {'seconds': 0.0, 'cpu_seconds': 0.0}
  if os.path.exists(path):
    with open(path) as time_file:
      totals.update(json.load(time_file))
  totals['seconds'] += wall_seconds
  totals['cpu_seconds'] += cpu_seconds
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  with open(path + '.tmp', 'w') as time_file:
    json.dump(totals, time_file)
  os.replace(path + '.tmp', path)


def _live_cpu_seconds(pid: int) -> Optional[float]:
  """User + system CPU seconds of a running process (and of the children it
  has reaped), from /proc; None without /proc or once it has exited."""
  try:
    with open(f'/proc/{pid}/stat') as stat_file:
      fields = stat_file.read().rsplit(')', 1)[1].split()
  except (OSError, IndexError):
    return None
  # proc(5) fields 14-17 (utime, stime, cutime, cstime), in clock ticks.
  return sum(int(field) for field in fields[11:15]) / os.sysconf('SC_CLK_TCK')


def _reaped_children_cpu_seconds() -> float:
  usage = resource.getrusage(resource.RUSAGE_CHILDREN)
  return usage.ru_utime + usage.ru_stime


class StageClock:
  """Adds a stage's wall seconds and its commands' CPU seconds to its time
  file every `interval_seconds` while it runs, and the rest at the end.

  A finished command's CPU time is exact (getrusage of reaped children); a
  running one's is sampled from /proc, so a kill loses at most one interval.
  """

  def __init__(self, path: str, interval_seconds: Optional[float] = None):
    self._path = path
    self._interval_seconds = interval_seconds or CLOCK_INTERVAL_SECONDS
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._child_pid = None
    self._child_cpu_counted = 0.0
    self._reaped_cpu_before = 0.0
    self._last_flush = 0.0
    self._thread = threading.Thread(target=self._tick, daemon=True)

  def __enter__(self) -> 'StageClock':
    self._last_flush = time.time()
    self._thread.start()
    return self

  def __exit__(self, *exc_info):
    self._stop.set()
    self._thread.join()
    self._flush(0.0)

  def _flush(self, cpu_seconds: float):
    with self._lock:
      now = time.time()
      add_stage_time(self._path, now - self._last_flush, cpu_seconds)
      self._last_flush = now

  def _tick(self):
    while not self._stop.wait(self._interval_seconds):
      pid = self._child_pid
      cpu_seconds = _live_cpu_seconds(pid) if pid else None
      new_cpu = 0.0
      with self._lock:
        if cpu_seconds is not None and self._child_pid == pid:
          new_cpu = max(0.0, cpu_seconds - self._child_cpu_counted)
          self._child_cpu_counted += new_cpu
      self._flush(new_cpu)

  def started(self, pid: int):
    with self._lock:
      self._reaped_cpu_before = _reaped_children_cpu_seconds()
      self._child_pid = pid
      self._child_cpu_counted = 0.0

  def finished(self):
    with self._lock:
      total = _reaped_children_cpu_seconds() - self._reaped_cpu_before
      new_cpu = max(0.0, total - self._child_cpu_counted)
      self._child_pid = None
    self._flush(new_cpu)


def run_command(command: List[str], clock: Optional[StageClock] = None):
  """Runs one stage command, echoing it, and stops the demo if it fails."""
  print('+ ' + ' '.join(shlex.quote(part) for part in command), flush=True)
  process = subprocess.Popen(command)
  if clock:
    clock.started(process.pid)
  try:
    returncode = process.wait()
  finally:
    if clock:
      clock.finished()
  if returncode != 0:
    sys.exit(f'stage command failed with exit code {returncode}:'
             f' {" ".join(command)}')


def run_stage(stage: Stage):
  """Runs a stage's commands, timing them in its time file if it has one."""
  if not stage.time_file:
    for command in stage.commands():
      run_command(command)
    return
  with StageClock(stage.time_file) as clock:
    for command in stage.commands():
      run_command(command, clock)


def run_stages(stages: List[Stage], start: float):
  """Runs the stages in order, skipping those whose done_marker exists."""
  for number, stage in enumerate(stages, 1):
    header = f'[{number}/{len(stages)}] {stage.name}'
    if stage.done_marker and os.path.exists(stage.done_marker):
      print(f'{header}: done already ({stage.done_marker})', flush=True)
      continue
    print(f'{header} ({time.time() - start:.0f} s elapsed)', flush=True)
    run_stage(stage)


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
