"""A SIGKILLed training run resumes from its last checkpoint, data included."""

import glob
import os
import signal
import subprocess
import tempfile
import time

import tensorflow as tf

from tests import testing_utils
from tests import train_binary_test


def scalar_summaries(directory: str, tag: str) -> dict:
  """{step: value} of one scalar tag over the event files in `directory`."""
  values = {}
  for path in glob.glob(os.path.join(directory, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values[event.step] = float(tf.make_ndarray(value.tensor))
  return values


class TrainResumeTest(tf.test.TestCase):

  def test_sigkill_then_same_command_resumes_to_final_step(self):
    work_dir = tempfile.mkdtemp()
    corpus = testing_utils.write_tiny_corpus(os.path.join(work_dir, 'corpus'))
    config_file = train_binary_test.write_tiny_yaml(
        corpus, os.path.join(work_dir, 'resume.yaml'), train_steps=8,
        jit_compile=False)
    model_dir = os.path.join(work_dir, 'model')
    command = train_binary_test.train_command(config_file, model_dir)

    first_log = open(os.path.join(work_dir, 'first.log'), 'w')
    process = subprocess.Popen(command, cwd=train_binary_test._REPO_ROOT,  # pylint: disable=protected-access
                               stdout=first_log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    # The `checkpoint` state file names ckpt-N only once it is complete.
    while tf.train.latest_checkpoint(model_dir) is None:
      self.assertIsNone(process.poll(), 'training ended before a checkpoint')
      self.assertLess(time.time(), deadline, 'no checkpoint in time')
      time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first_log.close()
    self.assertEqual(process.returncode, -signal.SIGKILL)
    killed_at = train_binary_test.checkpoint_steps(model_dir)[-1]
    self.assertLess(killed_at, 8)

    result = train_binary_test.run_train(command)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIn(f'restored from checkpoint: '
                  f'{os.path.join(model_dir, f"ckpt-{killed_at}")}',
                  result.stderr)
    self.assertEqual(tf.train.latest_checkpoint(model_dir),
                     os.path.join(model_dir, 'ckpt-8'))
    # The second run logged only the steps after the checkpoint.
    logged_steps = [int(line.split('step:')[1].split('|')[0])
                    for line in result.stderr.splitlines()
                    if 'train | step:' in line and 'steps/sec' in line]
    self.assertNotEmpty(logged_steps)
    self.assertGreater(min(logged_steps), killed_at)
    self.assertEqual(max(logged_steps), 8)

    # The resumed run saw the batches an uninterrupted run sees (same data
    # order and SpecAugment masks), so its losses are that run's.
    self.assertIn(f'Resuming the training data at step {killed_at}',
                  result.stderr)
    whole_dir = os.path.join(work_dir, 'uninterrupted')
    whole = train_binary_test.run_train(
        train_binary_test.train_command(config_file, whole_dir))
    self.assertEqual(whole.returncode, 0, whole.stderr[-3000:])
    resumed_losses = scalar_summaries(os.path.join(model_dir, 'train'),
                                      'training_loss')
    whole_losses = scalar_summaries(os.path.join(whole_dir, 'train'),
                                    'training_loss')
    after_kill = [step for step in sorted(whole_losses) if step > killed_at]
    self.assertNotEmpty(after_kill)
    self.assertAllClose([resumed_losses[step] for step in after_kill],
                        [whole_losses[step] for step in after_kill],
                        rtol=1e-4)


if __name__ == '__main__':
  tf.test.main()
