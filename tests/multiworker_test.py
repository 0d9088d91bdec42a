"""MultiWorkerMirroredStrategy: two local worker processes train together."""

import json
import os
import socket
import subprocess
import tempfile

import tensorflow as tf

from tests import testing_utils
from tests import train_binary_test


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(('localhost', 0))
    return sock.getsockname()[1]


class MultiWorkerTest(tf.test.TestCase):

  def test_two_workers_on_localhost_finish(self):
    work_dir = tempfile.mkdtemp()
    corpus = testing_utils.write_tiny_corpus(os.path.join(work_dir, 'corpus'))
    config_file = train_binary_test.write_tiny_yaml(
        corpus, os.path.join(work_dir, 'multiworker.yaml'), train_steps=2,
        jit_compile=False)
    model_dir = os.path.join(work_dir, 'model')
    command = train_binary_test.train_command(
        config_file, model_dir,
        params_override='runtime.distribution_strategy=multi_worker_mirrored')
    workers = [f'localhost:{_free_port()}' for _ in range(2)]
    processes = []
    for index in range(2):
      env = dict(os.environ, TF_CONFIG=json.dumps({
          'cluster': {'worker': workers},
          'task': {'type': 'worker', 'index': index}}))
      log = open(os.path.join(work_dir, f'worker{index}.log'), 'w+')
      processes.append((subprocess.Popen(
          command, cwd=train_binary_test._REPO_ROOT, env=env,  # pylint: disable=protected-access
          stdout=log, stderr=subprocess.STDOUT), log))
    try:
      for process, log in processes:
        process.wait(timeout=400)
    finally:
      for process, log in processes:
        if process.poll() is None:
          process.kill()
    for index, (process, log) in enumerate(processes):
      log.seek(0)
      output = log.read()
      log.close()
      self.assertEqual(process.returncode, 0,
                       f'worker {index}:\n{output[-3000:]}')
      self.assertIn('MultiWorkerMirroredStrategy', output)
    # Worker 0 is the chief: it owns params.yaml and the real checkpoints.
    self.assertTrue(os.path.exists(os.path.join(model_dir, 'params.yaml')))
    self.assertEqual(tf.train.latest_checkpoint(model_dir),
                     os.path.join(model_dir, 'ckpt-2'))


if __name__ == '__main__':
  tf.test.main()
