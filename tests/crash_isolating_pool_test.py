"""Tests for tfrecords_tools.crash_isolating_pool.

absltest, not tf.test: every worker imports this module to find `_square`,
and importing TensorFlow would cost each one seconds.
"""

import concurrent.futures
from concurrent.futures import process
import os
import signal
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from tfrecords_tools import crash_isolating_pool

# Tasks on which _square kills its own process, as a native crash would.
_FATAL = frozenset({0, 37, 38, 199})


def _square(task):
  if task in _FATAL:
    os.kill(os.getpid(), signal.SIGSEGV)
  if task == 'bad':
    raise ValueError('bad task')
  return task * task


class _BreaksWhileSubmitting:
  """Runs each task at once; the first such pool breaks at its third
  submission, as a real one does when a worker dies while the caller is
  still submitting chunks."""
  broke = False

  def __init__(self, num_workers):
    del num_workers
    self._submitted = 0

  def submit(self, fn, *args):
    self._submitted += 1
    if not _BreaksWhileSubmitting.broke and self._submitted == 3:
      _BreaksWhileSubmitting.broke = True
      raise process.BrokenProcessPool('a worker died')
    future = concurrent.futures.Future()
    future.set_result(fn(*args))
    return future

  def shutdown(self, cancel_futures=False):
    del cancel_futures


class MapIsolatingCrashesTest(parameterized.TestCase):

  def test_a_pool_broken_while_submitting_loses_no_task(self):
    with mock.patch.object(crash_isolating_pool, '_new_pool',
                           _BreaksWhileSubmitting):
      results = list(crash_isolating_pool.map_isolating_crashes(
          _square, list(range(1, 21)), 2, 2))
    self.assertTrue(_BreaksWhileSubmitting.broke)
    self.assertCountEqual(results, [(index, (index + 1)**2)
                                    for index in range(20)])

  @parameterized.parameters((1, 8), (2, 8), (3, 1))
  def test_crashing_tasks_are_marked_and_all_others_run(self, num_workers,
                                                        chunk_size):
    tasks = list(range(200))
    results = list(crash_isolating_pool.map_isolating_crashes(
        _square, tasks, num_workers, chunk_size))
    self.assertCountEqual([index for index, _ in results], range(200))
    for index, result in results:
      if index in _FATAL:
        self.assertIs(result, crash_isolating_pool.CRASHED)
      else:
        self.assertEqual(result, index * index)

  def test_python_errors_are_raised_not_marked(self):
    with self.assertRaisesRegex(ValueError, 'bad task'):
      list(crash_isolating_pool.map_isolating_crashes(
          _square, [1, 2, 'bad', 3], 2, 1))

  def test_no_tasks(self):
    self.assertEmpty(list(crash_isolating_pool.map_isolating_crashes(
        _square, [], 2)))


if __name__ == '__main__':
  absltest.main()
