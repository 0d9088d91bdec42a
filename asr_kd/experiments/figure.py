"""The comparison's figure: WER per row with its 95% interval, test and ood.

Drawn from the same records as the table (asr_kd.experiments.report): per
(row, generation) the mean WER over seeds and the t-interval of that mean
(none with one seed), one marker per split. Matplotlib's Agg backend: no
display needed.
"""

from typing import Dict, List

import matplotlib
matplotlib.use('Agg')
from matplotlib import pyplot  # pylint: disable=g-import-not-at-top,wrong-import-position

from asr_kd.experiments import report  # pylint: disable=wrong-import-position
from asr_kd.experiments import results  # pylint: disable=wrong-import-position

_MARKERS = {'test': 'o', 'ood': 's'}


def draw(records: List[Dict], path: str):
  """Writes the PNG figure of `records` to `path`."""
  keys = report.row_keys(records)
  labels = []
  for row, generation in keys:
    first = next(record for record in records if record['row'] == row and
                 record.get('generation') == generation)
    labels.append(report.row_label(first))
  figure, axes = pyplot.subplots(figsize=(8, 0.45 * len(keys) + 1.5))
  offsets = {split: 0.15 * (index - (len(results.REPORTED_SPLITS) - 1) / 2)
             for index, split in enumerate(results.REPORTED_SPLITS)}
  for split in results.REPORTED_SPLITS:
    positions, means, errors = [], [], [[], []]
    for index, (row, generation) in enumerate(keys):
      interval = report.t_interval(
          list(report.split_wers(records, row, generation, split).values()))
      if not interval.count:
        continue
      positions.append(index + offsets[split])
      means.append(interval.mean)
      spread = interval.count > 1
      errors[0].append(interval.mean - interval.low if spread else 0.0)
      errors[1].append(interval.high - interval.mean if spread else 0.0)
    if positions:
      axes.errorbar(means, positions, xerr=errors,
                    fmt=_MARKERS.get(split, 'o'), capsize=3, label=split)
  axes.set_yticks(range(len(keys)))
  axes.set_yticklabels(labels, fontsize=8)
  axes.invert_yaxis()
  axes.set_xlabel('WER % (mean over seeds, 95% t-interval)')
  axes.grid(axis='x', alpha=0.3)
  axes.legend()
  figure.tight_layout()
  figure.savefig(path, dpi=120)
  pyplot.close(figure)
