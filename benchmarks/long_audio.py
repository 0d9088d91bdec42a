r"""Long audio: peak memory of `transcribe` and `tflite_transcribe`, and the
streaming model's chunk latency over an hour.

  python -m benchmarks.long_audio --model_dir=demo_run/student \
      --records='demo_run/tfrecords/test-*' --short_minutes=1 --long_minutes=60

Writes two 16 kHz mono WAV files, --short_minutes and --long_minutes long,
of test utterances joined by 0.3 s pauses (repeated as needed), and exports
the model's float streaming TFLite. Each binary then transcribes each file
in its own process; the table gives that process's peak RSS. The long file
passes when its peak is within LIMIT_FACTOR of the short file's plus the long
file's samples as `read_audio` holds them (float32). Then the long file is
streamed through the TFLite model in this process: p50/p95 latency of the
`stream_step` calls over the whole file, in its first and in its last tenth. (The state
fed from call to call is the signature's fixed set of fixed-shape tensors,
so it cannot grow.)
"""

import os
import subprocess
import sys
import tempfile
import time
from typing import List, Sequence, Tuple

from absl import app
from absl import flags
import numpy as np
import soundfile

from asr_kd.dataloaders import tfrecord_schema
from asr_kd.export import streaming
from asr_kd.export import tflite_export
from asr_kd.export import tflite_runtime
from benchmarks import tflite_student

FLAGS = flags.FLAGS
# The criterion: peak(long) <= 1.2 x peak(short) + samples(long).
LIMIT_FACTOR = 1.2
PAUSE_SECONDS = 0.3
DECODED_BYTES_PER_SAMPLE = 4  # read_audio's float32.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_flags():
  tflite_student.define_model_and_test_set_flags(max_utterances=200)
  flags.DEFINE_float('short_minutes', 1.0, 'Length of the reference file.')
  flags.DEFINE_float('long_minutes', 60.0, 'Length of the long file.')
  flags.DEFINE_integer('threads', 1, 'TFLite interpreter threads.')


def joined_audio(utterances: Sequence[np.ndarray],
                 num_samples: int) -> np.ndarray:
  """`num_samples` of int16 utterances joined by pauses, repeated as needed."""
  pause = np.zeros([int(PAUSE_SECONDS * tfrecord_schema.SAMPLE_RATE)],
                   np.int16)
  pieces, total = [], 0
  while total < num_samples:
    for utterance in utterances:
      pieces += [utterance, pause]
      total += len(utterance) + len(pause)
      if total >= num_samples:
        break
  return np.concatenate(pieces)[:num_samples]


# Runs argv[1:] in a grandchild and prints its peak RSS (KB). A child's
# ru_maxrss starts at the peak of the memory it was forked from, so a child
# of this (TensorFlow-sized) process would report at least this process's
# peak; forked from this small interpreter, the command's figure is its own.
_PEAK_RSS_WRAPPER = """
import os, sys
pid = os.fork()
if pid == 0:
  null = os.open(os.devnull, os.O_WRONLY)
  os.dup2(null, 1)
  os.dup2(null, 2)
  os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_of(command: List[str]) -> Tuple[float, float, int]:
  """(peak RSS MB, wall seconds, exit code) of a command run to its end."""
  began = time.perf_counter()
  result = subprocess.run([sys.executable, '-c', _PEAK_RSS_WRAPPER, *command],
                          cwd=REPO_ROOT, capture_output=True, text=True,
                          check=False)
  return (int(result.stdout) / 1024, time.perf_counter() - began,
          result.returncode)


def latency_by_tenth(chunk_seconds: np.ndarray) -> List[Tuple[float, float]]:
  """(p50, p95) in ms of all the calls, the first and the last tenth."""
  tenth = max(1, len(chunk_seconds) // 10)
  return [tuple(np.percentile(part * 1e3, [50, 95])) for part in (
      chunk_seconds, chunk_seconds[:tenth], chunk_seconds[-tenth:])]


def main(argv):
  del argv
  loaded, test_set = tflite_student.load_model_and_test_set(
      'long_audio', FLAGS.model_dir, FLAGS.records, FLAGS.max_utterances)
  work_dir = tempfile.mkdtemp()
  rate = tfrecord_schema.SAMPLE_RATE
  utterances = [audio for audio, _ in test_set]
  files = {}
  for name, minutes in (('short', FLAGS.short_minutes),
                        ('long', FLAGS.long_minutes)):
    files[name] = os.path.join(work_dir, f'{name}.wav')
    soundfile.write(files[name], joined_audio(utterances,
                                              int(minutes * 60 * rate)),
                    rate, subtype='PCM_16')
  model_path = os.path.join(work_dir, 'student.tflite')
  tflite_export.write_model(
      model_path, tflite_export.convert(streaming.from_loaded_model(loaded),
                                        'none'),
      loaded.tokenizer.id_to_piece)
  commands = {
      'transcribe': [sys.executable, '-m', 'asr_kd.bin.transcribe',
                     f'--model_dir={FLAGS.model_dir}'],
      'tflite_transcribe': [sys.executable, '-m',
                            'asr_kd.bin.tflite_transcribe',
                            f'--model={model_path}',
                            f'--threads={FLAGS.threads}'],
  }
  long_samples = int(FLAGS.long_minutes * 60 * rate)
  decoded_mb = long_samples * DECODED_BYTES_PER_SAMPLE / 2**20
  print(f'{FLAGS.short_minutes:g} and {FLAGS.long_minutes:g} minutes of '
        f'{len(utterances)} test utterances; the long file decodes to '
        f'{decoded_mb:.0f} MB of float32 samples')
  print('| tool | peak RSS MB, short | peak RSS MB, long | limit MB | '
        'within | wall s, long |')
  print('|---|---|---|---|---|---|')
  for tool, command in commands.items():
    short_peak, _, short_code = peak_rss_of(command + [files['short']])
    long_peak, long_seconds, long_code = peak_rss_of(command + [files['long']])
    if short_code or long_code:
      sys.exit(f'long_audio: {tool} exited with {short_code} / {long_code}')
    limit = LIMIT_FACTOR * short_peak + decoded_mb
    print(f'| {tool} | {short_peak:.0f} | {long_peak:.0f} | {limit:.0f} | '
          f'{"yes" if long_peak <= limit else "NO"} | {long_seconds:.0f} |',
          flush=True)
  streamer = tflite_runtime.TfliteStreamer(model_path, FLAGS.threads)
  samples, _ = soundfile.read(files['long'], dtype='int16')
  output = streamer.transcribe(samples, keep_encoder_outputs=False)
  (all_p50, all_p95), (first_p50, first_p95), (last_p50, last_p95) = (
      latency_by_tenth(output.chunk_seconds))
  print(f'streaming {len(output.chunk_seconds)} chunks: p50 {all_p50:.2f} '
        f'ms p95 {all_p95:.2f} ms; first tenth p50 '
        f'{first_p50:.2f} ms p95 {first_p95:.2f} ms, last tenth p50 '
        f'{last_p50:.2f} ms p95 {last_p95:.2f} ms')


if __name__ == '__main__':
  define_flags()
  app.run(main)
