r"""Rebuilds the demo corpus's sentence pools from two Debian packages.

  apt-get download wordnet-base fortunes-min fortunes
  for deb in *.deb; do dpkg-deb -x "$deb" /tmp/text_sources; done
  python -m tfrecords_tools.build_demo_sentences \
      --wordnet_dir=/tmp/text_sources/usr/share/wordnet \
      --fortunes_dir=/tmp/text_sources/usr/share/games/fortunes

writes tfrecords_tools/data/demo_sentences/{wordnet_examples,fortunes}.txt
(the files the repository ships; `apt-get download` needs no root). The
same rule (`clean_sentence`) filters both sources; the fortune pool then drops
every sentence whose words also form a WordNet sentence, so the out-of-domain
split shares no sentence with the others.
"""

import os
import re
import sys
from typing import Iterable, Iterator, List, Optional, Sequence

from absl import app
from absl import flags
import wordfreq

from tfrecords_tools import demo_sentences

# Everyday vocabulary: every word at least this common (wordfreq's Zipf
# scale: 3 is about once per million words).
MIN_ZIPF = 3.0
MIN_WORDS = 4
MAX_WORDS = 20
# Fortune files of everyday prose. Left out: verse, jargon (computers, linux,
# perl, debian, startrek, ...), ASCII art, dialogue riddles, stage directions.
FORTUNE_FILES = (
    'art', 'cookie', 'education', 'food', 'fortunes', 'humorists', 'kids',
    'law', 'literature', 'love', 'medicine', 'men-women', 'miscellaneous',
    'news', 'people', 'pets', 'platitudes', 'politics', 'science', 'sports',
    'wisdom', 'work')
WORDNET_PARTS_OF_SPEECH = ('noun', 'verb', 'adj', 'adv')

_ALLOWED_CHARACTERS = re.compile(r"[A-Za-z][A-Za-z ,;:!?.'\-]*")
# One token: words joined by hyphens or inner apostrophes, then at most one
# punctuation mark.
_TOKEN = re.compile(r"[A-Za-z]+(?:['-][A-Za-z]+)*[,;:!?.]?")
_QUOTED = re.compile(r'"([^"]+)"')
_SENTENCE_END = re.compile(r'(?<=[.!?])\s+')
_ATTRIBUTION = re.compile(r'^\s*--')


def clean_sentence(raw: str, min_zipf: float = MIN_ZIPF) -> Optional[str]:
  """The sentence as the corpus speaks it, or None when it is not kept.

  Kept: letters, spaces, `,;:!?.` after a word, hyphens and apostrophes
  inside words; 4-20 words; no abbreviation or single letter other than "a"
  and "I"; every word at least `min_zipf` common in English. The first
  letter is made upper case and a full stop is added when the sentence has
  no final mark.

  Args:
    raw: one sentence from a source.
    min_zipf: the least wordfreq Zipf frequency of every word.

  Returns:
    The cleaned sentence, or None.
  """
  text = ' '.join(raw.replace('`', "'").split()).strip('\'" ')
  if not text or not _ALLOWED_CHARACTERS.fullmatch(text):
    return None
  tokens = text.split(' ')
  if not all(_TOKEN.fullmatch(token) for token in tokens):
    return None
  # Capitals only lead a token: this drops abbreviations ("TV") and names
  # spelled unlike they sound ("McKinley"), and it holds before and after the
  # first letter is upper-cased below.
  if any(any(c.isupper() for c in token[1:]) for token in tokens):
    return None
  sentence_words = demo_sentences.words(text)
  if not MIN_WORDS <= len(sentence_words) <= MAX_WORDS:
    return None
  if any(len(word) == 1 and word not in ('a', 'i') for word in sentence_words):
    return None
  if any(wordfreq.zipf_frequency(word, 'en') < min_zipf
         for word in sentence_words):
    return None
  text = text[0].upper() + text[1:]
  if text[-1] not in '.!?':
    text = text.rstrip(',;:') + '.'
  return text


