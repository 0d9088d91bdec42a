r"""Computes the global log-mel mean/stddev that training normalizes with.

  python -m tfrecords_tools.compute_feature_stats \
      --input='demo_run/tfrecords/train-*' --output=demo_run/feature_stats.json

Per-mel-bin statistics over all frames of up to --max_utterances records
(file order, so the result is deterministic). Global statistics, unlike
per-utterance normalization, work unchanged when streaming.
"""

import sys

from absl import app
from absl import flags
import tensorflow as tf

from asr_kd.dataloaders import features
from asr_kd.dataloaders import input_pipeline

FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a binary, so importing never clashes."""
  flags.DEFINE_string('input', None, 'TFRecord glob(s), comma-separated.')
  flags.DEFINE_string('output', None, 'Output JSON path.')
  flags.DEFINE_integer('max_utterances', 2000,
                       'Use at most this many utterances.')


def compute_and_save(input_path: str, output_path: str,
                     max_utterances: int = 2000):
  """Returns (mean, stddev) after writing them to `output_path`."""
  mean, stddev = features.compute_feature_stats(
      input_pipeline.feature_dataset(input_path), max_utterances)
  parent = output_path.rsplit('/', 1)[0] if '/' in output_path else ''
  if parent:
    tf.io.gfile.makedirs(parent)
  features.save_feature_stats(output_path, mean, stddev)
  return mean, stddev


def main(argv):
  del argv
  if not FLAGS.input or not FLAGS.output:
    sys.exit('compute_feature_stats: --input and --output are required.')
  try:
    mean, _ = compute_and_save(FLAGS.input, FLAGS.output,
                               FLAGS.max_utterances)
  except (ValueError, tf.errors.OpError) as error:
    sys.exit(f'compute_feature_stats: {error}')
  print(f'Wrote {len(mean)}-bin feature statistics to {FLAGS.output}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
