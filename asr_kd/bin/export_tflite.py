r"""Exports a streaming model_dir to a multi-signature TFLite model.

  python -m asr_kd.bin.export_tflite --model_dir=demo_run/student \
      --output=demo_run/export/student.tflite --quantization=none \
      [--chunk_ms=320] [--representative_data='demo_run/tfrecords/train-*']

Writes OUTPUT and OUTPUT.vocab.txt (one SentencePiece piece per line, the
line number is the token id). Signatures and state layout: docs/export.md.
"""

import os
import sys

from absl import app
from absl import flags

from asr_kd.export import streaming
from asr_kd.export import tflite_export
from asr_kd.inference import model_loader

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('model_dir', None, 'Training model_dir of a streaming '
                      '(causal) model.')
  flags.DEFINE_string('output', None, 'Path of the .tflite file.')
  flags.DEFINE_enum('quantization', 'none', tflite_export.QUANTIZATIONS,
                    'Weight/activation quantization.')
  flags.DEFINE_integer('chunk_ms', None, 'Audio per stream_step call; a '
                       'multiple of the encoder chunk (default: one chunk).')
  flags.DEFINE_integer('max_symbols_per_frame', None, 'Greedy limit; default '
                       'task.decoding.max_symbols_per_frame of the model.')
  flags.DEFINE_string('representative_data', None, 'TFRecord glob streamed '
                      'to calibrate full_int8 (default: the training data of '
                      'params.yaml).')
  flags.DEFINE_boolean('int8_decoder', False, 'full_int8 only: quantize '
                       'the prediction and joint networks too (default: '
                       'they stay float, docs/export.md).')
  flags.DEFINE_integer('num_calibration_utterances', 20,
                       'Utterances used for full_int8 calibration.')
  flags.DEFINE_string('checkpoint', None, 'Checkpoint prefix; default the '
                      'latest in --model_dir.')


def main(argv):
  if len(argv) > 1:
    sys.exit(f'export_tflite: unexpected arguments {argv[1:]}')
  if not FLAGS.model_dir or not FLAGS.output:
    sys.exit('export_tflite: --model_dir and --output are required.')
  try:
    loaded = model_loader.load_model(FLAGS.model_dir, FLAGS.checkpoint)
    recognizer = streaming.from_loaded_model(
        loaded, chunk_ms=FLAGS.chunk_ms,
        max_symbols_per_frame=FLAGS.max_symbols_per_frame)
    calibration = None
    if FLAGS.quantization == 'full_int8':
      pattern = (FLAGS.representative_data or
                 loaded.task_config.train_data.input_path)
      calibration = tflite_export.read_record_waveforms(
          pattern, FLAGS.num_calibration_utterances)
    flatbuffer = tflite_export.convert(recognizer, FLAGS.quantization,
                                       calibration,
                                       int8_decoder=FLAGS.int8_decoder)
  except (ValueError, model_loader.ModelLoadError) as error:
    sys.exit(f'export_tflite: {error}')
  output_dir = os.path.dirname(os.path.abspath(FLAGS.output))
  os.makedirs(output_dir, exist_ok=True)
  vocab_path = tflite_export.write_model(FLAGS.output, flatbuffer,
                                         loaded.tokenizer.id_to_piece)
  print(f'Wrote {FLAGS.output} ({len(flatbuffer) / 1e6:.2f} MB, '
        f'{FLAGS.quantization}, {recognizer.chunk_samples} samples per '
        f'stream_step) and {vocab_path}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