def wordnet_examples(wordnet_dir: str) -> Iterator[str]:
  """The quoted example sentences of every WordNet synset gloss."""
  for part in WORDNET_PARTS_OF_SPEECH:
    path = os.path.join(wordnet_dir, f'data.{part}')
    with open(path, encoding='latin-1') as data_file:
      for line in data_file:
        # Lines starting with spaces are the license header.
        if line.startswith(' ') or ' | ' not in line:
          continue
        yield from _QUOTED.findall(line.split(' | ', 1)[1])


def fortune_sentences(fortunes_dir: str,
                      files: Sequence[str] = FORTUNE_FILES) -> Iterator[str]:
  """The sentences of the fortune files, attribution lines left out."""
  for name in files:
    with open(os.path.join(fortunes_dir, name), encoding='latin-1') as f:
      entries = re.split(r'\n%\n', f.read())
    for entry in entries:
      lines = [line for line in entry.splitlines()
               if not _ATTRIBUTION.match(line)]
      yield from _SENTENCE_END.split(' '.join(lines))


def build_pool(raw_sentences: Iterable[str], min_zipf: float = MIN_ZIPF,
               exclude: Iterable[str] = ()) -> List[str]:
  """Cleaned sentences, sorted, one per distinct transcript.

  Args:
    raw_sentences: sentences from a source.
    min_zipf: see `clean_sentence`.
    exclude: transcripts to leave out (another pool's).

  Returns:
    The pool, sorted; of sentences with the same transcript the first in
    sorted order is kept.
  """
  seen = set(exclude)
  pool = []
  for sentence in sorted({clean_sentence(raw, min_zipf)
                          for raw in raw_sentences} - {None}):
    transcript = demo_sentences.transcript_text(sentence)
    if transcript not in seen:
      seen.add(transcript)
      pool.append(sentence)
  return pool


def vocabulary_of(pool: Sequence[str]) -> set:
  return {word for sentence in pool for word in demo_sentences.words(sentence)}


def write_pool(sentences: Sequence[str], path: str):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as pool_file:
    pool_file.writelines(sentence + '\n' for sentence in sentences)


FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('wordnet_dir', '/usr/share/wordnet',
                      'Folder with WordNet 3.0 data.noun, data.verb, ... '
                      '(Debian package wordnet-base).')
  flags.DEFINE_string('fortunes_dir', '/usr/share/games/fortunes',
                      'Folder with the fortune files (Debian packages '
                      'fortunes-min and fortunes).')
  flags.DEFINE_string('output_dir', demo_sentences.DATA_DIR,
                      'Where the two pool files are written.')
  flags.DEFINE_float('min_zipf', MIN_ZIPF, 'Least wordfreq Zipf frequency '
                     'of every word of a kept sentence.')


def main(argv):
  if len(argv) > 1:
    sys.exit(f'build_demo_sentences: unexpected arguments: {argv[1:]}')
  try:
    wordnet = build_pool(wordnet_examples(FLAGS.wordnet_dir), FLAGS.min_zipf)
    fortunes = build_pool(
        fortune_sentences(FLAGS.fortunes_dir), FLAGS.min_zipf,
        exclude=[demo_sentences.transcript_text(s) for s in wordnet])
  except OSError as error:
    sys.exit(f'build_demo_sentences: error: {error}')
  wordnet_vocabulary = vocabulary_of(wordnet)
  for source, pool in (('wordnet', wordnet), ('fortunes', fortunes)):
    path = os.path.join(FLAGS.output_dir,
                        demo_sentences.SOURCE_FILES[source])
    write_pool(pool, path)
    running_words = [word for sentence in pool
                     for word in demo_sentences.words(sentence)]
    with_apostrophe = sum("'" in sentence for sentence in pool)
    unseen = sum(word not in wordnet_vocabulary for word in running_words)
    print(f'{path}: {len(pool)} sentences, {len(vocabulary_of(pool))} '
          f'distinct words; {100 * with_apostrophe / len(pool):.1f}% of '
          f'sentences hold an apostrophe; {100 * unseen / len(running_words):.1f}'
          '% of running words are not in the wordnet pool')



if __name__ == '__main__':
  define_flags()
  app.run(main)
