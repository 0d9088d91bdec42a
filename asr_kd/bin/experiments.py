r"""The soft- vs hard-target comparison on the demo corpus (`make experiments`).

  python -m asr_kd.bin.experiments --work_dir=demo_run --seeds=0,1,2 \
      [--train_steps=N] [--beam_size=8]

Needs the demo's teacher, tokenizer and TFRecords (`make demo`). Runs, with
the configs under configs/experiments/:

  (a) full-context teacher -> streaming student: no distillation, hard
      targets (teacher pseudo-labels of train + unlabeled), full-vocabulary
      soft targets, 3-class soft targets;
  (b) self-training with a student-sized teacher (the seed-0 run of "no
      distillation"): hard targets, soft targets.

Every run is trained, then evaluated (greedy) on the test split, under
WORK_DIR/experiments/ROW/seedS; each command is printed before it runs, and
a run whose test_summary.json exists is skipped (an interrupted comparison
continues where it stopped). The results table (WER mean +- std over seeds,
parameters, training time) is printed and written to
WORK_DIR/experiments/results.md.
"""

import json
import os
import time
from typing import List, NamedTuple, Optional

from absl import app
from absl import flags
import numpy as np

from asr_kd.bin import demo

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS):
  flags.DEFINE_string('work_dir', 'demo_run', 'The demo folder (make demo).',
                      flag_values=flag_values)
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'task.seed of each repetition.',
                    flag_values=flag_values)
  flags.DEFINE_list('rows', None, 'Only these rows (default: all), e.g. '
                    'kd_demo_student_none,kd_demo_student_hard.',
                    flag_values=flag_values)
  flags.DEFINE_integer('train_steps', None, 'Override every run\'s '
                       'trainer.train_steps.', flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 8, 'Beam width of the pseudo-labeler '
                       '(beam search makes the hard targets).',
                       flag_values=flag_values)


class Row(NamedTuple):
  # exp_factory name, configs/experiments/<name>.yaml, folder under
  # WORK_DIR/experiments/ and key of --rows.
  name: str
  description: str
  teacher: Optional[str]  # 'teacher', 'self' or None: whose outputs it uses.
  hard: bool = False  # Trains on the teacher's pseudo-labels (else online KL).


ROWS = (
    Row('kd_demo_student_none', '(a) streaming student, no distillation',
        None),
    Row('kd_demo_student_hard', '(a) hard targets (teacher pseudo-labels)',
        'teacher', hard=True),
    Row('kd_demo_student_soft_full', '(a) soft targets, full vocabulary',
        'teacher'),
    Row('kd_demo_student_soft_3class', '(a) soft targets, 3-class',
        'teacher'),
    Row('kd_demo_self_hard', '(b) self-training, hard targets', 'self',
        hard=True),
    Row('kd_demo_self_soft',
        '(b) self-training, soft targets (full vocabulary)', 'self'),
)
ROW_BY_NAME = {row.name: row for row in ROWS}
# Wall seconds of a run's training + test evaluation, in its model_dir.
TIME_FILE = 'run_time.json'
# The self-training teacher: the first seed's run of this row.
SELF_TEACHER_ROW = 'kd_demo_student_none'


def run_dir(work_dir: str, row: str, seed: str) -> str:
  return os.path.join(work_dir, 'experiments', row, f'seed{seed}')


def teacher_dir(work_dir: str, teacher: str, seeds: List[str]) -> str:
  if teacher == 'teacher':
    return os.path.join(work_dir, 'teacher')
  return run_dir(work_dir, SELF_TEACHER_ROW, seeds[0])


def pseudo_label_dir(work_dir: str, teacher: str) -> str:
  return os.path.join(work_dir, 'pseudo_labels', teacher)


def pseudo_label_stage(work_dir: str, teacher: str, seeds: List[str],
                       options: flags.FlagValues) -> demo.Stage:
  records = os.path.join(work_dir, 'tfrecords')
  output_dir = pseudo_label_dir(work_dir, teacher)
  return demo.Stage(
      f'Pseudo-label train + unlabeled audio with the {teacher} model',
      os.path.join(output_dir, 'pseudo.summary.json'),
      lambda: [demo.python_module(
          'asr_kd.bin.pseudo_label',
          f'--model_dir={teacher_dir(work_dir, teacher, seeds)}',
          f'--input={records}/train-*,{records}/unlabeled-*',
          f'--output_dir={output_dir}', '--num_shards=8',
          '--decoder=beam', f'--beam_size={options.beam_size}')])


def row_overrides(work_dir: str, row: Row, seed: str, seeds: List[str]) -> str:
  overrides = demo.data_overrides(work_dir) + f',task.seed={seed}'
  if row.hard:
    overrides += (f',task.train_data.input_path='
                  f'{pseudo_label_dir(work_dir, row.teacher)}/*.tfrecord*')
  elif row.teacher:
    overrides += (f',task.teacher_model_dir='
                  f'{teacher_dir(work_dir, row.teacher, seeds)}')
  return overrides


