r"""Trains the SentencePiece tokenizer on normalized transcripts.

  python -m tfrecords_tools.train_tokenizer \
    --input='data/train-*.tfrecord' --output_prefix=data/spm256 \
    --vocab_size=256 --model_type=unigram

Writes `<output_prefix>.model` and `<output_prefix>.vocab`. Id 0 is the RNN-T
blank ('<blank>', SentencePiece's pad piece), id 1 is '<unk>', no BOS/EOS.
`--model_type=char` gives one id per character seen in training (plus the word
boundary '▁'); its `--vocab_size` is an upper bound, not a target.
Sentences are normalized (asr_kd.text.normalization), deduplicated and
sorted before training, so the same input gives the same model.
"""

import os
import sys
from typing import Iterable, List

from absl import app
from absl import flags
import sentencepiece as spm
import tensorflow as tf

from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.text import normalization

FLAGS = flags.FLAGS
MODEL_TYPES = ('unigram', 'bpe', 'char')


def define_flags():
  """Defined only when run as a binary, so importing never clashes."""
  flags.DEFINE_string(
      'input', None, 'TFRecord glob(s), comma-separated, or a text file with '
      'one sentence per line when --input_format=text.')
  flags.DEFINE_enum('input_format', 'tfrecord', ['tfrecord', 'text'],
                    'Format of --input.')
  flags.DEFINE_string('output_prefix', None,
                      'Writes <output_prefix>.model and .vocab.')
  flags.DEFINE_integer('vocab_size', 256,
                       'Number of ids, blank and unk included (an upper '
                       'bound with --model_type=char).')
  flags.DEFINE_enum('model_type', 'unigram', list(MODEL_TYPES),
                    'SentencePiece model type: subword units (unigram, bpe) '
                    'or characters (char).')
  flags.DEFINE_float('character_coverage', 1.0,
                     'SentencePiece character coverage.')
  flags.DEFINE_integer('num_threads', 1, 'SentencePiece trainer threads.')


def read_sentences(input_path: str, input_format: str = 'tfrecord'
                  ) -> List[str]:
  """Reads, normalizes, deduplicates and sorts the training sentences.

  Args:
    input_path: TFRecord glob(s) (comma-separated) or a text file path.
    input_format: 'tfrecord' (schema field 'transcript') or 'text'.

  Returns:
    Sorted unique non-empty normalized sentences.
  """
  if input_format == 'text':
    if not tf.io.gfile.exists(input_path):
      raise ValueError(f'Text file not found: {input_path}')
    with tf.io.gfile.GFile(input_path, 'r') as text_file:
      raw = tf.data.Dataset.from_tensor_slices(text_file.read().splitlines())
  else:
    files = input_pipeline.expand_input_path(input_path)
    raw = input_pipeline.read_records(files).map(
        lambda record: tfrecord_schema.parse_example(record)[
            tfrecord_schema.TRANSCRIPT])
  normalized = raw.batch(1024).map(normalization.normalize)
  sentences = set()
  for batch in normalized.as_numpy_iterator():
    sentences.update(s.decode('utf-8') for s in batch)
  sentences.discard('')
  return sorted(sentences)


def train_sentencepiece(sentences: Iterable[str],
                        output_prefix: str,
                        vocab_size: int = 256,
                        model_type: str = 'unigram',
                        character_coverage: float = 1.0,
                        num_threads: int = 1) -> str:
  """Trains a SentencePiece model with id 0 reserved for the RNN-T blank.

  Args:
    sentences: normalized training sentences (order matters for determinism).
    output_prefix: writes `<output_prefix>.model` and `.vocab`.
    vocab_size: number of ids including '<blank>' and '<unk>'; for 'char',
      the most ids (every character of the training text when it is large
      enough).
    model_type: 'unigram', 'bpe' or 'char'.
    character_coverage: fraction of characters covered by the vocabulary.
    num_threads: trainer threads.

  Returns:
    Path of the written `.model` file.
  """
  if model_type not in MODEL_TYPES:
    raise ValueError(f'model_type must be one of {MODEL_TYPES}, got '
                     f'{model_type!r}.')
  sentences = list(sentences)
  if not sentences:
    raise ValueError('No non-empty transcripts to train the tokenizer on.')
  output_dir = os.path.dirname(output_prefix)
  if output_dir:
    tf.io.gfile.makedirs(output_dir)
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(sentences),
      model_prefix=output_prefix,
      vocab_size=vocab_size,
      model_type=model_type,
      character_coverage=character_coverage,
      pad_id=tokenizer_lib.BLANK_ID,
      pad_piece=tokenizer_lib.BLANK_PIECE,
      unk_id=tokenizer_lib.UNK_ID,
      bos_id=-1,
      eos_id=-1,
      # Text is already normalized by our own rule; SentencePiece must not
      # change it again or detokenize would not invert tokenize.
      normalization_rule_name='identity',
      # Every character the normalizer keeps gets an id, also one the
      # training text lacks (an apostrophe), so no word is out of reach.
      required_chars=normalization.ALPHABET,
      input_sentence_size=0,
      shuffle_input_sentence=False,
      num_threads=num_threads,
      # A character vocabulary has as many ids as the text has characters.
      hard_vocab_limit=model_type != 'char',
      minloglevel=2)
  return output_prefix + '.model'


def main(argv):
  del argv
  if not FLAGS.input or not FLAGS.output_prefix:
    sys.exit('error: --input and --output_prefix are required.')
  try:
    sentences = read_sentences(FLAGS.input, FLAGS.input_format)
    model_path = train_sentencepiece(
        sentences, FLAGS.output_prefix, FLAGS.vocab_size, FLAGS.model_type,
        FLAGS.character_coverage, FLAGS.num_threads)
  except (ValueError, RuntimeError, tf.errors.OpError) as error:
    message = str(error).strip().splitlines()[-1] if str(error) else repr(error)
    sys.exit(f'error: {message}')
  print(f'Wrote {model_path} from {len(sentences)} unique sentences.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
