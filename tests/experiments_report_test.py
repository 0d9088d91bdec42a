"""The comparison's report: intervals, table, figure, results file, progress."""

import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from asr_kd.experiments import figure
from asr_kd.experiments import progress
from asr_kd.experiments import report
from asr_kd.experiments import results
from asr_kd.experiments import rows as rows_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def t_quantile(probability, degrees_of_freedom):
  """Student-t quantile in float64 NumPy: trapezoid CDF, then bisection."""
  nu = float(degrees_of_freedom)
  log_norm = (math.lgamma((nu + 1) / 2) - math.lgamma(nu / 2) -
              0.5 * math.log(nu * math.pi))

  def cdf(x):
    grid = np.linspace(0.0, x, 200001)
    density = np.exp(log_norm - (nu + 1) / 2 * np.log1p(grid**2 / nu))
    return 0.5 + np.sum((density[1:] + density[:-1]) / 2 * np.diff(grid))

  low, high = 0.0, 200.0
  for _ in range(60):
    middle = (low + high) / 2
    low, high = (middle, high) if cdf(middle) < probability else (low, middle)
  return (low + high) / 2


def record(row, seed, test, ood=None, generation=None, baseline=None,
           comparison='a', description=None):
  return results.make_record(
      row=row, seed=seed, generation=generation, task_seed=seed,
      description=description or f'row {row}', comparison=comparison,
      baseline=baseline, wer={'test': test, 'ood': ood, 'dev': None},
      train_steps=9, wall_seconds=60.0, commit='abc', model_dir='/tmp/x')


def table_line(table, label):
  lines = [line for line in table.splitlines()
           if line.startswith(f'| {label} |')]
  assert len(lines) == 1, table
  return [cell.strip() for cell in lines[0].strip('|').split('|')]


class IntervalTest(tf.test.TestCase):

  def test_textbook_values(self):
    # t(0.975) from any table: 12.706 (1 df), 2.776 (4), 2.262 (9).
    for values, half_width in (([1.0, 3.0], 12.706),
                               ([0.0, 1.0, 2.0, 3.0, 4.0],
                                2.776 * math.sqrt(2.5) / math.sqrt(5)),
                               (list(range(10)),
                                2.262 * np.std(range(10), ddof=1) /
                                math.sqrt(10))):
      interval = report.t_interval(values)
      self.assertAllClose(interval.mean, np.mean(values))
      self.assertAllClose(interval.high - interval.mean, half_width,
                          rtol=2e-4)
      self.assertAllClose(interval.mean - interval.low, half_width,
                          rtol=2e-4)

  def test_against_float64_reference_on_random_cases(self):
    rng = np.random.default_rng(0)
    for _ in range(12):
      count = int(rng.integers(2, 12))
      values = rng.normal(rng.normal(0, 3), rng.uniform(0.1, 4), count)
      mean = values.sum() / count
      sd = math.sqrt(((values - mean)**2).sum() / (count - 1))
      half_width = t_quantile(0.975, count - 1) * sd / math.sqrt(count)
      interval = report.t_interval(values)
      self.assertEqual(interval.count, count)
      self.assertAllClose([interval.mean, interval.low, interval.high],
                          [mean, mean - half_width, mean + half_width],
                          rtol=1e-6, atol=1e-9)

  def test_one_value_has_no_interval(self):
    interval = report.t_interval([4.0])
    self.assertEqual((interval.mean, interval.count), (4.0, 1))
    self.assertTrue(math.isnan(interval.low) and math.isnan(interval.high))


