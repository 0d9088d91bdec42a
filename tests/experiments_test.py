"""`make experiments`: the comparison's design, its configs and its run loop."""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.bin import experiments
from asr_kd.experiments import results
from asr_kd.experiments import rows as rows_lib
from asr_kd.experiments import stages
from asr_kd.modeling import rnnt_model
from tests import testing_utils

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK_DIR = '/tmp/wd'
# The demo tokenizer's size (tfrecords_tools.train_tokenizer --vocab_size).
DEMO_VOCAB_SIZE = 64


def parsed_flags(*args):
  return testing_utils.parsed_flags(experiments.define_flags, 'experiments',
                                    *args)


def flag_value(command, name):
  values = [a.split('=', 1)[1] for a in command
            if a.startswith(f'--{name}=')]
  return values[0] if values else None


def overrides_of(command):
  """--params_override of a train command as a dict."""
  return dict(part.split('=', 1)
              for part in flag_value(command, 'params_override').split(','))


def train_commands(plan):
  """{model_dir: train command} of the plan's runs (no demo records here:
  evaluate commands are only built where test-* exists)."""
  commands = {}
  for planned in plan:
    if planned.run:
      command = planned.stage.commands()[0]
      commands[planned.run.model_dir] = command
  return commands


def resolved_config(command):
  """The experiment config asr_kd.bin.train would build from `command`."""
  config = exp_factory.get_exp_config(flag_value(command, 'experiment'))
  config = hyperparams.override_params_dict(
      config, os.path.join(REPO_ROOT, flag_value(command, 'config_file')),
      is_strict=True)
  config = hyperparams.override_params_dict(
      config, flag_value(command, 'params_override'), is_strict=True)
  config.validate()
  return config


class ExperimentsPlanTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.plan = experiments.build_plan(
        WORK_DIR, parsed_flags('--seeds=0,1', '--train_steps=9',
                               '--generations=2'))
    cls.runs = [planned.run for planned in cls.plan if planned.run]
    cls.commands = train_commands(cls.plan)

  def runs_of(self, row, seed=None):
    return [run for run in self.runs if run.row.name == row and
            (seed is None or run.seed == seed)]

  def test_data_design(self):
    split = self.plan[0].stage.commands()[0]
    self.assertEqual(split[2], 'asr_kd.bin.split_labeled')
    self.assertEqual(flag_value(split, 'input'), f'{WORK_DIR}/tfrecords/train-*')
    self.assertEqual(float(flag_value(split, 'labeled_fraction')), 0.2)
    labeled = f'{WORK_DIR}/experiments/data/labeled-*.tfrecord*'
    for seed in (0, 1):
      none, = self.runs_of('kd_demo_student_none', seed)
      none_overrides = overrides_of(self.commands[none.model_dir])
      self.assertEqual(none_overrides['task.train_data.input_path'], labeled)
      self.assertNotIn('task.train_data.label_source', none_overrides)
      self.assertNotIn('task.teacher_model_dir', none_overrides)
      # Hard and soft rows read the very same records, as pseudo-labels.
      data = set()
      for row in ('kd_demo_student_hard', 'kd_demo_student_soft_full',
                  'kd_demo_student_soft_3class'):
        run, = self.runs_of(row, seed)
        overrides = overrides_of(self.commands[run.model_dir])
        data.add((overrides['task.train_data.input_path'],
                  overrides['task.train_data.label_source']))
        teacher = overrides.get('task.teacher_model_dir')
        if row.endswith('hard'):
          self.assertIsNone(teacher)
        else:
          self.assertEqual(teacher,
                           f'{WORK_DIR}/experiments/kd_demo_big_teacher')
      self.assertEqual(data, {(
          f'{WORK_DIR}/experiments/pseudo_labels/kd_demo_big_teacher/'
          '*.tfrecord*', 'pseudo_label')})

  def test_pseudo_labels_keep_subset_transcripts_and_decode_the_pool(self):
    label_stages = [planned.stage for planned in self.plan
                    if not planned.run and
                    planned.stage.name.startswith('Pseudo-label')]
    # The big teacher, then per seed generation 0 and each track's
    # generation 1 label the pool (generation 2's students teach no one).
    self.assertLen(label_stages, 1 + 2 * 3)
    for stage in label_stages:
      labeled, pool = stage.commands()
      self.assertEqual(flag_value(labeled, 'output_dir'),
                       flag_value(pool, 'output_dir'))
      self.assertEqual(flag_value(labeled, 'input'),
                       f'{WORK_DIR}/experiments/data/labeled-*')
      self.assertIn('--keep_transcripts', labeled)
      self.assertEqual(flag_value(pool, 'input'),
                       f'{WORK_DIR}/experiments/data/pool-*')
      self.assertNotIn('--keep_transcripts', pool)
      self.assertNotEqual(flag_value(labeled, 'output_prefix'),
                          flag_value(pool, 'output_prefix'))

  def test_stored_row_reads_the_teachers_stored_targets(self):
    stages_by_name = {planned.stage.name: planned.stage
                      for planned in self.plan if not planned.run}
    store = stages_by_name['Store the targets of experiments/'
                           'kd_demo_big_teacher']
    targets_dir = (f'{WORK_DIR}/experiments/teacher_targets/'
                   'kd_demo_big_teacher')
    commands = store.commands()
    self.assertEqual([command[2] for command in commands],
                     ['asr_kd.bin.teacher_targets'] * 2)
    self.assertEqual([flag_value(command, 'input') for command in commands],
                     [f'{WORK_DIR}/experiments/data/labeled-*',
                      f'{WORK_DIR}/experiments/data/pool-*'])
    for command in commands:
      self.assertEqual(flag_value(command, 'output_dir'), targets_dir)
      self.assertEqual(flag_value(command, 'top_k'), '8')
    for seed in (0, 1):
      run, = self.runs_of('kd_demo_student_soft_stored', seed)
      command = self.commands[run.model_dir]
      overrides = overrides_of(command)
      self.assertEqual(overrides['task.train_data.input_path'],
                       f'{targets_dir}/*.tfrecord*')
      self.assertNotIn('task.teacher_model_dir', overrides)
      config = resolved_config(command)
      self.assertEqual(config.task.distillation.targets, 'stored')
      self.assertEqual(config.task.distillation.kind, 'full')
      self.assertEqual(config.task.distillation.top_k, 8)
      self.assertEqual(config.task.train_data.label_source, 'pseudo_label')
      self.assertFalse(config.task.train_data.speed_perturbation.enabled)
      # Everything else is the online full-vocabulary row's.
      online, = self.runs_of('kd_demo_student_soft_full', seed)
      online_config = resolved_config(self.commands[online.model_dir])
      self.assertEqual(config.trainer.as_dict(),
                       online_config.trainer.as_dict())
      self.assertEqual(config.task.model.as_dict(),
                       online_config.task.model.as_dict())

  def test_every_model_is_trained_before_it_labels_or_teaches(self):
    trained = set()
    for planned in self.plan:
      if planned.run:
        run = planned.run
        if run.teacher_dir:
          self.assertIn(run.teacher_dir, trained, run.model_dir)
        trained.add(run.model_dir)
      else:
        for command in planned.stage.commands():
          if command[2] == 'asr_kd.bin.pseudo_label':
            self.assertIn(flag_value(command, 'model_dir'), trained)

  def test_every_student_row_has_the_same_steps_and_seed_rule(self):
    for run in self.runs:
      command = self.commands[run.model_dir]
      self.assertTrue(os.path.exists(os.path.join(
          REPO_ROOT, flag_value(command, 'config_file'))))
      overrides = overrides_of(command)
      if run.row.comparison == 'teacher':
        self.assertNotIn('trainer.train_steps', overrides)
        self.assertNotIn('task.seed', overrides)
        continue
      self.assertEqual(overrides['trainer.train_steps'], '9')
      self.assertEqual(int(overrides['task.seed']), run.task_seed)
      if run.generation is None:
        self.assertEqual(run.task_seed, run.seed)

  def test_self_training_generations_never_share_a_teacher_seed(self):
    seed_of = {run.model_dir: run.task_seed for run in self.runs}
    teacher_of = {run.model_dir: run.teacher_dir for run in self.runs}
    for row in ('kd_demo_self_hard', 'kd_demo_self_soft'):
      for seed in (0, 1):
        generations = self.runs_of(row, seed)
        self.assertEqual([run.generation for run in generations], [1, 2])
        # Generation 1 learns from the seed's no-distillation run,
        # generation 2 from generation 1.
        self.assertEqual(generations[0].teacher_dir,
                         experiments.run_dir(WORK_DIR, 'kd_demo_student_none',
                                             seed))
        self.assertEqual(generations[1].teacher_dir, generations[0].model_dir)
        for run in generations:
          self.assertEqual(run.task_seed,
                           seed_of[run.teacher_dir] +
                           experiments.SELF_TRAINING_SEED_STRIDE)
          ancestor = run.teacher_dir
          while ancestor:
            self.assertNotEqual(run.task_seed, seed_of[ancestor])
            ancestor = teacher_of[ancestor]
          self.assertEqual(run.labels_dir, experiments.pseudo_label_dir(
              WORK_DIR, run.teacher_dir))
          overrides = overrides_of(self.commands[run.model_dir])
          self.assertEqual(overrides.get('task.teacher_model_dir'),
                           run.teacher_dir if row.endswith('soft') else None)

  def test_probe_covers_right_shift_times_alpha_on_the_first_seed(self):
    probes = [run for run in self.runs if run.row.comparison == 'probe' and
              run.row != rows_lib.SOFT_ONLINE_TOP_K]
    own = exp_factory.get_exp_config(
        'kd_demo_student_soft_full').task.distillation
    cells = {(own.teacher_right_shift, own.alpha)}
    for run in probes:
      self.assertEqual(run.seed, 0)
      self.assertEqual(run.row.experiment, 'kd_demo_student_soft_full')
      overrides = overrides_of(self.commands[run.model_dir])
      cells.add((int(overrides['task.distillation.teacher_right_shift']),
                 float(overrides['task.distillation.alpha'])))
    self.assertLen(probes, 11)
    self.assertEqual(cells, {(shift, alpha) for shift in (0, 1, 2, 4)
                             for alpha in (0.001, 0.01, 0.1)})

  def test_online_top_k_probe_is_the_soft_row_with_the_stored_k(self):
    top_k_runs = [run for run in self.runs
                  if run.row == rows_lib.SOFT_ONLINE_TOP_K]
    self.assertEqual([run.seed for run in top_k_runs], [0])
    soft_run = next(run for run in self.runs
                    if run.row.name == 'kd_demo_student_soft_full' and
                    run.seed == 0)
    probe_overrides = overrides_of(self.commands[top_k_runs[0].model_dir])
    soft_overrides = overrides_of(self.commands[soft_run.model_dir])
    self.assertEqual(probe_overrides.pop('task.distillation.online_top_k'),
                     str(rows_lib.STORED_TOP_K))
    # Everything else (data, labels, teacher, seed) is the soft row's.
    self.assertEqual(probe_overrides, soft_overrides)

  def test_selected_self_rows_still_train_their_teachers_first(self):
    plan = experiments.build_plan(
        WORK_DIR, parsed_flags('--seeds=3', '--rows=kd_demo_self_soft',
                               '--generations=1'))
    runs = [planned.run for planned in plan if planned.run]
    self.assertEqual([(run.row.name, run.task_seed) for run in runs],
                     [('kd_demo_student_none', 3), ('kd_demo_self_soft', 103)])
    # No big teacher: nothing selected uses it.
    self.assertNotIn('kd_demo_big_teacher',
                     ' '.join(planned.stage.name for planned in plan))

  def test_recorded_runs_rerun_only_when_a_stage_that_runs_reads_them(self):
    work_dir = tempfile.mkdtemp()  # A new machine: no stage is done.

    def to_run(options, unrecorded):
      plan = experiments.build_plan(work_dir, parsed_flags(*options))
      recorded = {experiments.run_key(planned.run) for planned in plan
                  if planned.run and planned.run.row.name not in unrecorded}
      markers = experiments.stages_to_run(plan, recorded)
      return sorted(planned.stage.name.split(' with ')[0].split(' (')[0]
                    for planned in plan if planned.stage.done_marker in
                    markers)

    rows_a = ('--seeds=0', '--rows=kd_demo_student_none,kd_demo_student_hard,'
              'kd_demo_student_soft_full')
    split = 'Split the training audio into a labeled subset and a pool'
    labels = 'Pseudo-label the pool'
    teacher = 'kd_demo_big_teacher seed 0'
    self.assertEqual(to_run(rows_a, ()), [])
    self.assertEqual(to_run(rows_a, ('kd_demo_student_none',)),
                     sorted([split, 'kd_demo_student_none seed 0']))
    # The soft row reads the teacher's labels and loads the teacher.
    self.assertEqual(to_run(rows_a, ('kd_demo_student_soft_full',)),
                     sorted([split, teacher, labels,
                             'kd_demo_student_soft_full seed 0']))
    self.assertEqual(to_run(rows_a, ('kd_demo_student_hard',)),
                     sorted([split, teacher, labels,
                             'kd_demo_student_hard seed 0']))
    # Self-training: the last generation's labeler and every model before
    # it are trained again; nothing of a fully recorded chain is.
    self_rows = ('--seeds=0', '--rows=kd_demo_self_hard', '--generations=2')
    self.assertEqual(to_run(self_rows, ()), [])
    plan = experiments.build_plan(work_dir, parsed_flags(*self_rows))
    last = plan[-1].run
    recorded = {experiments.run_key(planned.run) for planned in plan
                if planned.run and planned.run != last}
    markers = experiments.stages_to_run(plan, recorded)
    self.assertEqual(markers, {planned.stage.done_marker for planned in plan})

  def test_evaluation_covers_the_splits_there_are_records_of(self):
    work_dir = tempfile.mkdtemp()
    os.makedirs(os.path.join(work_dir, 'tfrecords'))
    for split in ('test', 'dev', 'train'):
      open(os.path.join(work_dir, 'tfrecords', f'{split}-00000-of-00001'),
           'w').close()
    plan = experiments.build_plan(work_dir, parsed_flags(
        '--seeds=0', '--rows=kd_demo_student_none'))
    commands = plan[1].stage.commands()
    evaluated = [flag_value(command, 'summary_output') for command in
                 commands if command[2] == 'asr_kd.bin.evaluate']
    model_dir = experiments.run_dir(work_dir, 'kd_demo_student_none', 0)
    self.assertEqual(evaluated, [stages.summary_path(model_dir, 'test'),
                                 stages.summary_path(model_dir, 'dev')])

  def test_plan_commands_name_real_flags(self):
    flag_names = {}
    for planned in self.plan:
      for command in planned.stage.commands():
        flag_names.setdefault(command[2], set()).update(
            argument.split('=', 1)[0][2:] for argument in command[3:])
    self.assertCountEqual(flag_names, ['asr_kd.bin.split_labeled',
                                       'asr_kd.bin.train',
                                       'asr_kd.bin.pseudo_label',
                                       'asr_kd.bin.teacher_targets'])
    for module in ('asr_kd.bin.split_labeled', 'asr_kd.bin.pseudo_label',
                   'asr_kd.bin.teacher_targets'):
      help_text = subprocess.run(
          [sys.executable, '-m', module, '--helpfull'], cwd=REPO_ROOT,
          capture_output=True, text=True, timeout=300).stdout
      for name in flag_names[module]:
        self.assertRegex(help_text, rf'--(\[no\])?{name}\b')


