"""The comparison's table, computed from the results records alone.

Per (row, generation): the number of seeds and the WER mean +- sample
standard deviation over seeds (test, ood); and against the row's baseline
the paired per-seed difference d_s = WER(row, s) - WER(baseline, s) over the
seeds both have, as mean with its 95% t-interval

    mean(d) +- t_{0.975, n-1} * sd(d) / sqrt(n)          (sd with n - 1)

Runs of one seed share their initial weights and random streams (rows that
read the same records, e.g. hard and soft, also their batches and masks);
pairing cancels that share of the seed-to-seed spread, so it needs fewer
seeds than comparing two means.
With one pair there is no interval. No TensorFlow: pure NumPy and SciPy.
"""

import math
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from asr_kd.experiments import results
from asr_kd.experiments import rows as rows_lib

CONFIDENCE = 0.95


class Interval(NamedTuple):
  mean: float
  low: float  # nan with fewer than two values.
  high: float
  count: int


def t_interval(values: Sequence[float],
               confidence: float = CONFIDENCE) -> Interval:
  """Mean of `values` and its two-sided t-interval (sample sd, n - 1 df)."""
  values = np.asarray(values, np.float64)
  count = values.size
  if count == 0:
    return Interval(math.nan, math.nan, math.nan, 0)
  mean = float(values.mean())
  if count < 2:
    return Interval(mean, math.nan, math.nan, count)
  half_width = (stats.t.ppf(0.5 + confidence / 2.0, count - 1) *
                values.std(ddof=1) / math.sqrt(count))
  return Interval(mean, mean - half_width, mean + half_width, count)


def row_keys(records: List[Dict]) -> List[Tuple[str, Optional[int]]]:
  """(row, generation) in the order they first appear."""
  keys = []
  for record in records:
    key = (record['row'], record.get('generation'))
    if key not in keys:
      keys.append(key)
  return keys


def split_wers(records: List[Dict], row: str, generation: Optional[int],
               split: str) -> Dict[int, float]:
  """{seed: WER %} of a row's runs evaluated on `split`."""
  return {record['seed']: record['wer'][split] for record in records
          if record['row'] == row and record.get('generation') == generation
          and record['wer'].get(split) is not None}


def paired_differences(records: List[Dict], row: str,
                       generation: Optional[int], baseline: str,
                       split: str,
                       baseline_generation: Optional[int] = None
                      ) -> Dict[int, float]:
  """{seed: WER(row) - WER(baseline)} over the seeds both were run with."""
  row_wers = split_wers(records, row, generation, split)
  baseline_wers = split_wers(records, baseline, baseline_generation, split)
  return {seed: row_wers[seed] - baseline_wers[seed]
          for seed in sorted(row_wers) if seed in baseline_wers}


def _mean_std(values: Sequence[float]) -> str:
  if not values:
    return '-'
  if len(values) < 2:
    return f'{np.mean(values):.2f}'
  return f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'


def _difference(differences: Dict[int, float]) -> str:
  if not differences:
    return '-'
  interval = t_interval(list(differences.values()))
  if interval.count < 2:
    return f'{interval.mean:+.2f} (1 pair)'
  return (f'{interval.mean:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]'
          f' ({interval.count} pairs)')


def row_label(record: Dict) -> str:
  generation = record.get('generation')
  suffix = f', generation {generation}' if generation is not None else ''
  return f'{record["description"]}{suffix}'


def markdown_table(records: List[Dict]) -> str:
  """The table of the module docstring, one line per (row, generation)."""
  header = ['row', 'experiment', 'seeds']
  header += [f'{split} WER %' for split in results.REPORTED_SPLITS]
  header += [f'Δ {split} vs baseline (95% CI)'
             for split in results.REPORTED_SPLITS]
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '---|' * len(header)]
  for row, generation in row_keys(records):
    runs = [record for record in records if record['row'] == row and
            record.get('generation') == generation]
    first = runs[0]
    cells = [row_label(first), f'`{row}`', str(len(runs))]
    cells += [_mean_std(list(split_wers(records, row, generation,
                                        split).values()))
              for split in results.REPORTED_SPLITS]
    baseline = first.get('baseline')
    if baseline:
      cells += [_difference(paired_differences(records, row, generation,
                                               baseline, split))
                for split in results.REPORTED_SPLITS]
    else:  # A baseline, or a teacher (not compared).
      role = 'teacher' if first['comparison'] == 'teacher' else 'baseline'
      cells += [role] * len(results.REPORTED_SPLITS)
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def _sign(interval: Interval, below_zero: str, above_zero: str,
          around_zero: str) -> str:
  """Names the side of 0 a WER-difference interval lies on, if it resolves."""
  if interval.count < 2:
    return f'{interval.count} pair{"s" * (interval.count != 1)}: no interval'
  if interval.high < 0:
    return below_zero
  if interval.low > 0:
    return above_zero
  return around_zero


