"""The demo corpus's English sentences: two shipped pools, one per text source.

`tfrecords_tools/data/demo_sentences/` holds one sentence per line, made by
`build_demo_sentences` from two Debian packages (docs/demo_corpus.md, "Texts"):

  wordnet:  example sentences of WordNet 3.0 (package wordnet-base); the
            train, dev, test and unlabeled splits draw from it;
  fortunes: sentences of the BSD fortune files (fortunes-min, fortunes); only
            the out-of-domain split `ood` draws from it.

Every shipped sentence uses only letters, spaces, `,;:!?.-` and apostrophes
inside words, so its transcript is the project's normalization of it
(asr_kd.text.normalization) in upper case, computed here without TensorFlow.
"""

import functools
import os
import re
from typing import List, Tuple

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data',
                        'demo_sentences')
# Source name -> file under DATA_DIR.
SOURCE_FILES = {'wordnet': 'wordnet_examples.txt', 'fortunes': 'fortunes.txt'}
# A word: letters, with apostrophes only between letters ("don't").
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(sentence: str) -> List[str]:
  """The lowercase words of a shipped sentence (hyphens separate words)."""
  return _WORD.findall(sentence.lower())


def transcript_text(sentence: str) -> str:
  """LibriSpeech transcript form: upper case, no punctuation."""
  return ' '.join(words(sentence)).upper()


@functools.lru_cache(maxsize=None)
def load_pool(source: str) -> Tuple[str, ...]:
  """The sentences of one source, in file order (sorted, no duplicates)."""
  if source not in SOURCE_FILES:
    raise ValueError(f'unknown sentence source {source!r}; sources: '
                     f'{sorted(SOURCE_FILES)}')
  path = os.path.join(DATA_DIR, SOURCE_FILES[source])
  with open(path, encoding='utf-8') as pool_file:
    return tuple(line.rstrip('\n') for line in pool_file if line.strip())