class TableTest(tf.test.TestCase):

  def test_means_and_paired_differences(self):
    rng = np.random.default_rng(1)
    base = {seed: rng.uniform(10, 20) for seed in range(4)}
    hard = {seed: base[seed] - rng.uniform(0, 2) for seed in range(4)}
    base_ood = {seed: rng.uniform(20, 30) for seed in range(4)}
    records = [record('none', seed, base[seed], base_ood[seed],
                      description='baseline row') for seed in range(4)]
    # Seed 3 of the hard row is missing: three pairs.
    records += [record('hard', seed, hard[seed], None, baseline='none',
                       description='hard row') for seed in range(3)]
    records += [record('self', 0, 11.0, 21.0, generation=2, baseline='none',
                       comparison='b', description='self row')]
    records += [record('teacher', 0, 5.0, 9.0, comparison='teacher',
                       description='teacher row')]
    table = report.markdown_table(records)

    cells = table_line(table, 'baseline row')
    values = [base[seed] for seed in range(4)]
    self.assertEqual(cells[2], '4')
    self.assertEqual(cells[3], f'{np.mean(values):.2f} ± '
                     f'{np.std(values, ddof=1):.2f}')
    self.assertEqual(cells[5:], ['baseline', 'baseline'])

    cells = table_line(table, 'hard row')
    differences = np.array([hard[seed] - base[seed] for seed in range(3)])
    mean = differences.mean()
    half_width = (t_quantile(0.975, 2) * differences.std(ddof=1) /
                  math.sqrt(3))
    self.assertEqual(cells[2], '3')
    self.assertEqual(cells[4], '-')  # No ood WER.
    match = re.fullmatch(r'([-+]\d+\.\d\d) \[([-+]\d+\.\d\d), '
                         r'([-+]\d+\.\d\d)\] \(3 pairs\)', cells[5])
    self.assertIsNotNone(match, cells[5])
    self.assertAllClose([float(group) for group in match.groups()],
                        [mean, mean - half_width, mean + half_width],
                        atol=0.006)
    self.assertEqual(cells[6], '-')

    cells = table_line(table, 'self row, generation 2')
    self.assertEqual(cells[5], f'{11.0 - base[0]:+.2f} (1 pair)')
    self.assertEqual(cells[6], f'{21.0 - base_ood[0]:+.2f} (1 pair)')
    self.assertEqual(table_line(table, 'teacher row')[5:],
                     ['teacher', 'teacher'])

  def test_findings_pair_hard_and_soft_rows_seed_by_seed(self):
    (finding_a, finding_b) = rows_lib.FINDINGS
    rng = np.random.default_rng(7)
    soft_full, soft_3class = finding_a.soft_rows
    records = []
    for seed in range(3):
      hard_wer = rng.uniform(20, 30)
      # Hard better than full-vocabulary soft by 2 +- 0.1 on both splits;
      # against 3-class soft, better on test by 2 and worse on ood by 1.1.
      records += [
          record(finding_a.hard_row, seed, hard_wer, hard_wer + 10),
          record(soft_full, seed, hard_wer + 2 + 0.1 * seed,
                 hard_wer + 12 - 0.1 * seed),
          record(soft_3class, seed, hard_wer + 2 + 0.1 * seed,
                 hard_wer + 10 - 1 - 0.1 * seed)]
      for generation in (1, 2):
        # Self-training: soft better by 1 +- 0.1 (generation 1); seed 2 of
        # generation 2 has no soft run, so it has two pairs.
        records.append(record(finding_b.hard_row, seed, 15.0 + seed,
                              25.0 + seed, generation=generation,
                              comparison='b'))
        if generation == 1 or seed < 2:
          records.append(record(
              finding_b.soft_rows[0], seed, 14.0 + seed - 0.1 * seed,
              24.0 + seed - 0.1 * seed * generation, generation=generation,
              comparison='b'))
    table = report.findings_table(records)
    lines = {tuple(cell.strip() for cell in line.strip('|').split('|')[1:3]):
             [cell.strip() for cell in line.strip('|').split('|')[3:]]
             for line in table.splitlines()[2:]}
    self.assertLen(lines, 4)
    full = lines[(f'`{finding_a.hard_row}` vs `{soft_full}`', '-')]
    self.assertEqual(full[2:], ['hard better, hard better', 'holds'])
    differences = np.array([-2.0, -2.1, -2.2])
    half_width = (t_quantile(0.975, 2) * differences.std(ddof=1) /
                  math.sqrt(3))
    self.assertEqual(full[0], f'{differences.mean():+.2f} '
                     f'[{differences.mean() - half_width:+.2f}, '
                     f'{differences.mean() + half_width:+.2f}] (3 pairs)')
    three_class = lines[(f'`{finding_a.hard_row}` vs `{soft_3class}`', '-')]
    self.assertEqual(three_class[2:], ['hard better, soft better',
                                       'not shown'])
    generation_1 = lines[(f'`{finding_b.hard_row}` vs '
                          f'`{finding_b.soft_rows[0]}`', '1')]
    self.assertEqual(generation_1[2:], ['soft better, soft better', 'holds'])
    generation_2 = lines[(f'`{finding_b.hard_row}` vs '
                          f'`{finding_b.soft_rows[0]}`', '2')]
    self.assertIn('(2 pairs)', generation_2[0])

  def test_a_finding_against_the_data_is_reversed(self):
    finding = rows_lib.FINDINGS[0]
    records = []
    for seed in range(3):
      records += [record(finding.hard_row, seed, 30.0 + seed, 40.0),
                  record(finding.soft_rows[0], seed, 27.0 + 1.1 * seed,
                         37.0 - 0.1 * seed)]
    line = report.findings_table(records).splitlines()[2]
    self.assertTrue(line.endswith('| soft better, soft better | reversed |'),
                    line)

  def test_stored_targets_against_online_seed_by_seed(self):
    stored, online = rows_lib.STORED_AGAINST_ONLINE
    rng = np.random.default_rng(3)
    online_test = rng.uniform(25, 32, 3)
    online_ood = rng.uniform(35, 42, 3)
    # Test: within noise (+-1 around 0). Ood: stored worse by 2 +- 0.1.
    stored_test = online_test + np.array([1.0, -1.0, 0.2])
    stored_ood = online_ood + np.array([2.0, 2.1, 1.9])
    records = [record(online, seed, online_test[seed], online_ood[seed],
                      baseline='none') for seed in range(3)]
    self.assertEqual(report.stored_targets_table(records), '')
    self.assertNotIn('Stored against online',
                     report.markdown_report(records, 'x.json'))
    records += [record(stored, seed, stored_test[seed], stored_ood[seed],
                       baseline='none') for seed in range(3)]
    table = report.stored_targets_table(records)
    for split, online_wers, stored_wers, verdict in (
        ('test', online_test, stored_test, 'equal within seed noise'),
        ('ood', online_ood, stored_ood, 'stored worse')):
      cells = table_line(table, split)
      differences = stored_wers - online_wers
      half_width = (t_quantile(0.975, 2) * differences.std(ddof=1) /
                    math.sqrt(3))
      self.assertEqual(cells[1], f'{differences.mean():+.2f} '
                       f'[{differences.mean() - half_width:+.2f}, '
                       f'{differences.mean() + half_width:+.2f}] (3 pairs)')
      self.assertEqual(cells[2], f'{np.std(online_wers, ddof=1):.2f}')
      self.assertEqual(cells[3], verdict)
    self.assertIn('## Stored against online teacher targets',
                  report.markdown_report(records, 'x.json'))
    # One pair: no interval, no verdict.
    one_pair = [r for r in records if r['seed'] == 0]
    self.assertEqual(table_line(report.stored_targets_table(one_pair),
                                'test')[2:], ['-', '1 pair: no interval'])

  def test_online_top_k_probe_between_online_and_stored(self):
    stored, online = rows_lib.STORED_AGAINST_ONLINE
    probe = rows_lib.SOFT_ONLINE_TOP_K.name
    rng = np.random.default_rng(5)
    wers = {row: rng.uniform(20, 40, (3, 2)) for row in (online, stored,
                                                         probe)}

    def rows_records(row, seeds):
      return [record(row, seed, *wers[row][seed], baseline='none')
              for seed in seeds]

    records = rows_records(online, range(3)) + rows_records(stored, range(3))
    self.assertEqual(report.online_top_k_table(records), '')
    self.assertNotIn(probe, report.markdown_report(records, 'x.json'))
    # Without stored runs, the probe's table stands alone ('-' for them).
    without_stored = rows_records(online, range(3)) + rows_records(probe,
                                                                    [0])
    table = report.online_top_k_table(without_stored)
    self.assertEqual(table_line(table, 'test')[3], '-')
    self.assertIn(table, report.markdown_report(without_stored, 'x.json'))
    # One probe seed: the other rows' WERs of that seed only, one pair.
    table = report.online_top_k_table(records + rows_records(probe, [1]))
    for column, split in enumerate(results.REPORTED_SPLITS):
      self.assertEqual(table_line(table, split), [
          split, f'{wers[online][1, column]:.2f}',
          f'{wers[probe][1, column]:.2f}', f'{wers[stored][1, column]:.2f}',
          f'{wers[probe][1, column] - wers[online][1, column]:+.2f} '
          '(1 pair)',
          f'{wers[stored][1, column] - wers[probe][1, column]:+.2f} '
          '(1 pair)'])
    records += rows_records(probe, range(3))
    table = report.online_top_k_table(records)
    for column, split in enumerate(results.REPORTED_SPLITS):
      differences = wers[stored][:, column] - wers[probe][:, column]
      half_width = (t_quantile(0.975, 2) * differences.std(ddof=1) /
                    math.sqrt(3))
      probe_wers = wers[probe][:, column]
      self.assertEqual(table_line(table, split)[2],
                       f'{probe_wers.mean():.2f} ± '
                       f'{probe_wers.std(ddof=1):.2f}')
      self.assertEqual(table_line(table, split)[5],
                       f'{differences.mean():+.2f} '
                       f'[{differences.mean() - half_width:+.2f}, '
                       f'{differences.mean() + half_width:+.2f}] (3 pairs)')
    self.assertIn(table, report.markdown_report(records, 'x.json'))

  def test_run_time_adds_measured_cpu_and_names_unmeasured_runs(self):
    records = [dict(record('none', seed, 10.0), wall_seconds=3600.0 * seed,
                    cpu_seconds=5400.0 * seed) for seed in (1, 2)]
    self.assertEqual(report.run_time_line(records),
                     'Run time: 2 runs, 3.0 hours of wall clock and 4.5 '
                     'CPU-hours (user + system) in all, training and '
                     'evaluation.')
    records.append(dict(record('none', 3, 10.0), wall_seconds=1800.0))
    line = report.run_time_line(records)
    self.assertTrue(line.startswith('Run time: 3 runs, 3.5 hours of wall '
                                    'clock and 4.5 CPU-hours'), line)
    self.assertIn('1 of the runs predate the CPU measurement: their 0.5 '
                  'wall hours', line)
    self.assertIn('at most 1.0 CPU-hours', line)
    self.assertIn(line, report.markdown_report(records, 'x.json'))
    line = report.run_time_line(records[2:])
    self.assertTrue(line.startswith('Run time: 1 runs, 0.5 hours of wall '
                                    'clock in all, training and evaluation; '
                                    'all runs predate the CPU measurement'),
                    line)

  def test_report_and_figure_files_and_binary(self):
    directory = tempfile.mkdtemp()
    records = [record('none', seed, 10.0 + seed, 20.0 + seed)
               for seed in range(3)]
    records += [record('soft', seed, 9.0 + seed, 19.5, baseline='none')
                for seed in range(3)]
    results_path = os.path.join(directory, 'experiments.json')
    results.save(results_path, records)
    markdown, png = (os.path.join(directory, name)
                     for name in ('table.md', 'figure.png'))
    result = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.experiments_report',
         f'--results={results_path}', f'--markdown={markdown}',
         f'--figure={png}'], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(markdown) as table:
      text = table.read()
    self.assertIn('experiments.json', text)
    self.assertEqual(table_line(text, 'row soft')[5],
                     '-1.00 [-1.00, -1.00] (3 pairs)')
    with open(png, 'rb') as image:
      self.assertEqual(image.read(8), b'\x89PNG\r\n\x1a\n')
    # --merge adds another file's runs (replacing the same run) and saves.
    other_results = os.path.join(directory, 'other.json')
    results.save(other_results, [record('soft', 0, 7.0, 19.5,
                                        baseline='none'),
                                 record('stored', 0, 8.0, 19.0,
                                        baseline='none')])
    result = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.experiments_report',
         f'--results={results_path}', f'--markdown={markdown}', '--figure=',
         f'--merge={other_results}'], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=300, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    merged = results.load(results_path)
    self.assertLen(merged, 7)
    self.assertEqual([r['wer']['test'] for r in merged
                      if r['row'] == 'soft'], [7.0, 10.0, 11.0])
    with open(markdown) as table:
      self.assertEqual(table_line(table.read(), 'row stored')[2], '1')
    result = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.experiments_report',
         f'--results={results_path}', f'--markdown={markdown}', '--figure=',
         f'--merge={directory}/missing.json'], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=300, check=False)
    self.assertEqual(result.returncode, 1)
    self.assertIn('no such file', result.stderr)
    # The figure depends on the records.
    other = os.path.join(directory, 'other.png')
    figure.draw(records[:3], other)
    with open(png, 'rb') as first, open(other, 'rb') as second:
      self.assertNotEqual(first.read(), second.read())