def run_stage(work_dir: str, row: Row, seed: str, seeds: List[str],
              options: flags.FlagValues) -> demo.Stage:
  model_dir = run_dir(work_dir, row.name, seed)
  records = os.path.join(work_dir, 'tfrecords')
  return demo.Stage(
      f'{row.description}, seed {seed}',
      os.path.join(model_dir, 'test_summary.json'),
      lambda: [
          demo.train_command(
              row.name, f'configs/experiments/{row.name}.yaml', model_dir,
              row_overrides(work_dir, row, seed, seeds), options.train_steps),
          demo.evaluate_command(model_dir, records)],
      time_file=os.path.join(model_dir, TIME_FILE))


def build_stages(work_dir: str,
                 options: flags.FlagValues = FLAGS) -> List[demo.Stage]:
  """Pseudo-labeling and run stages in dependency order."""
  seeds = list(options.seeds)
  rows = [row for row in ROWS if not options.rows or row.name in options.rows]
  stages = []
  if (any(row.teacher == 'self' for row in rows) and
      ROW_BY_NAME[SELF_TEACHER_ROW] not in rows):
    # The self-training teacher must exist first (skipped once it does).
    stages.append(run_stage(work_dir, ROW_BY_NAME[SELF_TEACHER_ROW], seeds[0],
                            seeds, options))
  teachers_labeled = set()
  for row in rows:
    if row.hard and row.teacher not in teachers_labeled:
      stages.append(pseudo_label_stage(work_dir, row.teacher, seeds, options))
      teachers_labeled.add(row.teacher)
    stages += [run_stage(work_dir, row, seed, seeds, options)
               for seed in seeds]
  return stages


def summarize(work_dir: str, seeds: List[str]) -> str:
  """Markdown table of every row with at least one evaluated seed."""
  lines = ['| row | seeds | test WER % (mean +- std) | per seed | '
           'parameters | train + test time per run (min) |',
           '|---|---|---|---|---|---|']
  for row in ROWS:
    wers, minutes, parameters = [], [], None
    for seed in seeds:
      model_dir = run_dir(work_dir, row.name, seed)
      summary_path = os.path.join(model_dir, 'test_summary.json')
      if not os.path.exists(summary_path):
        continue
      with open(summary_path) as summary_file:
        wers.append(100.0 * json.load(summary_file)['wer'])
      time_path = os.path.join(model_dir, TIME_FILE)
      if os.path.exists(time_path):
        with open(time_path) as time_file:
          minutes.append(json.load(time_file)['seconds'] / 60.0)
      parameters = parameters or count_parameters(model_dir)
    if not wers:
      continue
    spread = np.std(wers, ddof=1) if len(wers) > 1 else float('nan')
    train_minutes = f'{np.mean(minutes):.1f}' if minutes else '?'
    lines.append(
        f'| {row.description} | {len(wers)} | {np.mean(wers):.2f} +- '
        f'{spread:.2f} | {", ".join(f"{w:.2f}" for w in wers)} | '
        f'{parameters or "?"} | {train_minutes} |')
  return '\n'.join(lines)


def count_parameters(model_dir: str) -> Optional[str]:
  """Trainable parameters of a run's model, formatted, from its checkpoint."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  checkpoint = tf.train.latest_checkpoint(model_dir)
  if not checkpoint:
    return None
  total = 0
  # Feature statistics are not trained; the auxiliary heads are not used
  # for decoding.
  skipped = ('.OPTIMIZER_SLOT', 'feature_', 'ctc_head', 'prediction_lm_head',
             'simple_am_head', 'simple_lm_head')
  for name, shape in tf.train.list_variables(checkpoint):
    if name.startswith('model/') and not any(part in name for part in skipped):
      total += int(np.prod(shape))
  return f'{total:,}'


def main(argv):
  del argv
  work_dir = FLAGS.work_dir
  if not os.path.exists(os.path.join(work_dir, 'teacher', 'checkpoint')):
    raise app.UsageError(f'no trained teacher in {work_dir}/teacher: run '
                         '`make demo` (or python -m asr_kd.bin.demo) first.')
  unknown = set(FLAGS.rows or []) - set(ROW_BY_NAME)
  if unknown:
    raise app.UsageError(f'unknown --rows {sorted(unknown)}; rows: '
                         f'{list(ROW_BY_NAME)}')
  start = time.time()
  demo.run_stages(build_stages(work_dir), start)
  table = summarize(work_dir, list(FLAGS.seeds))
  with open(os.path.join(work_dir, 'experiments', 'results.md'), 'w') as out:
    out.write(table + '\n')
  print(table, flush=True)
  print(f'experiments: finished in {time.time() - start:.0f} s', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
