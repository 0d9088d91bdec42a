"""Tests for asr_kd.tasks.task_metrics."""

import time

import numpy as np
import tensorflow as tf

from asr_kd.tasks import task_metrics


class ErrorRateTest(tf.test.TestCase):

  def test_is_total_errors_over_total_reference_units(self):
    rng = np.random.default_rng(0)
    metric = task_metrics.ErrorRate('wer')
    all_errors, all_units = [], []
    for _ in range(3):
      errors = rng.integers(0, 5, size=4)
      units = rng.integers(1, 9, size=4)
      metric.update_state(errors, units)
      all_errors.append(errors)
      all_units.append(units)
    expected = (np.concatenate(all_errors).astype(np.float64).sum() /
                np.concatenate(all_units).sum())
    self.assertAllClose(metric.result(), expected, rtol=1e-6)
    metric.reset_states()
    self.assertEqual(float(metric.result()), 0.0)


class ThroughputTest(tf.test.TestCase):

  def test_counts_units_from_the_given_start_time(self):
    metric = task_metrics.Throughput('examples_per_second')
    start = time.time() - 2.0  # The first step "began" two seconds ago.
    metric.update_state(tf.constant([3.0, 5.0]), start_time=start)
    # A later start time must not move the clock.
    metric.update_state(12.0, start_time=time.time())
    rate = float(metric.result())
    elapsed = time.time() - start
    self.assertBetween(rate, 20.0 / (elapsed + 0.5), 20.0 / 2.0 + 1e-6)

  def test_reset_restarts_the_clock(self):
    metric = task_metrics.Throughput('units')
    metric.update_state(1.0, start_time=time.time() - 100.0)
    metric.reset_states()
    self.assertEqual(float(metric.result()), 0.0)
    metric.update_state(10.0, start_time=time.time() - 1.0)
    self.assertBetween(float(metric.result()), 5.0, 10.0 + 1e-6)


if __name__ == '__main__':
  tf.test.main()
