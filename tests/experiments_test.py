"""`make experiments`: the plan of the comparison and its results table."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from asr_kd.bin import demo
from asr_kd.bin import experiments
from tests import testing_utils

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parsed_flags(*args):
  return testing_utils.parsed_flags(experiments.define_flags, 'experiments',
                                    *args)


def flag_value(command, name):
  values = [a.split('=', 1)[1] for a in command
            if a.startswith(f'--{name}=')]
  return values[0] if values else None


class ExperimentsPlanTest(tf.test.TestCase):

  def test_full_plan_orders_teachers_before_their_students(self):
    stages = experiments.build_stages(
        '/tmp/wd', parsed_flags('--seeds=0,1', '--train_steps=9'))
    commands = [(stage, command) for stage in stages
                for command in stage.commands()]
    # 6 rows x 2 seeds (train + evaluate each) + 2 pseudo-label passes.
    self.assertLen(stages, 14)
    modules = [command[2] for _, command in commands]
    self.assertEqual(modules.count('asr_kd.bin.pseudo_label'), 2)
    self.assertEqual(modules.count('asr_kd.bin.train'), 12)
    self.assertEqual(modules.count('asr_kd.bin.evaluate'), 12)
    self_teacher = '/tmp/wd/experiments/kd_demo_student_none/seed0'
    position = {}
    for index, (stage, command) in enumerate(commands):
      model_dir = flag_value(command, 'model_dir')
      position.setdefault((command[2], model_dir), index)
      self.assertEqual(command[:2], [sys.executable, '-m'])
      config = flag_value(command, 'config_file')
      if config:
        self.assertTrue(os.path.exists(os.path.join(REPO_ROOT, config)))
        overrides = flag_value(command, 'params_override')
        self.assertIn('trainer.train_steps=9', overrides)
        self.assertIn(f'task.seed={model_dir[-1]}', overrides)
        self.assertEqual(stage.time_file,
                         os.path.join(model_dir, experiments.TIME_FILE))
    # The self-training teacher is trained before it labels or teaches.
    trained = position[('asr_kd.bin.train', self_teacher)]
    self_labels = [i for i, (_, c) in enumerate(commands)
                   if flag_value(c, 'model_dir') == self_teacher and
                   c[2] == 'asr_kd.bin.pseudo_label'][0]
    self.assertLess(trained, self_labels)
    soft_self = [c for _, c in commands
                 if 'kd_demo_self_soft' in (flag_value(c, 'model_dir') or '')
                 and c[2] == 'asr_kd.bin.train'][0]
    self.assertIn(f'task.teacher_model_dir={self_teacher}',
                  flag_value(soft_self, 'params_override'))
    hard = [c for _, c in commands
            if 'kd_demo_student_hard' in (flag_value(c, 'model_dir') or '')
            and c[2] == 'asr_kd.bin.train'][0]
    self.assertIn('task.train_data.input_path=/tmp/wd/pseudo_labels/teacher/',
                  flag_value(hard, 'params_override'))

  def test_selected_self_rows_still_train_their_teacher_first(self):
    stages = experiments.build_stages(
        '/tmp/wd', parsed_flags('--seeds=3', '--rows=kd_demo_self_soft'))
    self.assertLen(stages, 2)
    first = stages[0].commands()[0]
    self.assertEqual(flag_value(first, 'model_dir'),
                     '/tmp/wd/experiments/kd_demo_student_none/seed3')

  def test_pseudo_label_flags_are_accepted(self):
    stage = experiments.pseudo_label_stage('/tmp/wd', 'teacher', ['0'],
                                           parsed_flags())
    command = stage.commands()[0]
    help_text = subprocess.run(
        [sys.executable, '-m', command[2], '--helpfull'], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120).stdout
    for argument in command[3:]:
      self.assertIn(argument.split('=', 1)[0], help_text)

  def test_summary_table_aggregates_seeds(self):
    work_dir = tempfile.mkdtemp()
    wers = [0.30, 0.34, 0.38]
    for seed, wer in enumerate(wers):
      model_dir = experiments.run_dir(work_dir, 'kd_demo_student_hard',
                                      str(seed))
      os.makedirs(model_dir)
      with open(os.path.join(model_dir, 'test_summary.json'), 'w') as f:
        json.dump({'wer': wer}, f)
      demo.add_wall_time(os.path.join(model_dir, experiments.TIME_FILE), 60.0)
      demo.add_wall_time(os.path.join(model_dir, experiments.TIME_FILE),
                         60.0 * seed)
    table = experiments.summarize(work_dir, ['0', '1', '2'])
    rows = [line for line in table.splitlines() if 'hard targets' in line]
    self.assertLen(rows, 1)
    expected_std = np.std([30.0, 34.0, 38.0], ddof=1)
    self.assertIn(f'34.00 +- {expected_std:.2f}', rows[0])
    self.assertIn('30.00, 34.00, 38.00', rows[0])
    self.assertIn('| 2.0 |', rows[0])  # Mean of 1, 2 and 3 minutes.
    self.assertNotIn('self-training', table)


if __name__ == '__main__':
  tf.test.main()