def verdict(interval: Interval) -> str:
  """Which targets a hard - soft WER interval favours, if it resolves one."""
  return _sign(interval, 'hard better', 'soft better', 'not resolved')


def _finding_status(finding: rows_lib.Finding, verdicts: List[str]) -> str:
  better = f'{finding.better} better'
  worse = f'{"soft" if finding.better == "hard" else "hard"} better'
  if verdicts and all(v == better for v in verdicts):
    return 'holds'
  if verdicts and all(v == worse for v in verdicts):
    return 'reversed'
  return 'not shown'


def findings_table(records: List[Dict]) -> str:
  """The paper's two findings, head to head: per (soft row, generation),
  the paired per-seed WER(hard) - WER(soft), its 95% interval, which
  targets it favours, and whether the finding holds on both splits."""
  header = ['finding', 'hard vs soft', 'generation']
  header += [f'{split}: hard - soft (95% CI)'
             for split in results.REPORTED_SPLITS]
  header += ['favours (test, ood)', 'the finding']
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '---|' * len(header)]
  for finding in rows_lib.FINDINGS:
    for soft_row in finding.soft_rows:
      generations = [generation for row, generation in row_keys(records)
                     if row == soft_row]
      for generation in generations:
        differences = [paired_differences(records, finding.hard_row,
                                          generation, soft_row, split,
                                          baseline_generation=generation)
                       for split in results.REPORTED_SPLITS]
        if not any(differences):
          continue
        verdicts = [verdict(t_interval(list(d.values())))
                    for d in differences]
        cells = [finding.claim, f'`{finding.hard_row}` vs `{soft_row}`',
                 '-' if generation is None else str(generation)]
        cells += [_difference(d) for d in differences]
        cells += [', '.join(verdicts), _finding_status(finding, verdicts)]
        lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def stored_targets_table(records: List[Dict]) -> str:
  """Stored against online teacher targets, seed by seed: per split, the
  paired WER(stored) - WER(online), its 95% interval, and the online row's
  seed-to-seed standard deviation (the noise the difference is judged by)."""
  stored, online = rows_lib.STORED_AGAINST_ONLINE
  differences = [paired_differences(records, stored, None, online, split)
                 for split in results.REPORTED_SPLITS]
  if not any(differences):
    return ''
  header = ['split', 'stored - online (95% CI)', 'online: sd over seeds',
            'verdict']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for split, split_differences in zip(results.REPORTED_SPLITS, differences):
    online_wers = list(split_wers(records, online, None, split).values())
    spread = (f'{np.std(online_wers, ddof=1):.2f}'
              if len(online_wers) > 1 else '-')
    interval = t_interval(list(split_differences.values()))
    verdict_text = _sign(interval, 'stored better', 'stored worse',
                         'equal within seed noise')
    lines.append(f'| {split} | {_difference(split_differences)} | {spread} '
                 f'| {verdict_text} |')
  return '\n'.join(lines)