class ResultsFileTest(tf.test.TestCase):

  def test_upsert_save_load(self):
    path = os.path.join(tempfile.mkdtemp(), 'sub', 'results.json')
    self.assertEqual(results.load(path), [])
    first, second = record('a', 0, 1.0), record('a', 1, 2.0)
    records = results.upsert(results.upsert([], first), second)
    replaced = results.upsert(records, record('a', 0, 3.0))
    self.assertEqual([r['wer']['test'] for r in replaced], [3.0, 2.0])
    self.assertLen(results.upsert(replaced, record('a', 0, 3.0,
                                                   generation=1)), 3)
    results.save(path, replaced)
    self.assertEqual(results.load(path), replaced)

  def test_commit(self):
    commit = results.git_commit(REPO_ROOT)
    if os.path.isdir(os.path.join(REPO_ROOT, '.git')) or os.path.isfile(
        os.path.join(REPO_ROOT, '.git')):
      self.assertRegex(commit, r'^[0-9a-f]{40}$')
    self.assertEqual(results.git_commit(tempfile.mkdtemp()),
                     results.UNKNOWN_COMMIT)


class ProgressTest(tf.test.TestCase):

  def test_line_and_eta(self):
    self.assertEqual(progress.eta_seconds([60.0, 180.0], 3), 360.0)
    self.assertIsNone(progress.eta_seconds([], 3))
    self.assertEqual(
        progress.progress_line(7, 42, 'kd_demo_student_hard seed 1',
                               {'test': 12.34, 'ood': 20.1, 'dev': None},
                               2112.0, progress.eta_seconds([2112.0] * 6,
                                                            35)),
        '[7/42] kd_demo_student_hard seed 1: test 12.3% ood 20.1% '
        '(35.2 min); ETA 20h32m')
    self.assertEqual(progress.duration(42), '42 s')
    # Nothing left (a resumed comparison whose later runs are done).
    self.assertTrue(progress.progress_line(
        2, 5, 'x', {'test': 1.0}, 5.0, 0.0).endswith('; done'))
    self.assertTrue(progress.progress_line(
        2, 5, 'x', {'test': 1.0}, 5.0, None).endswith('; ETA unknown'))


if __name__ == '__main__':
  tf.test.main()
