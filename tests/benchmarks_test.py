"""The benchmarks run on the current presets (tiny shapes).

Their timings are not checked here (docs/benchmarks.md records them); the
tests catch a benchmark that no longer builds or trains the preset's model,
e.g. one without the auxiliary heads that the preset's loss options need,
and a train step that XLA compiles more than once per batch shape.
"""

import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TINY = ['--steps=2', '--warmup_steps=1', '--batch_size=2',
         '--audio_seconds=0.5', '--num_tokens=3', '--distinct_batches=1']
_ROW = re.compile(r'^(\S+)\s+jit_compile=(\w+)\s+(\d+) compilations '
                  r'\((\d+) timed\)\s+[\d.]+ ms/step\s+([\d.]+) audio-s/s',
                  re.M)

def _run(module, *args):
  result = subprocess.run([sys.executable, '-m', module, *_TINY, *args],
                          cwd=_REPO_ROOT, capture_output=True, text=True,
                          timeout=600, check=False)
  if result.returncode:
    raise AssertionError(f'{module} failed:\n{result.stderr[-3000:]}')
  return result.stdout


class BenchmarksTest(tf.test.TestCase):

  def test_device_check_runs_every_stage_and_compiles_once_per_bucket(self):
    # benchmarks/device_check.sh --tiny, as CI runs it. Its train step
    # stage cycles four batches in two buckets, which differ in label
    # values and lengths: XLA's dump must hold one program per bucket and
    # row, and nothing compiled while the steps were timed.
    result = subprocess.run(
        ['bash', 'benchmarks/device_check.sh', '--tiny'], cwd=_REPO_ROOT,
        capture_output=True, text=True, timeout=900, check=False,
        env=dict(os.environ, PYTHON=sys.executable))
    self.assertEqual(result.returncode, 0, result.stdout[-3000:])
    output = result.stdout
    self.assertLen(re.findall(r'^== ', output, re.M), 5)
    self.assertIn('full lengths', output)
    self.assertRegex(output, r'device: .+ \| TensorFlow')
    self.assertRegex(output, r'standard B,T,U,V=.* x read pass')
    self.assertRegex(output, r'fused/\d+ +B,T,U,V=.* x read pass')
    self.assertRegex(output, r'full +unfused .*x')
    self.assertRegex(output, r'three_class +fused_kd ')
    rows = _ROW.findall(output)
    self.assertEqual(
        [(name, jit) for name, jit, *_ in rows],
        [('rnnt_demo_teacher', 'True'),
         ('rnnt_demo_student_streaming', 'True'),
         ('rnnt_demo_teacher', 'True')])
    self.assertIn('runtime.mixed_precision_dtype=mixed_bfloat16', output)
    for _, _, compilations, timed, throughput in rows:
      self.assertEqual((int(compilations), int(timed)), (2, 0))
      self.assertGreater(float(throughput), 0.0)

  def test_cpu_replicas_measures_two_replicas(self):
    # One device (--replicas=1) runs the same code under the default
    # strategy; two replicas also split the batch.
    output = _run('benchmarks.cpu_replicas', '--repeats=1', '--replicas=2',
                  '--steps=2', '--warmup_steps=1', '--batch_size=4',
                  '--audio_seconds=0.5', '--num_tokens=4', '--num_buckets=1',
                  '--distinct_batches=2',
                  '--every_row_override=task.model.encoder.num_layers=1')
    best = re.findall(r'^best, replicas=(\d+): +([\d.]+) audio-s/s',
                      output, re.M)
    self.assertEqual([count for count, _ in best], ['2'])
    self.assertGreater(float(best[0][1]), 0.0)



class LongAudioHelpersTest(tf.test.TestCase):
  """benchmarks.long_audio's measuring parts (the hour itself is not run)."""

  def test_joined_audio_repeats_utterances_with_pauses(self):
    from benchmarks import long_audio  # pylint: disable=g-import-not-at-top
    first = np.full([1000], 7, np.int16)
    second = np.full([500], -3, np.int16)
    pause = int(long_audio.PAUSE_SECONDS * 16000)
    audio = long_audio.joined_audio([first, second], 2 * (1500 + 2 * pause))
    one_round = np.concatenate([first, np.zeros(pause, np.int16), second,
                                np.zeros(pause, np.int16)])
    self.assertAllEqual(audio, np.concatenate([one_round, one_round]))
    self.assertLen(long_audio.joined_audio([first, second], 1234), 1234)

  def test_peak_rss_is_the_child_s_own(self):
    from benchmarks import long_audio  # pylint: disable=g-import-not-at-top
    small, _, small_code = long_audio.peak_rss_of(
        [sys.executable, '-c', 'pass'])
    large, _, large_code = long_audio.peak_rss_of(
        [sys.executable, '-c', 'filled = b"1" * (300 * 2**20)'])
    self.assertEqual((small_code, large_code), (0, 0))
    self.assertBetween(large - small, 250, 400)
    # A later small child is measured alone, not as the largest so far.
    again, _, _ = long_audio.peak_rss_of([sys.executable, '-c', 'pass'])
    self.assertLess(again, small + 50)

  def test_latency_by_tenth(self):
    from benchmarks import long_audio  # pylint: disable=g-import-not-at-top
    seconds = np.random.default_rng(0).uniform(0, 0.01, 1000)
    (all_p50, all_p95), (first_p50, first_p95), (last_p50, last_p95) = (
        long_audio.latency_by_tenth(seconds))
    self.assertAllClose([all_p50, all_p95],
                        np.percentile(seconds * 1e3, [50, 95]))
    self.assertAllClose([first_p50, first_p95],
                        np.percentile(seconds[:100] * 1e3, [50, 95]))
    self.assertAllClose([last_p50, last_p95],
                        np.percentile(seconds[900:] * 1e3, [50, 95]))


class PeakMemoryTest(tf.test.TestCase):

  def test_growth_of_a_step_or_none_without_allocator_counters(self):
    from unittest import mock  # pylint: disable=g-import-not-at-top
    from benchmarks import peak_memory  # pylint: disable=g-import-not-at-top
    step = lambda: 'ran'
    with mock.patch.object(
        tf.config.experimental, 'reset_memory_stats',
        side_effect=ValueError("Cannot reset memory stats for device 'CPU:0'")):
      self.assertEqual(peak_memory.peak_growth_bytes(step), (None, 'ran'))
    self.assertStartsWith(peak_memory.format_growth(None, 8), 'n/a')
    self.assertEqual(peak_memory.format_growth(3 * 2**20, 2**20, width=4),
                     ' 3.0 MiB =  3.00 x logits')
    with mock.patch.object(tf.config.experimental, 'reset_memory_stats'), \
         mock.patch.object(tf.config.experimental, 'get_memory_info',
                           side_effect=[{'current': 100},
                                        {'current': 150, 'peak': 400}]):
      self.assertEqual(peak_memory.peak_growth_bytes(step), (300, 'ran'))


if __name__ == '__main__':
  tf.test.main()
