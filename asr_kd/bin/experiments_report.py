r"""Redraws the comparison's table and figure from its results JSON.

  python -m asr_kd.bin.experiments_report --results=docs/experiments.json \
      --markdown=docs/experiments.md --figure=docs/experiments.png \
      [--merge=OTHER.json,...]

Runs nothing: reads the records `make experiments` wrote (one per run) and
writes the markdown table (mean +- std per row, paired per-seed differences
from the baseline with 95% t-intervals) and the PNG figure. `--merge` first
adds the records of other results files (e.g. rows run from another
worktree) to --results, each replacing the run of the same row, generation
and seed, and saves it.
"""

import os
import sys

from absl import app
from absl import flags

from asr_kd.experiments import report_files
from asr_kd.experiments import results

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS):
  flags.DEFINE_string('results', 'docs/experiments.json', 'The results JSON.',
                      flag_values=flag_values)
  flags.DEFINE_string('markdown', 'docs/experiments.md', 'Where the table '
                      'goes.', flag_values=flag_values)
  flags.DEFINE_string('figure', 'docs/experiments.png', 'Where the figure '
                      'goes (empty: none).', flag_values=flag_values)
  flags.DEFINE_list('merge', [], 'Results files whose records are added to '
                    '--results (and saved there) first.',
                    flag_values=flag_values)


def main(argv):
  del argv
  records = results.load(FLAGS.results)
  for path in FLAGS.merge:
    if not os.path.exists(path):
      sys.exit(f'experiments_report: --merge: no such file {path}')
    for record in results.load(path):
      records = results.upsert(records, record)
  if FLAGS.merge:
    results.save(FLAGS.results, records)
  if not records:
    sys.exit(f'experiments_report: no runs in {FLAGS.results}')
  report_files.write_report(records, FLAGS.results, FLAGS.markdown, FLAGS.figure)
  print(f'experiments_report: {len(records)} runs -> {FLAGS.markdown}'
        f'{", " + FLAGS.figure if FLAGS.figure else ""}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
