r"""Redraws the comparison's table and figure from its results JSON.

  python -m asr_kd.bin.experiments_report --results=docs/experiments.json \
      --markdown=docs/experiments.md --figure=docs/experiments.png

Runs nothing: reads the records `make experiments` wrote (one per run) and
writes the markdown table (mean +- std per row, paired per-seed differences
from the baseline with 95% t-intervals) and the PNG figure.
"""

import os
import sys
from typing import Dict, List

from absl import app
from absl import flags

from asr_kd.experiments import figure
from asr_kd.experiments import report
from asr_kd.experiments import results

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS):
  flags.DEFINE_string('results', 'docs/experiments.json', 'The results JSON.',
                      flag_values=flag_values)
  flags.DEFINE_string('markdown', 'docs/experiments.md', 'Where the table '
                      'goes.', flag_values=flag_values)
  flags.DEFINE_string('figure', 'docs/experiments.png', 'Where the figure '
                      'goes (empty: none).', flag_values=flag_values)


def write_report(records: List[Dict], results_path: str, markdown_path: str,
                 figure_path: str):
  """The markdown table and (if figure_path and records) the figure."""
  os.makedirs(os.path.dirname(markdown_path) or '.', exist_ok=True)
  with open(markdown_path, 'w') as markdown:
    markdown.write(report.markdown_report(
        records, os.path.basename(results_path)))
  if figure_path and records:
    figure.draw(records, figure_path)


def main(argv):
  del argv
  records = results.load(FLAGS.results)
  if not records:
    sys.exit(f'experiments_report: no runs in {FLAGS.results}')
  write_report(records, FLAGS.results, FLAGS.markdown, FLAGS.figure)
  print(f'experiments_report: {len(records)} runs -> {FLAGS.markdown}'
        f'{", " + FLAGS.figure if FLAGS.figure else ""}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
