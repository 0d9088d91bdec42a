"""WER of a model on waveforms shifted by leading zero samples.

The streaming frontend (`StreamingRecognizer`, `streaming_reference`, the
TFLite export) puts `tail_samples` zero samples before every utterance;
training and `evaluate` do not. This measures what such an offset does to
the full-utterance recognizer that `evaluate` runs:

  .venv/bin/python -m benchmarks.offset_sensitivity --model_dir=runs/S4 \
      --records='demo_run/tfrecords/test-*' --offset_samples=0,320

prints, per offset, the WER and how many transcripts equal those at the first
offset.
"""

from absl import app
from absl import flags
import numpy as np

from asr_kd.decoding import wer as wer_lib
from asr_kd.inference import recognizer as recognizer_lib
from benchmarks import tflite_student

FLAGS = flags.FLAGS


def define_flags():
  tflite_student.define_model_and_test_set_flags(max_utterances=400)
  flags.DEFINE_list('offset_samples', ['0', '320'],
                    'Zero samples put before each waveform, one run each.')


def main(argv):
  del argv
  loaded, utterances = tflite_student.load_model_and_test_set(
      'offset_sensitivity', FLAGS.model_dir, FLAGS.records,
      FLAGS.max_utterances)
  recognizer = recognizer_lib.from_loaded_model(
      loaded, loaded.task_config.decoding)
  waveforms = [recognizer_lib.to_float_waveform(audio)
               for audio, _ in utterances]
  references = [text for _, text in utterances]
  first_texts = None
  for offset in (int(value) for value in FLAGS.offset_samples):
    texts = recognizer.recognize(
        [np.concatenate([np.zeros(offset, np.float32), waveform])
         for waveform in waveforms])
    if first_texts is None:
      first_texts = texts
    same = sum(text == other for text, other in zip(texts, first_texts))
    print(f'offset {offset} samples: WER '
          f'{wer_lib.corpus_wer(texts, references):.4f}, '
          f'{same}/{len(texts)} transcripts equal to offset '
          f'{FLAGS.offset_samples[0]}', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