class ExperimentsConfigsTest(tf.test.TestCase):

  def test_rows_share_steps_and_batches_and_read_their_data(self):
    plan = experiments.build_plan(WORK_DIR, parsed_flags(
        '--seeds=0', '--generations=1', '--probe_right_shifts=4',
        '--probe_alphas=0.1'))
    schedules, models = {}, {}
    for planned in plan:
      run = planned.run
      if not run or run.row.comparison == 'teacher':
        continue
      config = resolved_config(planned.stage.commands()[0])
      train_data = config.task.train_data
      schedules[run.row.name] = (
          config.trainer.train_steps, train_data.global_batch_size,
          tuple(train_data.bucket_boundaries),
          tuple(train_data.bucket_batch_sizes),
          train_data.shuffle_buffer_size)
      models[run.row.name] = str(config.task.model.as_dict())
      self.assertEqual(config.task.seed, run.task_seed)
      self.assertIsNone(train_data.seed)  # The data seed follows task.seed.
      expected_source = ('transcript' if run.row.targets == 'none' else
                         'pseudo_label')
      self.assertEqual(train_data.label_source, expected_source)
      if run.row.targets == 'soft':
        self.assertEqual(config.task.teacher_model_dir, run.teacher_dir)
      if run.row == rows_lib.SOFT_ONLINE_TOP_K:
        self.assertEqual(config.task.distillation.online_top_k,
                         rows_lib.STORED_TOP_K)
      elif run.row.comparison == 'probe':
        self.assertEqual(config.task.distillation.teacher_right_shift, 4)
        self.assertAllClose(config.task.distillation.alpha, 0.1)
    self.assertLen(schedules, 5 + 2 + 2)
    self.assertLen(set(schedules.values()), 1, schedules)
    self.assertGreater(next(iter(schedules.values()))[0], 0)
    # One student model for every row, self-training included.
    self.assertLen(set(models.values()), 1)

  def test_big_teacher_has_at_least_3x_the_students_parameters(self):
    plan = experiments.build_plan(WORK_DIR, parsed_flags(
        '--seeds=0', '--rows=kd_demo_student_soft_full',
        '--probe_right_shifts=0', '--probe_alphas=0.01'))
    configs = {planned.run.row.comparison: resolved_config(
        planned.stage.commands()[0]) for planned in plan if planned.run}
    teacher, student = configs['teacher'], configs['a']
    self.assertFalse(teacher.task.model.encoder.causal)
    self.assertTrue(student.task.model.encoder.causal)
    self.assertEqual(teacher.task.train_data.input_path,
                     f'{WORK_DIR}/experiments/data/labeled-*.tfrecord*')

    def parameters(config):
      model = rnnt_model.RnntModel(config.task.model,
                                   vocab_size=DEMO_VOCAB_SIZE, name='rnnt')
      model.build_for_checkpoint()
      return sum(int(variable.shape.num_elements())
                 for variable in model.trainable_variables)

    teacher_parameters = parameters(teacher)
    student_parameters = parameters(student)
    self.assertGreater(student_parameters, 100_000)
    self.assertGreaterEqual(teacher_parameters / student_parameters, 3.0)


