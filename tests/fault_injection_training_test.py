"""Fault injection: training, restore and export against damaged model_dirs.

Each test damages files for real (truncates a checkpoint's .data shard,
overwrites bytes of its .index, passes bad flags), runs the binaries as
subprocesses and checks the exit status, that stderr ends with one clear
line and no traceback, and that the model_dir's files kept their bytes and
modification times. Rows: docs/failure_behaviour.md.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams

from asr_kd.configs import config_types
from asr_kd.configs import distillation_config
from asr_kd.inference import model_loader
from asr_kd.tasks import distillation_task
from tests import model_loader_test
from tests import testing_utils
from tests import train_binary_test

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The fixture's checkpoints: ckpt-2, ckpt-4 and ckpt-6 (the latest).
TRAIN_STEPS = 6


def snapshot(directory: str) -> dict:
  """{relative path: (sha256, mtime in ns)} of every file under `directory`."""
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, 'rb') as opened:
        digest = hashlib.sha256(opened.read()).hexdigest()
      files[os.path.relpath(path, directory)] = (digest,
                                                 os.stat(path).st_mtime_ns)
  return files


def truncate_data(prefix: str) -> str:
  """Cuts a checkpoint's .data shard to half its size, as a full disk does."""
  path = prefix + '.data-00000-of-00001'
  with open(path, 'r+b') as shard:
    shard.truncate(os.path.getsize(path) // 2)
  return path


def corrupt_index(prefix: str) -> str:
  """Overwrites 200 bytes in the middle of a checkpoint's .index."""
  path = prefix + '.index'
  with open(path, 'r+b') as index:
    index.seek(os.path.getsize(path) // 2)
    index.write(b'\xa5' * 200)
  return path


def run_module(module: str, *args: str,
               timeout: int = 240) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-m', module, *args], cwd=_REPO_ROOT,
                        capture_output=True, text=True, timeout=timeout,
                        check=False)


class FaultInjectionTrainingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work_dir = tempfile.mkdtemp()
    cls.run_info = model_loader_test.train_tiny_model_dir(
        cls.work_dir, train_steps=TRAIN_STEPS)
    cls.corpus = cls.run_info['corpus']

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.work_dir, ignore_errors=True)
    super().tearDownClass()

  def copy_model_dir(self) -> str:
    """A fresh copy of the trained model_dir for one test to damage."""
    copy = os.path.join(tempfile.mkdtemp(dir=self.get_temp_dir()), 'model')
    shutil.copytree(self.run_info['model_dir'], copy)
    return copy

  def assert_one_line_failure(self, result: subprocess.CompletedProcess,
                              expected_start: str, *expected_parts: str):
    self.assertNotEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertNotIn('Traceback', result.stderr)
    last_line = result.stderr.strip().splitlines()[-1]
    self.assertStartsWith(last_line, expected_start)
    for part in expected_parts:
      self.assertIn(part, last_line)

  # Restore and export (load_model and the binaries that use it).

  def test_load_model_names_the_damaged_file(self):
    for damage, expected in ((truncate_data, 'is truncated or corrupt'),
                             (corrupt_index, 'is truncated or corrupt'),
                             (os.remove, 'is missing')):
      with self.subTest(damage.__name__):
        model_dir = self.copy_model_dir()
        prefix = os.path.join(model_dir, f'ckpt-{TRAIN_STEPS}')
        if damage is os.remove:
          damaged = prefix + '.data-00000-of-00001'
          os.remove(damaged)
        else:
          damaged = damage(prefix)
        with self.assertRaises(model_loader.ModelLoadError) as raised:
          model_loader.load_model(model_dir)
        message = str(raised.exception)
        self.assertStartsWith(message,
                              f'cannot read checkpoint {prefix}: {damaged} '
                              f'{expected}')
        self.assertLen(message.splitlines(), 1)

  def test_binaries_turn_a_damaged_checkpoint_into_one_line(self):
    output_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    cases = (
        ('evaluate', truncate_data,
         [f'--tfrecords={self.corpus["tfrecords"]}']),
        ('transcribe', corrupt_index, ['missing.wav']),
        ('export_saved_model', truncate_data,
         [f'--output_dir={output_dir}/saved_model']),
        ('export_tflite', corrupt_index,
         [f'--output={output_dir}/model.tflite']),
    )
    for tool, damage, args in cases:
      with self.subTest(tool):
        model_dir = self.copy_model_dir()
        prefix = os.path.join(model_dir, f'ckpt-{TRAIN_STEPS}')
        damaged = damage(prefix)
        before = snapshot(model_dir)
        result = run_module(f'asr_kd.bin.{tool}', f'--model_dir={model_dir}',
                            *args, timeout=120)
        self.assert_one_line_failure(
            result, f'{tool}: cannot read checkpoint {prefix}: {damaged} is '
            'truncated or corrupt')
        self.assertEqual(snapshot(model_dir), before)
    self.assertEmpty(os.listdir(output_dir))

  def _student_experiment(self, teacher_dir: str):
    """A tiny streaming student distilled from the teacher in teacher_dir."""
    experiment = testing_utils.tiny_experiment(self.corpus, causal=True)
    task = distillation_config.DistillationTaskConfig()
    task.override(experiment.task.as_dict(), is_strict=True)
    task.override({'teacher_model_dir': teacher_dir,
                   'distillation': {'kind': 'full'}, 'jit_compile': False,
                   'loss': {'ctc_weight': 0.0}}, is_strict=True)
    experiment.task = task
    return experiment

  def test_teacher_with_a_damaged_checkpoint(self):
    teacher_dir = self.copy_model_dir()
    damaged = truncate_data(os.path.join(teacher_dir, f'ckpt-{TRAIN_STEPS}'))
    experiment = self._student_experiment(teacher_dir)
    expected = (f'teacher: cannot read checkpoint {teacher_dir}/'
                f'ckpt-{TRAIN_STEPS}: {damaged} is truncated or corrupt')
    task = distillation_task.DistillationTask(experiment.task)
    with self.assertRaises(model_loader.ModelLoadError) as raised:
      task.build_model()
    self.assertStartsWith(str(raised.exception), expected)
    self.assertLen(str(raised.exception).splitlines(), 1)

    # The train binary reports it in one line.
    config_file = os.path.join(self.get_temp_dir(), 'student.yaml')
    hyperparams.save_params_dict_to_yaml(experiment, config_file)
    student_dir = os.path.join(self.get_temp_dir(), 'student')
    result = run_module('asr_kd.bin.train', '--experiment=kd_demo_student',
                        f'--config_file={config_file}', '--mode=train',
                        f'--model_dir={student_dir}')
    self.assert_one_line_failure(result, f'train: {expected}')
    self.assertEqual(train_binary_test.checkpoint_steps(student_dir), [])

  # Training (asr_kd.bin.train): flags and config.

  def train(self, model_dir: str, *flags: str,
            config_file: str = '') -> subprocess.CompletedProcess:
    """The train binary on the model_dir's own params.yaml (the same run)."""
    config_file = config_file or os.path.join(model_dir, 'params.yaml')
    return run_module('asr_kd.bin.train', '--experiment=rnnt_demo_teacher',
                      f'--config_file={config_file}', '--mode=train',
                      f'--model_dir={model_dir}', *flags)

  def test_bad_flags_get_one_line_and_write_nothing(self):
    model_dir = self.copy_model_dir()
    # A separate config file: the model_dir's own must stay untouched too.
    config_file = os.path.join(self.get_temp_dir(), 'run.yaml')
    shutil.copy(os.path.join(model_dir, 'params.yaml'), config_file)
    before = snapshot(model_dir)
    cases = {
        'bad value type': (['--params_override=trainer.train_steps=abc'],
                           'train: bad configuration: trainer.train_steps '
                           "must be int, not 'abc' (str)"),
        'unknown experiment': (['--experiment=no_such_experiment'],
                               "train: unknown --experiment "
                               "'no_such_experiment'"),
        'missing config file': ([f'--config_file={config_file}.missing'],
                                f'train: --config_file {config_file}.missing '
                                'not found'),
        'negative train_steps': (['--params_override=trainer.train_steps=-3'],
                                 'train: bad configuration: '
                                 'trainer.train_steps must be >= 0, not -3'),
    }
    for case, (flags, expected) in cases.items():
      with self.subTest(case):
        result = self.train(model_dir, *flags, config_file=config_file)
        self.assert_one_line_failure(result, expected)
        self.assertEqual(snapshot(model_dir), before)

  def test_value_types_of_the_shipped_configs_pass(self):
    # Guards the type check against refusing configs that train today.
    for name in ('rnnt_demo_teacher', 'rnnt_demo_student_streaming',
                 'rnnt_librispeech_conformer_l', 'kd_demo_student'):
      config = exp_factory.get_exp_config(name)
      config = hyperparams.override_params_dict(
          config, os.path.join(_REPO_ROOT, 'configs', f'{name}.yaml'),
          is_strict=True)
      self.assertEmpty(list(config_types.type_errors(config)), name)
    # An int where a float is declared is fine; a float for an int is not.
    config = exp_factory.get_exp_config('rnnt_demo_teacher')
    config.override({'task': {'loss': {'ctc_weight': 1}}})
    config_types.check_value_types(config)
    config.override({'task': {'model': {'encoder': {'model_dim': 2.5}}}})
    with self.assertRaisesRegex(
        ValueError, r'task.model.encoder.model_dim must be int, not 2.5'):
      config_types.check_value_types(config)

  # Training: reruns into a model_dir with checkpoints.

  def test_rerun_with_another_architecture_leaves_the_model_dir(self):
    model_dir = self.copy_model_dir()
    before = snapshot(model_dir)
    result = self.train(model_dir,
                        '--params_override=task.model.encoder.model_dim=24')
    self.assert_one_line_failure(
        result, f'train: {model_dir}/ckpt-{TRAIN_STEPS} does not match the '
        'model in the config', f'nothing was written to {model_dir}')
    self.assertEqual(snapshot(model_dir), before)
    # params.yaml still describes the checkpoints: the model_dir evaluates.
    loaded = model_loader.load_model(model_dir)
    self.assertEqual(loaded.config.task.model.encoder.model_dim, 16)

  def test_resume_passes_over_unreadable_checkpoints(self):
    model_dir = self.copy_model_dir()
    bad_index = corrupt_index(os.path.join(model_dir, 'ckpt-6'))
    bad_data = truncate_data(os.path.join(model_dir, 'ckpt-4'))
    result = self.train(model_dir, '--params_override=trainer.train_steps=8')
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn(f'checkpoint {model_dir}/ckpt-6 cannot be read: {bad_index} '
                  'is truncated or corrupt', result.stderr)
    self.assertIn(f'checkpoint {model_dir}/ckpt-4 cannot be read: {bad_data} '
                  'is truncated or corrupt', result.stderr)
    self.assertIn(f'restored from checkpoint: {model_dir}/ckpt-2',
                  result.stderr)
    logged_steps = [int(line.split('step:')[1].split('|')[0])
                    for line in result.stderr.splitlines()
                    if 'train | step:' in line and 'steps/sec' in line]
    self.assertEqual(sorted(set(logged_steps)), [4, 6, 8])
    self.assertEqual(tf.train.latest_checkpoint(model_dir),
                     os.path.join(model_dir, 'ckpt-8'))
    # The saves at steps 4 and 6 replaced the damaged files.
    self.assertNotEmpty(tf.train.list_variables(
        os.path.join(model_dir, 'ckpt-6')))
    model_loader.load_model(model_dir, os.path.join(model_dir, 'ckpt-4'))

  def test_no_readable_checkpoint_gets_one_line_and_writes_nothing(self):
    model_dir = self.copy_model_dir()
    for step in (2, 4, 6):
      truncate_data(os.path.join(model_dir, f'ckpt-{step}'))
    before = snapshot(model_dir)
    result = self.train(model_dir)
    self.assert_one_line_failure(
        result, f'train: no checkpoint in {model_dir} can be read',
        f'{model_dir}/ckpt-6.data-00000-of-00001 is truncated or corrupt')
    self.assertEqual(snapshot(model_dir), before)


if __name__ == '__main__':
  tf.test.main()
