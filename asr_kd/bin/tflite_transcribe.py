r"""Streams audio files through a TFLite student as a phone would.

  python -m asr_kd.bin.tflite_transcribe --model=student.tflite \
      [--threads=1] a.wav b.flac ...

For each file: the transcript, the real-time factor (processing time /
audio duration) and the per-chunk latency (p50/p95 of stream_step calls).
Audio at another sample rate is resampled and multi-channel audio downmixed,
with a `path<TAB>NOTE: ...` line on stderr, as `transcribe` does. A model
file that is not a complete TFLite flatbuffer (truncated, or another kind of
file) is refused with one line before the interpreter reads it.
Needs OUTPUT.vocab.txt beside the model (written by asr_kd.bin.export_tflite).
"""

import sys

from absl import app
from absl import flags
import numpy as np

from asr_kd.dataloaders import audio_decoding
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.export import tflite_runtime

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('model', None, 'A .tflite model from export_tflite.')
  flags.DEFINE_integer('threads', 1, 'Interpreter threads.')
  flags.DEFINE_string('vocab', None, 'Vocabulary file; default '
                      'MODEL.vocab.txt.')


def format_report(path: str, output: tflite_runtime.StreamOutput,
                  num_samples: int) -> str:
  """One line per file: transcript, RTF, chunk latency p50/p95."""
  audio_seconds = num_samples / tfrecord_schema.SAMPLE_RATE
  compute_seconds = float(np.sum(output.chunk_seconds))
  rtf = compute_seconds / audio_seconds if audio_seconds else float('nan')
  if len(output.chunk_seconds):
    p50, p95 = np.percentile(output.chunk_seconds * 1e3, [50, 95])
  else:
    p50 = p95 = float('nan')
  return (f'{path}\t{output.text}\t[audio {audio_seconds:.2f} s, RTF '
          f'{rtf:.4f}, {len(output.chunk_seconds)} chunks, latency p50 '
          f'{p50:.2f} ms p95 {p95:.2f} ms]')


def main(argv):
  paths = argv[1:]
  if not FLAGS.model:
    sys.exit('tflite_transcribe: --model is required.')
  if not paths:
    sys.exit('tflite_transcribe: give one or more audio files.')
  if FLAGS.threads < 1:
    sys.exit('tflite_transcribe: --threads must be >= 1.')
  try:
    streamer = tflite_runtime.TfliteStreamer(FLAGS.model, FLAGS.threads,
                                             FLAGS.vocab)
  except ValueError as error:
    sys.exit(f'tflite_transcribe: {error}')
  failures = 0
  for path in paths:
    try:
      samples, sample_rate = audio_decoding.read_audio(path)
    except audio_decoding.AudioDecodeError as error:
      print(f'tflite_transcribe: {path}: {error}', file=sys.stderr)
      failures += 1
      continue
    for note in audio_decoding.conversion_notes(samples, sample_rate):
      print(f'{path}\tNOTE: {note}', file=sys.stderr)
    samples = audio_decoding.to_mono_16k(samples, sample_rate)
    output = streamer.transcribe(samples, keep_encoder_outputs=False)
    print(format_report(path, output, len(samples)), flush=True)
  if failures:
    sys.exit(f'tflite_transcribe: {failures} of {len(paths)} files could '
             'not be read.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