def fake_run_command(model_dir, wer, counter):
  """A stand-in for train + evaluate: params.yaml and split summaries."""
  script = (
      'import json, os, sys, yaml\n'
      f'model_dir, counter = {model_dir!r}, {counter!r}\n'
      'os.makedirs(model_dir, exist_ok=True)\n'
      "open(counter, 'a').write('x')\n"
      "yaml.safe_dump({'task': {'seed': 7}, 'trainer': {'train_steps': 9}},"
      " open(os.path.join(model_dir, 'params.yaml'), 'w'))\n"
      f"for split, wer in {wer!r}.items():\n"
      "  json.dump({'wer': wer, 'utterances': 3}, open(os.path.join("
      "model_dir, split + '_summary.json'), 'w'))\n")
  return [sys.executable, '-c', script]


class RunPlanTest(tf.test.TestCase):

  def fake_plan(self, work_dir, wers):
    plan = []
    for index, (row, wer) in enumerate(wers):
      model_dir = experiments.run_dir(work_dir, row.name, 0)
      counter = os.path.join(work_dir, f'count{index}')
      run = experiments.Run(row, 0, None, 0, model_dir, None, None)
      plan.append(experiments.PlannedStage(stages.Stage(
          row.name, os.path.join(model_dir, experiments.RECORD_FILE),
          lambda d=model_dir, w=wer, c=counter: [fake_run_command(d, w, c)],
          time_file=os.path.join(model_dir, experiments.TIME_FILE)), run))
    return plan

  def test_runs_are_recorded_reported_and_resumed(self):
    work_dir = tempfile.mkdtemp()
    out = os.path.join(work_dir, 'docs')
    paths = [os.path.join(out, name) for name in
             ('experiments.json', 'experiments.md', 'experiments.png')]
    none_row, hard_row = rows_lib.ROWS_A[:2]
    plan = self.fake_plan(work_dir, [
        (none_row, {'test': 0.20, 'ood': 0.30, 'dev': 0.19}),
        (hard_row, {'test': 0.15, 'dev': 0.14})])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      records = experiments.run_plan(plan, *paths)
    lines = [line for line in printed.getvalue().splitlines()
             if line.startswith('[')]
    self.assertLen(lines, 2)
    self.assertRegex(lines[0], r'^\[1/2\] kd_demo_student_none: test 20\.0% '
                     r'ood 30\.0% dev 19\.0% \(\d+ s\); ETA \d+ s$')
    self.assertRegex(lines[1], r'^\[2/2\] kd_demo_student_hard: test 15\.0% '
                     r'dev 14\.0% .*; done$')
    saved = results.load(paths[0])
    self.assertEqual(saved, records)
    self.assertEqual([(r['row'], r['wer']['test'], r['wer']['ood'])
                      for r in saved],
                     [('kd_demo_student_none', 20.0, 30.0),
                      ('kd_demo_student_hard', 15.0, None)])
    for record in saved:
      self.assertEqual(record['commit'], results.git_commit(REPO_ROOT))
      self.assertEqual((record['train_steps'], record['task_seed']), (9, 7))
      self.assertGreater(record['wall_seconds'], 0.0)
      # The fake run's interpreter start-up, at least.
      self.assertGreater(record['cpu_seconds'], 0.0)
    self.assertEqual(saved[1]['baseline'], 'kd_demo_student_none')
    with open(paths[1]) as markdown:
      self.assertIn('| (a) hard targets | `kd_demo_student_hard` | 1 | 15.00 |',
                    markdown.read())
    with open(paths[2], 'rb') as png:
      self.assertEqual(png.read(8), b'\x89PNG\r\n\x1a\n')
    # Resume: nothing reruns, and the records there are kept as they are.
    saved[0]['commit'] = 'kept'
    saved.append(dict(saved[1], seed=5))  # A run of another plan.
    results.save(paths[0], saved)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      resumed = experiments.run_plan(plan, *paths)
    self.assertEqual(resumed, saved)
    self.assertRegex(printed.getvalue(),
                     r'\[1/2\] kd_demo_student_none \(done already\): test '
                     r'20\.0% .*; done\n')
    for index in range(2):
      with open(os.path.join(work_dir, f'count{index}')) as counter:
        self.assertEqual(counter.read(), 'x')
    # On a new machine (no run folders), recorded runs are not run again.
    new_work_dir = tempfile.mkdtemp()
    new_plan = self.fake_plan(new_work_dir, [
        (none_row, {'test': 0.25}), (rows_lib.ROWS_A[2], {'test': 0.1})])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      continued = experiments.run_plan(new_plan, *paths)
    self.assertRegex(printed.getvalue(),
                     r'\[1/2\] kd_demo_student_none \(recorded already\): '
                     r'test 20\.0% ')
    self.assertFalse(os.path.exists(os.path.join(new_work_dir, 'count0')))
    self.assertTrue(os.path.exists(os.path.join(new_work_dir, 'count1')))
    self.assertEqual(continued[:len(saved)], saved)
    self.assertEqual(continued[-1]['row'], rows_lib.ROWS_A[2].name)
    results.save(paths[0], records)
    # What only recorded runs read is not made again; what a run left reads
    # is.
    labels_work_dir = tempfile.mkdtemp()
    labels_plan = []
    for index, row in enumerate((none_row, rows_lib.ROWS_A[2])):
      labels = os.path.join(labels_work_dir, f'labels{index}')
      marker = os.path.join(labels, 'done')
      labels_plan.append(experiments.PlannedStage(stages.Stage(
          f'labels {index}', marker,
          lambda m=marker: [[sys.executable, '-c', 'import os, sys; '
                             f'os.makedirs(os.path.dirname({m!r})); '
                             f'open({m!r}, "w").close()']]), None, labels))
      run_stage = self.fake_plan(labels_work_dir, [(row, {'test': 0.1})])[0]
      labels_plan.append(run_stage._replace(makes=run_stage.run.model_dir,
                                            loads=(labels,)))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
      experiments.run_plan(labels_plan, *paths)
    self.assertIn('labels 0: not needed (all that reads it is recorded)',
                  printed.getvalue())
    self.assertFalse(os.path.exists(labels_plan[0].stage.done_marker))
    self.assertTrue(os.path.exists(labels_plan[2].stage.done_marker))
    results.save(paths[0], records)
    # A recorded model trained again because a run left reads it must
    # reproduce its record; if not, nothing after it runs.
    for teacher_wer, reproduced in ((0.20, True), (0.21, False)):
      rerun_work_dir = tempfile.mkdtemp()
      rerun_plan = self.fake_plan(rerun_work_dir, [
          (none_row, {'test': teacher_wer, 'ood': 0.30, 'dev': 0.19}),
          (rows_lib.ROWS_A[2], {'test': 0.1})])
      rerun_plan[1] = rerun_plan[1]._replace(
          loads=(rerun_plan[0].run.model_dir,))
      rerun_plan[0] = rerun_plan[0]._replace(
          makes=rerun_plan[0].run.model_dir)
      with contextlib.redirect_stdout(io.StringIO()):
        if reproduced:
          experiments.run_plan(rerun_plan, *paths)
        else:
          with self.assertRaisesRegex(
              experiments.NotReproducedError,
              r'kd_demo_student_none seed 0, .* gives test 21\.00% ood '
              r'30\.00% dev 19\.00% .* has test 20\.00% ood 30\.00% dev '
              r'19\.00% .*did not reproduce'):
            experiments.run_plan(rerun_plan, *paths)
      self.assertTrue(os.path.exists(os.path.join(rerun_work_dir, 'count0')))
      self.assertEqual(
          os.path.exists(os.path.join(rerun_work_dir, 'count1')), reproduced)
      self.assertEqual(results.load(paths[0])[0], records[0])
      results.save(paths[0], records)
    # A lost results file is rebuilt from the runs' folders.
    os.remove(paths[0])
    with contextlib.redirect_stdout(io.StringIO()):
      rebuilt = experiments.run_plan(plan, *paths)
    self.assertEqual(rebuilt, records)

  def test_models_other_runs_read_are_kept_and_restored_from_the_store(self):
    def fake_copy(model_dir, output_dir, extra_files):
      # The inference copy itself: model_loader_test.
      os.makedirs(output_dir)
      for name in ('params.yaml', *extra_files):
        if os.path.exists(os.path.join(model_dir, name)):
          shutil.copyfile(os.path.join(model_dir, name),
                          os.path.join(output_dir, name))

    def teacher_and_student_plan(work_dir, teacher_wer):
      teacher, student = self.fake_plan(work_dir, [
          (rows_lib.BIG_TEACHER, {'test': teacher_wer, 'dev': 0.2}),
          (rows_lib.ROWS_A[2], {'test': 0.3})])
      return [teacher._replace(makes=teacher.run.model_dir),
              student._replace(loads=(teacher.run.model_dir,))]

    out = tempfile.mkdtemp()
    paths = [os.path.join(out, name) for name in
             ('experiments.json', 'experiments.md', 'experiments.png')]
    store = os.path.join(out, 'models')
    stored_teacher = os.path.join(store, rows_lib.BIG_TEACHER.name, 'seed0')
    first_dir = tempfile.mkdtemp()
    with mock.patch.object(experiments.weights_copy, 'write_inference_copy',
                           side_effect=fake_copy), \
        contextlib.redirect_stdout(io.StringIO()) as printed:
      records = experiments.run_plan(
          teacher_and_student_plan(first_dir, 0.25), *paths,
          model_store=store)
    self.assertIn(f'model kept in {stored_teacher}', printed.getvalue())
    self.assertEqual(
        sorted(os.listdir(stored_teacher)),
        ['dev_summary.json', experiments.RECORD_FILE, 'params.yaml',
         'test_summary.json'])
    # Only what other runs read is kept.
    self.assertEqual(os.listdir(store), [rows_lib.BIG_TEACHER.name])
    # A new machine: the teacher comes from the store, not from training,
    # and teaches the student's new seed.
    new_dir = tempfile.mkdtemp()
    plan = teacher_and_student_plan(new_dir, 0.26)
    os.remove(paths[0])
    results.save(paths[0], records[:1])
    with contextlib.redirect_stdout(io.StringIO()) as printed:
      continued = experiments.run_plan(plan, *paths, model_store=store)
    self.assertIn(f'{plan[0].stage.name}: restored from {store}',
                  printed.getvalue())
    self.assertFalse(os.path.exists(os.path.join(new_dir, 'count0')))
    self.assertTrue(os.path.exists(os.path.join(new_dir, 'count1')))
    self.assertEqual(continued[0], records[0])
    self.assertTrue(os.path.exists(os.path.join(plan[0].run.model_dir,
                                                'params.yaml')))
    # Results of another teacher than the store's: stop before any run.
    other = dict(records[0], wer={'test': 19.0, 'ood': None, 'dev': 20.0})
    results.save(paths[0], [other])
    third_dir = tempfile.mkdtemp()
    with self.assertRaisesRegex(
        experiments.NotReproducedError,
        r'holds kd_demo_big_teacher seed 0 at test 25\.00% dev 20\.00% .* '
        r'records test 19\.00% dev 20\.00% .*different models'):
      experiments.run_plan(teacher_and_student_plan(third_dir, 0.25), *paths,
                           model_store=store)
    self.assertFalse(os.path.exists(os.path.join(third_dir, 'count1')))


if __name__ == '__main__':
  tf.test.main()
