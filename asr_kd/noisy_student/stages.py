"""Noisy Student stages: planning, done markers and resume.

A run is a flat list of stages:

  teacher/train                (only without initial_teacher.model_dir)
  generation_1/pseudo_label    -> generation_1/pseudo_labels/pseudo.summary.json
  generation_1/train_student   -> generation_1/student/train.done.json
  generation_1/evaluate        -> generation_1/student/eval.json (optional)
  generation_1/finish          -> generation_1/done.json
  generation_2/...             (teacher = generation_1/student)

Each stage has a file that exists only once it finished (the pseudo-label
summary is written after its shards, the train marker after the trainer
exits cleanly). `run_stages` skips finished stages, so rerunning after a kill
continues where it stopped; an interrupted training run resumes from its
last checkpoint because Model Garden's trainer restores it from model_dir.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable, List, Optional

import tensorflow as tf
import yaml

from official.core import exp_factory

from asr_kd.configs import registered_experiments  # pylint: disable=unused-import
from asr_kd.noisy_student import config as config_lib
from asr_kd.pseudo_labeling import pipeline as pseudo_label_pipeline

PSEUDO_LABEL_PREFIX = 'pseudo'
TRAIN_MARKER = 'train.done.json'
EVAL_FILE = 'eval.json'
GENERATION_MARKER = 'done.json'
OVERRIDES_FILE = 'noisy_student_overrides.yaml'
# asr_kd.bin.train logs its evaluation as 'Final evaluation: {...}'.
_EVAL_LINE = re.compile(r'Final evaluation: (\{.*\})')


class StageError(Exception):
  """A stage failed (its message is one line)."""


@dataclasses.dataclass
class Stage:
  """One resumable step.

  Attributes:
    name: e.g. 'generation_1/pseudo_label'.
    done_path: file whose existence means the stage finished.
    run: does the work and leaves `done_path` behind.
  """
  name: str
  done_path: str
  run: Callable[[], None]


@dataclasses.dataclass(frozen=True)
class ModelRef:
  """A trained model and the experiment whose config reads its params.yaml."""
  model_dir: str
  experiment: str


def _write_json(path: str, content: dict) -> None:
  # Written under a temporary name and renamed: a kill never leaves a
  # half-written marker that would count as done.
  temporary_path = path + '.tmp'
  with tf.io.gfile.GFile(temporary_path, 'w') as output:
    output.write(json.dumps(content, indent=2))
  tf.io.gfile.rename(temporary_path, path, overwrite=True)


def train_command(run: config_lib.TrainRunConfig, model_dir: str,
                  mode: str = 'train',
                  extra_config_file: Optional[str] = None) -> List[str]:
  """The `asr_kd.bin.train` command line for a run.

  Args:
    run: experiment, config file and overrides.
    model_dir: the run's folder.
    mode: train, eval or train_and_eval.
    extra_config_file: YAML applied after run.config_file (and before
      run.params_override, which therefore wins).

  Returns:
    argv for subprocess.
  """
  command = [sys.executable, '-m', 'asr_kd.bin.train',
             f'--experiment={run.experiment}', f'--mode={mode}',
             f'--model_dir={model_dir}']
  for config_file in (run.config_file, extra_config_file):
    if config_file:
      command.append(f'--config_file={config_file}')
  if run.params_override:
    command.append(f'--params_override={run.params_override}')
  return command


def _run_subprocess(name: str, command: List[str],
                    capture_stderr: bool = False) -> str:
  """Runs a command, streaming its output; returns stderr if captured."""
  print(f'noisy_student: [{name}] {" ".join(command)}', file=sys.stderr,
        flush=True)
  completed = subprocess.run(
      command, stderr=subprocess.PIPE if capture_stderr else None,
      text=True, check=False)
  if completed.returncode != 0:
    detail = ''
    if capture_stderr and completed.stderr.strip():
      detail = ': ' + completed.stderr.strip().splitlines()[-1]
    raise StageError(f'{name} failed with exit code '
                     f'{completed.returncode}{detail}')
  return completed.stderr or ''


def student_overrides(config: config_lib.NoisyStudentConfig,
                      teacher: ModelRef, pseudo_label_pattern: str) -> dict:
  """Config overrides that turn the student experiment into NST training.

  Args:
    config: the run config.
    teacher: this generation's teacher.
    pseudo_label_pattern: glob of this generation's pseudo-label shards.

  Returns:
    A nested dict for a YAML config file: the pseudo-labels as training
    data (label_source=pseudo_label, confidence threshold), SpecAugment on
    (the "noise" of Noisy Student), and for soft targets the teacher of the
    online KL.
  """
  task = {
      'train_data': {
          'input_path': pseudo_label_pattern,
          'label_source': 'pseudo_label',
          'min_pseudo_label_confidence': config.min_confidence,
          'spec_augment': {'enabled': True},
      },
  }
  has_soft_targets = hasattr(
      exp_factory.get_exp_config(config.student.experiment).task,
      'teacher_model_dir')
  if config.targets == 'soft':
    if not has_soft_targets:
      raise StageError(
          f'targets=soft needs a distillation experiment (e.g. '
          f'kd_demo_student_soft_full); student.experiment='
          f'{config.student.experiment!r} has no teacher_model_dir')
    task['teacher_model_dir'] = teacher.model_dir
  elif has_soft_targets:
    task['distillation'] = {'kind': 'none'}  # Hard targets: no KL term.
  return {'task': task}


def _train_teacher_stage(config: config_lib.NoisyStudentConfig,
                         model_dir: str) -> Stage:
  done_path = os.path.join(model_dir, TRAIN_MARKER)

  def run():
    started = time.time()
    _run_subprocess('teacher/train',
                    train_command(config.initial_teacher, model_dir))
    _write_json(done_path, {'model_dir': model_dir,
                            'seconds': round(time.time() - started, 1)})

  return Stage('teacher/train', done_path, run)


def _pseudo_label_stage(config: config_lib.NoisyStudentConfig, name: str,
                        teacher: ModelRef, output_dir: str) -> Stage:
  input_path = ','.join(filter(None, [config.unlabeled_input,
                                      config.labeled_input]))

  def run():
    summary = pseudo_label_pipeline.run_pseudo_labeling(
        teacher.model_dir, input_path, output_dir,
        output_prefix=PSEUDO_LABEL_PREFIX, num_shards=config.num_shards,
        beam_size=config.beam_size, batch_size=config.batch_size,
        keep_transcripts=not config.relabel_labeled,
        experiment=teacher.experiment, beam_args=list(config.beam_args))
    print(f'noisy_student: [{name}] {summary["written"]} labeled, '
          f'{summary["rejected"]} rejected, mean confidence '
          f'{summary["mean_confidence"]}', file=sys.stderr, flush=True)
    if not summary['reconciled']:
      raise StageError(f'{name}: counts do not reconcile')

  return Stage(name, os.path.join(output_dir,
                                  PSEUDO_LABEL_PREFIX + '.summary.json'), run)


def _train_student_stage(config: config_lib.NoisyStudentConfig, name: str,
                         generation: int, teacher: ModelRef,
                         pseudo_label_dir: str, model_dir: str) -> Stage:
  done_path = os.path.join(model_dir, TRAIN_MARKER)

  def run():
    started = time.time()
    pattern = os.path.join(pseudo_label_dir,
                           f'{PSEUDO_LABEL_PREFIX}-?????-of-?????.tfrecord')
    overrides_path = os.path.join(model_dir, OVERRIDES_FILE)
    tf.io.gfile.makedirs(model_dir)
    with tf.io.gfile.GFile(overrides_path, 'w') as overrides_file:
      yaml.safe_dump(student_overrides(config, teacher, pattern),
                     overrides_file)
    run_config = config.student.replace(params_override=','.join(filter(
        None, [config.student.params_override,
               _generation_override(config, generation)])))
    _run_subprocess(name, train_command(run_config, model_dir,
                                        extra_config_file=overrides_path))
    _write_json(done_path, {'model_dir': model_dir, 'teacher':
                            teacher.model_dir,
                            'seconds': round(time.time() - started, 1)})

  return Stage(name, done_path, run)


def _generation_override(config: config_lib.NoisyStudentConfig,
                         generation: int) -> str:
  overrides = config.generation_overrides
  return overrides[generation - 1] if generation <= len(overrides) else ''


def _evaluate_stage(config: config_lib.NoisyStudentConfig, name: str,
                    generation: int, model_dir: str) -> Stage:
  eval_path = os.path.join(model_dir, EVAL_FILE)

  def run():
    run_config = config.student.replace(params_override=','.join(filter(
        None, [config.student.params_override,
               _generation_override(config, generation)])))
    stderr = _run_subprocess(
        name, train_command(run_config, model_dir, mode='eval',
                            extra_config_file=os.path.join(
                                model_dir, OVERRIDES_FILE)),
        capture_stderr=True)
    matches = _EVAL_LINE.findall(stderr)
    metrics = yaml.safe_load(matches[-1]) if matches else {}
    _write_json(eval_path, {'metrics': metrics})

  return Stage(name, eval_path, run)


def _finish_stage(name: str, generation: int, teacher: ModelRef,
                  student: ModelRef, pseudo_label_dir: str,
                  marker_path: str) -> Stage:

  def run():
    content = {'generation': generation, 'teacher': teacher.model_dir,
               'student': student.model_dir,
               'pseudo_labels': pseudo_label_dir}
    eval_path = os.path.join(student.model_dir, EVAL_FILE)
    if tf.io.gfile.exists(eval_path):
      with tf.io.gfile.GFile(eval_path) as eval_file:
        content['eval'] = json.load(eval_file)['metrics']
    _write_json(marker_path, content)

  return Stage(name, marker_path, run)


def plan_stages(config: config_lib.NoisyStudentConfig) -> List[Stage]:
  """Lists every stage of the run in order (finished ones included).

  Args:
    config: a validated run config.

  Returns:
    The stages; generation g's teacher is generation g-1's student.
  """
  work_dir = config.work_dir
  stages = []
  if config.initial_teacher.model_dir:
    teacher = ModelRef(config.initial_teacher.model_dir,
                       config.initial_teacher.experiment or
                       'rnnt_demo_teacher')
  else:
    teacher = ModelRef(os.path.join(work_dir, 'teacher'),
                       config.initial_teacher.experiment)
    stages.append(_train_teacher_stage(config, teacher.model_dir))
  for generation in range(1, config.num_generations + 1):
    prefix = f'generation_{generation}'
    generation_dir = os.path.join(work_dir, prefix)
    pseudo_label_dir = os.path.join(generation_dir, 'pseudo_labels')
    student = ModelRef(os.path.join(generation_dir, 'student'),
                       config.student.experiment)
    stages.append(_pseudo_label_stage(config, f'{prefix}/pseudo_label',
                                      teacher, pseudo_label_dir))
    stages.append(_train_student_stage(
        config, f'{prefix}/train_student', generation, teacher,
        pseudo_label_dir, student.model_dir))
    if config.evaluate:
      stages.append(_evaluate_stage(config, f'{prefix}/evaluate', generation,
                                    student.model_dir))
    stages.append(_finish_stage(
        f'{prefix}/finish', generation, teacher, student, pseudo_label_dir,
        os.path.join(generation_dir, GENERATION_MARKER)))
    teacher = student
  return stages


def run_stages(stages: List[Stage],
               stop_after: Optional[str] = None) -> List[str]:
  """Runs the unfinished stages in order.

  Args:
    stages: from `plan_stages`.
    stop_after: stage name after which to stop (tests, debugging).

  Returns:
    Names of the stages that ran (finished ones are skipped).

  Raises:
    StageError: a stage failed or did not leave its done file.
    ValueError: `stop_after` names no stage.
  """
  if stop_after and stop_after not in [stage.name for stage in stages]:
    raise ValueError(f'no stage named {stop_after!r}')
  ran = []
  for stage in stages:
    if tf.io.gfile.exists(stage.done_path):
      print(f'noisy_student: [{stage.name}] already done '
            f'({stage.done_path})', file=sys.stderr, flush=True)
    else:
      print(f'noisy_student: [{stage.name}] starting', file=sys.stderr,
            flush=True)
      stage.run()
      if not tf.io.gfile.exists(stage.done_path):
        raise StageError(f'{stage.name} finished without writing '
                         f'{stage.done_path}')
      ran.append(stage.name)
    if stage.name == stop_after:
      break
  return ran
