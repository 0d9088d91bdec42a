r"""Splits labeled TFRecords into a labeled subset and an unlabeled pool.

  python -m asr_kd.bin.split_labeled --input='demo_run/tfrecords/train-*' \
      --output_dir=demo_run/experiments/data --labeled_fraction=0.2

Ranks utterances by a hash of their id; the lowest floor(N * fraction) are
the labeled subset (`labeled-*`), the rest the pool (`pool-*`), both in the
corpus schema (asr_kd/experiments/data_split.py). Prints the summary it
writes to OUTPUT_DIR/split.summary.json.
"""

import json
import sys

from absl import app
from absl import flags

from asr_kd.experiments import data_split

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS):
  flags.DEFINE_string('input', None, 'Comma-separated TFRecord globs.',
                      flag_values=flag_values)
  flags.DEFINE_string('output_dir', None, 'Folder for the two shard sets '
                      'and the summary.', flag_values=flag_values)
  flags.DEFINE_float('labeled_fraction', 0.2, 'Share of the utterances in '
                     'the labeled subset (0.2: a pool 4x its size).',
                     flag_values=flag_values)


def main(argv):
  del argv
  if not FLAGS.input or not FLAGS.output_dir:
    sys.exit('split_labeled: --input and --output_dir are required.')
  try:
    summary = data_split.split_records(FLAGS.input, FLAGS.output_dir,
                                       FLAGS.labeled_fraction)
  except ValueError as error:
    sys.exit(f'split_labeled: {error}')
  print(json.dumps(summary, indent=2))


if __name__ == '__main__':
  define_flags()
  app.run(main)