def online_top_k_table(records: List[Dict]) -> str:
  """The online top-k probe between the two rows it separates, on the
  probe's seeds: per split, the three rows' WERs, then the paired
  WER(online top-k) - WER(online full), what grouping the tail does, and
  WER(stored) - WER(online top-k), what storage and batch order do."""
  probe = rows_lib.SOFT_ONLINE_TOP_K.name
  stored, online = rows_lib.STORED_AGAINST_ONLINE
  if not any(split_wers(records, probe, None, split)
             for split in results.REPORTED_SPLITS):
    return ''
  k = rows_lib.STORED_TOP_K
  header = ['split', 'online full', f'online top-{k}', f'stored top-{k}',
            f'online top-{k} - online full (95% CI)',
            f'stored - online top-{k} (95% CI)']
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for split in results.REPORTED_SPLITS:
    probe_seeds = split_wers(records, probe, None, split)
    cells = [split]
    for row in (online, probe, stored):
      wers = split_wers(records, row, None, split)
      cells.append(_mean_std([wers[seed] for seed in probe_seeds
                              if seed in wers]))
    cells.append(_difference(paired_differences(records, probe, None,
                                                online, split)))
    cells.append(_difference(paired_differences(records, stored, None,
                                                probe, split)))
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def run_time_line(records: List[Dict]) -> str:
  """Wall and CPU hours of all runs (training and evaluation)."""
  wall_hours = sum(record.get('wall_seconds') or 0.0
                   for record in records) / 3600.0
  measured = [record for record in records
              if record.get('cpu_seconds') is not None]
  cpu_hours = sum(record['cpu_seconds'] for record in measured) / 3600.0
  cpu = (f' and {cpu_hours:.1f} CPU-hours (user + system)' if measured
         else '')
  line = (f'Run time: {len(records)} runs, {wall_hours:.1f} hours of wall '
          f'clock{cpu} in all, training and evaluation')
  unmeasured = [record for record in records
                if record.get('cpu_seconds') is None]
  if unmeasured:
    unmeasured_wall = sum(record.get('wall_seconds') or 0.0
                          for record in unmeasured) / 3600.0
    runs = ('all runs predate' if not measured else
            f'{len(unmeasured)} of the runs predate')
    line += (f'; {runs} the CPU measurement: their {unmeasured_wall:.1f} '
             'wall hours have no CPU figure (on this machine\'s 2 cores, at '
             f'most {2 * unmeasured_wall:.1f} CPU-hours), and a run of theirs '
             'that a session\'s end interrupted lost its time before the '
             'interruption')
  return line + '.'


def _stored_targets_section(records: List[Dict]) -> List[str]:
  stored_table = stored_targets_table(records)
  probe_table = online_top_k_table(records)
  if not stored_table and not probe_table:
    return []
  stored, online = rows_lib.STORED_AGAINST_ONLINE
  lines = ['## Stored against online teacher targets', '']
  if stored_table:
    lines += [
        f'`{stored}` against `{online}`: the same student, teacher and '
        f'utterances, with the teacher\'s top-{rows_lib.STORED_TOP_K} targets '
        'read from disk instead of computed in each step.', '', stored_table,
        '', 'Equal within seed noise where the paired interval contains 0; '
        'its half-width is the smallest difference these seeds could '
        'resolve.', '']
  if probe_table:
    lines += [
        f'The top-{rows_lib.STORED_TOP_K} KL computed online '
        f'(`{rows_lib.SOFT_ONLINE_TOP_K.name}`), WER % as mean ± sd over the '
        'probe\'s seeds:', '', probe_table, '']
  return lines


def markdown_report(records: List[Dict], results_name: str) -> str:
  """docs/experiments.md: the table, its method and the runs' provenance."""
  baselines = sorted({(record['comparison'], record['baseline'])
                      for record in records if record.get('baseline')})
  commits = sorted({record['commit'] for record in records})
  steps = sorted({record['train_steps'] for record in records
                  if record['comparison'] != 'teacher'} - {None})
  lines = [
      '# Soft vs hard targets: results',
      '',
      f'Generated by `make experiments` from `{results_name}` (one record '
      'per run); regenerate with `python -m asr_kd.bin.experiments_report`. '
      'Do not edit by hand.',
      '',
      markdown_table(records),
      '',
      'WER in percent, mean ± sample standard deviation over seeds. Δ: the '
      'paired per-seed difference from the comparison\'s baseline run with '
      'the same seed (negative = better), its mean and 95% t-interval, '
      'mean(d) ± t(0.975, n-1) · sd(d) / √n.',
      '',
      '## The paper\'s findings, head to head',
      '',
      findings_table(records),
      '',
      'hard - soft: the paired per-seed WER difference between the hard- '
      'and the soft-target row of the same seed (and generation); negative '
      'favours hard targets. A finding holds where its interval excludes 0 '
      'in its direction on test and ood; "not shown" where an interval '
      'contains 0 (or has too few pairs).',
      '',
      *_stored_targets_section(records),
      'Baselines: ' + (', '.join(f'({comparison}) `{baseline}`'
                                 for comparison, baseline in baselines)
                       or 'none') + '.',
      f'Training steps per student run: {", ".join(map(str, steps)) or "-"}.',
      f'Commits the runs ran at: {", ".join(f"`{c}`" for c in commits)}.',
      run_time_line(records),
  ]
  return '\n'.join(lines) + '\n'
