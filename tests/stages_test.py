"""Stages' time files: wall and CPU seconds that survive a kill."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import tensorflow as tf

from asr_kd.experiments import stages

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def burn_command(cpu_seconds, then_sleep_seconds=0.0):
  """A child that spins until it has used `cpu_seconds` of CPU, then sleeps."""
  script = ('import time\n'
            f'while time.process_time() < {cpu_seconds}:\n'
            '  pass\n'
            f'time.sleep({then_sleep_seconds})\n')
  return [sys.executable, '-c', script]


def read_times(path):
  with open(path) as time_file:
    return json.load(time_file)


class StageClockTest(tf.test.TestCase):

  def test_finished_commands_add_their_cpu_and_wall_seconds(self):
    path = os.path.join(tempfile.mkdtemp(), 'run', 'run_time.json')
    stage = stages.Stage('burn', '', lambda: [burn_command(0.6, 0.4),
                                              burn_command(0.4)], path)
    start = time.time()
    stages.run_stage(stage)
    wall = time.time() - start
    times = read_times(path)
    # 1.0 s of spinning plus two interpreters' start-up.
    self.assertBetween(times['cpu_seconds'], 1.0, 2.0)
    self.assertBetween(times['seconds'], 1.4, wall)
    # A resumed stage adds to what the file holds.
    stages.run_stage(stage)
    self.assertBetween(read_times(path)['cpu_seconds'],
                       times['cpu_seconds'] + 1.0, times['cpu_seconds'] + 2.0)
    self.assertFalse(os.path.exists(path + '.tmp'))

  def test_a_killed_stage_keeps_the_time_it_ran(self):
    # The runner and its child are killed mid-command, as at a session's
    # end: the file still holds what the last tick wrote.
    path = os.path.join(tempfile.mkdtemp(), 'run_time.json')
    runner = (
        'import sys\n'
        'from asr_kd.experiments import stages\n'
        'stages.CLOCK_INTERVAL_SECONDS = 0.2\n'
        f'stages.run_stage(stages.Stage("s", "", lambda: '
        f'[{burn_command(1000.0)!r}], {path!r}))\n')
    process = subprocess.Popen([sys.executable, '-c', runner], cwd=REPO_ROOT,
                               start_new_session=True)
    try:
      deadline = time.time() + 120
      while time.time() < deadline:
        if (os.path.exists(path) and
            read_times(path)['cpu_seconds'] >= 0.5):
          break
        time.sleep(0.1)
    finally:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
    times = read_times(path)
    self.assertGreaterEqual(times['cpu_seconds'], 0.5)
    self.assertGreaterEqual(times['seconds'], times['cpu_seconds'] - 0.3)

  def test_failed_command_stops_with_its_exit_code(self):
    path = os.path.join(tempfile.mkdtemp(), 'run_time.json')
    stage = stages.Stage('fail', '', lambda: [
        [sys.executable, '-c', 'raise SystemExit(3)']], path)
    with self.assertRaisesRegex(SystemExit, 'exit code 3'):
      stages.run_stage(stage)
    self.assertGreater(read_times(path)['seconds'], 0.0)


if __name__ == '__main__':
  tf.test.main()
