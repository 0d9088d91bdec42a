r"""Transcribes audio files with a trained RNN-T model.

  python -m asr_kd.bin.transcribe --model_dir=demo_run/teacher a.wav b.flac

Prints `path<TAB>transcript` per file on stdout, in argument order. Audio at
another sample rate is resampled and multi-channel audio downmixed (a NOTE
line on stderr says so). A file that cannot be decoded (missing, empty,
corrupt, truncated) prints `path<TAB>ERROR: <reason>` on stderr; the other
files are still transcribed and the exit code is 1.
"""

import sys
from typing import Sequence, TextIO

from absl import app
from absl import flags

from asr_kd.decoding import decoder
from asr_kd.inference import model_loader
from asr_kd.inference import recognizer as recognizer_lib

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (only when run as one)."""
  model_loader.define_model_flags(flag_values)
  flags.DEFINE_enum('decoder', 'greedy', list(decoder.METHODS),
                    'Decoding method.', flag_values=flag_values)
  flags.DEFINE_integer('beam_size', 8, 'Beam size for --decoder=beam.',
                       flag_values=flag_values)
  flags.DEFINE_integer('batch_size', 8, 'Files decoded together.',
                       flag_values=flag_values)


def write_transcriptions(recognizer: recognizer_lib.Recognizer,
                         paths: Sequence[str], stdout: TextIO,
                         stderr: TextIO) -> int:
  """Transcribes files, printing results as each batch finishes.

  Args:
    recognizer: the restored model's recognizer.
    paths: audio files.
    stdout: gets `path<TAB>transcript` lines.
    stderr: gets `path<TAB>NOTE: ...` and `path<TAB>ERROR: ...` lines.

  Returns:
    Number of files that failed.
  """
  failures = 0
  for result in recognizer.iter_transcribe_files(paths):
    for note in result.notes:
      print(f'{result.path}\tNOTE: {note}', file=stderr)
    if result.error:
      failures += 1
      print(f'{result.path}\tERROR: {result.error}', file=stderr, flush=True)
    else:
      print(f'{result.path}\t{result.transcript}', file=stdout, flush=True)
  return failures


def main(argv):
  paths = argv[1:]
  if not FLAGS.model_dir:
    sys.exit('transcribe: --model_dir is required.')
  if not paths:
    sys.exit('transcribe: give one or more audio files after the flags.')
  if FLAGS.batch_size < 1 or FLAGS.beam_size < 1:
    sys.exit('transcribe: --batch_size and --beam_size must be >= 1.')
  try:
    loaded = model_loader.load_model(FLAGS.model_dir, FLAGS.checkpoint,
                                     FLAGS.experiment)
  except model_loader.ModelLoadError as error:
    sys.exit(f'transcribe: {error}')
  decoding_config = loaded.config.task.decoding.replace(
      method=FLAGS.decoder, beam_size=FLAGS.beam_size)
  recognizer = recognizer_lib.from_loaded_model(
      loaded, decoding_config, batch_size=FLAGS.batch_size)
  failures = write_transcriptions(recognizer, paths, sys.stdout, sys.stderr)
  return 1 if failures else 0


if __name__ == '__main__':
  define_flags()
  app.run(main)
