r"""Exports a trained model_dir as a SavedModel with serving signatures.

  python -m asr_kd.bin.export_saved_model --model_dir=demo_run/student \
      --output_dir=demo_run/export/student_saved_model [--chunk_ms=320]

Signatures, inputs and assets: docs/export.md.
"""

import sys

from absl import app
from absl import flags

from asr_kd.export import saved_model_export
from asr_kd.inference import model_loader

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('model_dir', None, 'Training model_dir (params.yaml + '
                      'checkpoints).')
  flags.DEFINE_string('output_dir', None, 'Where to write the SavedModel '
                      '(must not exist or be empty).')
  flags.DEFINE_string('checkpoint', None, 'Checkpoint prefix; default the '
                      'latest in --model_dir.')
  flags.DEFINE_integer('chunk_ms', None, 'Audio per stream_step call for '
                       'streaming models (a multiple of the encoder chunk).')


def main(argv):
  if len(argv) > 1:
    sys.exit(f'export_saved_model: unexpected arguments {argv[1:]}')
  if not FLAGS.model_dir or not FLAGS.output_dir:
    sys.exit('export_saved_model: --model_dir and --output_dir are required.')
  try:
    loaded = model_loader.load_model(FLAGS.model_dir, FLAGS.checkpoint)
    module = saved_model_export.export_saved_model(
        loaded, FLAGS.output_dir, chunk_ms=FLAGS.chunk_ms)
  except (ValueError, model_loader.ModelLoadError) as error:
    sys.exit(f'export_saved_model: {error}')
  signatures = sorted(module.signatures())
  print(f'Wrote {FLAGS.output_dir} (checkpoint {loaded.checkpoint_path}); '
        f'signatures: {", ".join(signatures)}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
