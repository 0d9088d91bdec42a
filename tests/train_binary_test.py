"""End-to-end tests of `python -m asr_kd.bin.train` in a subprocess."""

import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import tensorflow as tf

from official.modeling import hyperparams
from tests import testing_utils

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SUMMARIES = ('training_loss', 'rnnt_loss_per_utterance',
                   'learning_rate', 'gradient_norm', 'examples_per_second',
                   'audio_seconds_per_second', 'nonfinite_steps')
VALIDATION_SUMMARIES = ('validation_loss', 'wer', 'cer')


def write_tiny_yaml(corpus: dict, path: str, train_steps: int,
                    jit_compile: bool, **task_overrides) -> str:
  """Writes the tiny experiment (testing_utils) as a --config_file YAML."""
  config = testing_utils.tiny_experiment(corpus, train_steps=train_steps)
  config.task.jit_compile = jit_compile
  config.task.override(task_overrides)
  hyperparams.save_params_dict_to_yaml(config, path)
  return path


def train_command(config_file: str, model_dir: str, mode: str = 'train',
                  params_override: str = ''):
  command = [sys.executable, '-m', 'asr_kd.bin.train',
             '--experiment=rnnt_demo_teacher', f'--config_file={config_file}',
             f'--mode={mode}', f'--model_dir={model_dir}']
  if params_override:
    command.append(f'--params_override={params_override}')
  return command


def run_train(command, timeout: int = 240) -> subprocess.CompletedProcess:
  return subprocess.run(command, cwd=_REPO_ROOT, capture_output=True,
                        text=True, timeout=timeout, check=False)


def summary_tags(directory: str) -> dict:
  """{tag: sorted steps} over the event files in `directory`."""
  tags = {}
  for path in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        tags.setdefault(value.tag, set()).add(event.step)
  return {tag: sorted(steps) for tag, steps in tags.items()}


def checkpoint_steps(model_dir: str) -> list:
  return sorted(int(path.split('ckpt-')[1].split('.')[0]) for path in
                glob.glob(os.path.join(model_dir, 'ckpt-*.index')))


class TrainBinaryTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work_dir = tempfile.mkdtemp()
    cls.corpus = testing_utils.write_tiny_corpus(
        os.path.join(cls.work_dir, 'corpus'))

  def test_train_and_eval_writes_config_checkpoints_and_summaries(self):
    config_file = write_tiny_yaml(
        self.corpus, os.path.join(self.work_dir, 'e2e.yaml'), train_steps=4,
        jit_compile=True)
    model_dir = os.path.join(self.work_dir, 'e2e_model')
    # --params_override wins over the YAML.
    result = run_train(train_command(
        config_file, model_dir, mode='train_and_eval',
        params_override='trainer.checkpoint_interval=2,task.seed=7'))
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])

    saved = hyperparams.read_yaml_to_params_dict(
        os.path.join(model_dir, 'params.yaml'))
    self.assertEqual(saved.trainer.train_steps, 4)
    # The demo teacher's cosine schedule ends at the overridden last step.
    self.assertEqual(
        saved.trainer.optimizer_config.learning_rate.cosine.decay_steps, 4)
    self.assertEqual(saved.task.seed, 7)
    self.assertEqual(saved.task.tokenizer_model_path,
                     self.corpus['tokenizer'])
    self.assertEqual(checkpoint_steps(model_dir), [2, 4])
    self.assertEqual(tf.train.latest_checkpoint(model_dir),
                     os.path.join(model_dir, 'ckpt-4'))

    train_tags = summary_tags(os.path.join(model_dir, 'train'))
    for tag in TRAIN_SUMMARIES:
      self.assertEqual(train_tags.get(tag), [2, 4], tag)
    validation_tags = summary_tags(os.path.join(model_dir, 'validation'))
    for tag in VALIDATION_SUMMARIES:
      self.assertEqual(validation_tags.get(tag), [4], tag)

  def test_cpu_replicas_train_data_parallel(self):
    # Labels padded to their batch's longest (no rounding): the replicas'
    # batches, hence their per-label embedding gradients, differ in shape.
    config_file = write_tiny_yaml(
        self.corpus, os.path.join(self.work_dir, 'replicas.yaml'),
        train_steps=2, jit_compile=False,
        train_data={'label_length_multiple': 1})
    model_dir = os.path.join(self.work_dir, 'replicas_model')
    result = run_train(train_command(config_file, model_dir) +
                       ['--cpu_replicas=2'])
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn('Training on 2 CPU replicas.', result.stderr)
    # TF's own log line: the strategy spans both logical CPUs.
    self.assertRegex(result.stderr, r'Using MirroredStrategy with devices .*'
                     r'CPU:0.*CPU:1')
    self.assertEqual(checkpoint_steps(model_dir), [2])

  def test_ctc_only_steps_switch_to_the_transducer_on_two_replicas(self):
    # The switch is a cond on the step counter inside Orbit's compiled loop
    # (two loops of two steps here); the transducer loss is logged from the
    # second loop on.
    config_file = write_tiny_yaml(
        self.corpus, os.path.join(self.work_dir, 'ctc_only.yaml'),
        train_steps=4, jit_compile=False,
        train_data={'label_length_multiple': 1},
        loss={'ctc_weight': 0.3, 'ctc_only_steps': 2})
    model_dir = os.path.join(self.work_dir, 'ctc_only_model')
    result = run_train(train_command(config_file, model_dir) +
                       ['--cpu_replicas=2'])
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertEqual(checkpoint_steps(model_dir), [2, 4])
    rnnt_losses = [float(value) for value in re.findall(
        r"'rnnt_loss_per_utterance': ([-\d.e+]+)", result.stderr)]
    ctc_losses = [float(value) for value in re.findall(
        r"'ctc_loss_per_utterance': ([-\d.e+]+)", result.stderr)]
    self.assertLen(rnnt_losses, 2)
    self.assertEqual(rnnt_losses[0], 0.0)  # No transducer loss computed.
    self.assertGreater(rnnt_losses[1], 0.0)
    self.assertTrue(all(loss > 0.0 for loss in ctc_losses), ctc_losses)

  def test_cpu_replicas_reject_batches_they_cannot_split(self):
    # Two replicas cannot share a batch of 3: one line, no traceback.
    config_file = write_tiny_yaml(
        self.corpus, os.path.join(self.work_dir, 'odd.yaml'), train_steps=2,
        jit_compile=False, train_data={'global_batch_size': 3})
    result = run_train(train_command(
        config_file, os.path.join(self.work_dir, 'odd_model')) +
                       ['--cpu_replicas=2'], timeout=120)
    self.assertNotEqual(result.returncode, 0)
    last_line = result.stderr.strip().splitlines()[-1]
    self.assertIn('train:', last_line)
    self.assertIn('3', last_line)
    self.assertNotIn('Traceback', result.stderr)

  def test_stop_policy_exits_with_clear_message(self):
    # NaN feature statistics make every normalized feature NaN.
    with open(self.corpus['feature_stats']) as f:
      stats = json.load(f)
    stats['mean'][0] = float('nan')
    nan_stats = os.path.join(self.work_dir, 'nan_stats.json')
    with open(nan_stats, 'w') as f:
      json.dump(stats, f)
    config_file = write_tiny_yaml(
        self.corpus, os.path.join(self.work_dir, 'stop.yaml'), train_steps=2,
        jit_compile=False, nonfinite_policy='stop',
        model={'feature_stats_file': nan_stats})
    model_dir = os.path.join(self.work_dir, 'stop_model')
    result = run_train(train_command(config_file, model_dir))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn('train: asr_kd: non-finite loss or gradients; stopped '
                  'because task.nonfinite_policy=stop.', result.stderr)
    self.assertNotIn('Traceback', result.stderr)
    self.assertEqual(checkpoint_steps(model_dir), [])

  def test_missing_tokenizer_is_a_one_line_error(self):
    config_file = write_tiny_yaml(
        self.corpus, os.path.join(self.work_dir, 'bad.yaml'), train_steps=2,
        jit_compile=False,
        tokenizer_model_path=os.path.join(self.work_dir, 'missing.model'))
    result = run_train(train_command(
        config_file, os.path.join(self.work_dir, 'bad_model')), timeout=120)
    self.assertNotEqual(result.returncode, 0)
    self.assertIn('missing.model', result.stderr.strip().splitlines()[-1])
    self.assertNotIn('Traceback', result.stderr)


if __name__ == '__main__':
  tf.test.main()
