"""A SIGKILLed training run resumes from its last checkpoint."""

import os
import signal
import subprocess
import tempfile
import time

import tensorflow as tf

from tests import testing_utils
from tests import train_binary_test


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


if __name__ == '__main__':
  tf.test.main()
