"""Varied English sentences for the synthetic demo corpus.

Word source: the noun, verb and adjective lists that the `wonderwords` package
ships (wonderwords/assets/*.txt), minus its profanity list, kept only when
`wordfreq` (Zipf scale, English) rates them common enough; adverbs are derived
from those adjectives (quick -> quickly) when wordfreq knows the derived word.
Function words (determiners, pronouns, prepositions, conjunctions, numbers
spelled out, auxiliaries, time words) are listed here. A small probabilistic
grammar of templates (statements in several tenses, copulas, "there is",
questions, imperatives, reported speech, coordinated and subordinate clauses)
fills the slots; content words are drawn with probability proportional to
the square root of their corpus frequency, so common words dominate but the
tail is still used. Output is lowercase, letters and spaces only, with one
final '.' or '?', between `min_words` and `max_words` words.

All randomness comes from the `numpy.random.Generator` passed to
`SentenceGenerator.sentence`, so a seeded generator gives the same sentences.
"""

import functools
import os
import re
from typing import Dict, FrozenSet, List, Sequence, Tuple

import numpy as np
import wonderwords
import wordfreq

# Minimum wordfreq Zipf frequency (log10 of occurrences per billion words) for
# a content word; 3.5 is roughly "a few times per million words".
MIN_NOUN_ZIPF = 3.5
MIN_VERB_ZIPF = 3.3
MIN_ADJECTIVE_ZIPF = 3.3
MIN_ADVERB_ZIPF = 3.0

# Entries of the wonderwords lists that read badly in the templates.
_EXCLUDED = frozenset({
    'be', 'have', 'do', 'many', 'much', 'more', 'most', 'ahead', 'mere',
    'other', 'such', 'own', 'same', 'few', 'last', 'next', 'only', 'very',
})

_DETERMINERS_SINGULAR = ('the', 'the', 'the', 'a', 'a', 'this', 'that', 'my',
                         'your', 'his', 'her', 'our', 'their', 'every', 'one',
                         'another', 'each')
_DETERMINERS_PLURAL = ('the', 'the', 'these', 'those', 'some', 'many', 'few',
                       'my', 'your', 'our', 'their', 'all the', 'several',
                       'both')
_NUMBERS = ('two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
            'ten', 'eleven', 'twelve', 'fifteen', 'twenty', 'thirty',
            'forty', 'fifty', 'a hundred', 'a thousand', 'twenty five')
# (subject form, object form, third person singular?)
_PRONOUNS = (('i', 'me', False), ('you', 'you', False), ('he', 'him', True),
             ('she', 'her', True), ('it', 'it', True), ('we', 'us', False),
             ('they', 'them', False))
_PREPOSITIONS = ('in', 'on', 'under', 'near', 'behind', 'with', 'without',
                 'from', 'into', 'across', 'over', 'beside', 'after',
                 'before', 'around', 'through', 'between', 'toward', 'inside',
                 'outside', 'against', 'along', 'during', 'for', 'about')
_COORDINATORS = ('and', 'but', 'so', 'or', 'yet')
_SUBORDINATORS = ('because', 'when', 'while', 'although', 'before', 'after',
                  'if', 'since', 'until', 'unless', 'as soon as')
_MODALS = ('can', 'could', 'should', 'must', 'might', 'may', 'would', 'will')
# The first six are degree words; the rest need a form of 'be'.
_INTENSIFIERS = ('very', 'quite', 'really', 'too', 'so', 'rather', 'not',
                 'always', 'never', 'almost')
_REPORTING_VERBS = ('think', 'know', 'believe', 'hope', 'say', 'feel', 'hear',
                    'suspect', 'guess', 'notice', 'remember', 'doubt')
_TIME_WORDS = ('today', 'yesterday', 'tomorrow', 'tonight', 'now', 'later',
               'again', 'soon', 'every day', 'last week', 'next year',
               'this morning', 'in the evening', 'at night', 'once',
               'on monday', 'on tuesday', 'on wednesday', 'on thursday',
               'on friday', 'on saturday', 'on sunday', 'in january',
               'in april', 'in july', 'in october', 'at noon',
               'before dinner', 'after lunch', 'last night', 'all day')
_COMMON_ADVERBS = ('quickly', 'slowly', 'carefully', 'quietly', 'loudly',
                   'often', 'always', 'never', 'sometimes', 'rarely',
                   'usually', 'already', 'still', 'together', 'alone',
                   'here', 'there', 'away', 'outside', 'inside', 'early',
                   'late', 'hard', 'well', 'badly', 'almost', 'finally',
                   'suddenly', 'certainly', 'probably', 'perhaps', 'gently',
                   'happily', 'easily', 'clearly', 'simply')
_QUESTION_WORDS = ('where', 'why', 'when', 'how')

# Irregular verbs: base -> (past, past participle). Anything else is regular.
_IRREGULAR_VERBS = {
    'arise': ('arose', 'arisen'), 'awake': ('awoke', 'awoken'),
    'bear': ('bore', 'borne'), 'beat': ('beat', 'beaten'),
    'become': ('became', 'become'), 'begin': ('began', 'begun'),
    'bend': ('bent', 'bent'), 'bet': ('bet', 'bet'),
    'bid': ('bid', 'bid'), 'bind': ('bound', 'bound'),
    'bite': ('bit', 'bitten'), 'bleed': ('bled', 'bled'),
    'blow': ('blew', 'blown'), 'break': ('broke', 'broken'),
    'breed': ('bred', 'bred'), 'bring': ('brought', 'brought'),
    'broadcast': ('broadcast', 'broadcast'), 'build': ('built', 'built'),
    'burst': ('burst', 'burst'), 'buy': ('bought', 'bought'),
    'cast': ('cast', 'cast'), 'catch': ('caught', 'caught'),
    'choose': ('chose', 'chosen'), 'cling': ('clung', 'clung'),
    'come': ('came', 'come'), 'cost': ('cost', 'cost'),
    'creep': ('crept', 'crept'), 'cut': ('cut', 'cut'),
    'deal': ('dealt', 'dealt'), 'dig': ('dug', 'dug'),
    'draw': ('drew', 'drawn'), 'drink': ('drank', 'drunk'),
    'drive': ('drove', 'driven'), 'dwell': ('dwelt', 'dwelt'),
    'eat': ('ate', 'eaten'), 'fall': ('fell', 'fallen'),
    'feed': ('fed', 'fed'), 'feel': ('felt', 'felt'),
    'fight': ('fought', 'fought'), 'find': ('found', 'found'),
    'flee': ('fled', 'fled'), 'fling': ('flung', 'flung'),
    'fly': ('flew', 'flown'), 'forbid': ('forbade', 'forbidden'),
    'forecast': ('forecast', 'forecast'), 'foresee': ('foresaw', 'foreseen'),
    'forget': ('forgot', 'forgotten'), 'forgive': ('forgave', 'forgiven'),
    'freeze': ('froze', 'frozen'), 'get': ('got', 'gotten'),
    'give': ('gave', 'given'), 'go': ('went', 'gone'),
    'grind': ('ground', 'ground'), 'grow': ('grew', 'grown'),
    'hang': ('hung', 'hung'), 'hear': ('heard', 'heard'),
    'hide': ('hid', 'hidden'), 'hit': ('hit', 'hit'),
    'hold': ('held', 'held'), 'hurt': ('hurt', 'hurt'),
    'keep': ('kept', 'kept'), 'kneel': ('knelt', 'knelt'),
    'know': ('knew', 'known'), 'lay': ('laid', 'laid'),
    'lead': ('led', 'led'), 'leap': ('leapt', 'leapt'),
    'leave': ('left', 'left'), 'lend': ('lent', 'lent'),
    'let': ('let', 'let'), 'lie': ('lay', 'lain'),
    'light': ('lit', 'lit'), 'lose': ('lost', 'lost'),
    'make': ('made', 'made'), 'mean': ('meant', 'meant'),
    'meet': ('met', 'met'), 'mislead': ('misled', 'misled'),
    'mistake': ('mistook', 'mistaken'),
    'misunderstand': ('misunderstood', 'misunderstood'),
    'overcome': ('overcame', 'overcome'), 'oversee': ('oversaw', 'overseen'),
    'overtake': ('overtook', 'overtaken'),
    'overthrow': ('overthrew', 'overthrown'), 'pay': ('paid', 'paid'),
    'prove': ('proved', 'proven'), 'put': ('put', 'put'),
    'quit': ('quit', 'quit'), 'read': ('read', 'read'),
    'rebuild': ('rebuilt', 'rebuilt'), 'redo': ('redid', 'redone'),
    'rewrite': ('rewrote', 'rewritten'), 'ride': ('rode', 'ridden'),
    'ring': ('rang', 'rung'), 'rise': ('rose', 'risen'),
    'run': ('ran', 'run'), 'say': ('said', 'said'), 'see': ('saw', 'seen'),
    'seek': ('sought', 'sought'), 'sell': ('sold', 'sold'),
    'send': ('sent', 'sent'), 'set': ('set', 'set'),
    'sew': ('sewed', 'sewn'), 'shake': ('shook', 'shaken'),
    'shed': ('shed', 'shed'), 'shine': ('shone', 'shone'),
    'shoot': ('shot', 'shot'), 'show': ('showed', 'shown'),
    'shrink': ('shrank', 'shrunk'), 'shut': ('shut', 'shut'),
    'sing': ('sang', 'sung'), 'sink': ('sank', 'sunk'),
    'sit': ('sat', 'sat'), 'sleep': ('slept', 'slept'),
    'slide': ('slid', 'slid'), 'sling': ('slung', 'slung'),
    'sow': ('sowed', 'sown'), 'speak': ('spoke', 'spoken'),
    'speed': ('sped', 'sped'), 'spend': ('spent', 'spent'),
    'spin': ('spun', 'spun'), 'spit': ('spat', 'spat'),
    'split': ('split', 'split'), 'spread': ('spread', 'spread'),
    'spring': ('sprang', 'sprung'), 'stand': ('stood', 'stood'),
    'steal': ('stole', 'stolen'), 'stick': ('stuck', 'stuck'),
    'sting': ('stung', 'stung'), 'stink': ('stank', 'stunk'),
    'stride': ('strode', 'stridden'), 'strike': ('struck', 'struck'),
    'string': ('strung', 'strung'), 'strive': ('strove', 'striven'),
    'swear': ('swore', 'sworn'), 'sweep': ('swept', 'swept'),
    'swim': ('swam', 'swum'), 'swing': ('swung', 'swung'),
    'take': ('took', 'taken'), 'teach': ('taught', 'taught'),
    'tear': ('tore', 'torn'), 'tell': ('told', 'told'),
    'think': ('thought', 'thought'), 'throw': ('threw', 'thrown'),
    'thrust': ('thrust', 'thrust'), 'tread': ('trod', 'trodden'),
    'understand': ('understood', 'understood'),
    'undertake': ('undertook', 'undertaken'), 'undo': ('undid', 'undone'),
    'uphold': ('upheld', 'upheld'), 'upset': ('upset', 'upset'),
    'wake': ('woke', 'woken'), 'wear': ('wore', 'worn'),
    'weave': ('wove', 'woven'), 'weep': ('wept', 'wept'),
    'win': ('won', 'won'), 'wind': ('wound', 'wound'),
    'withdraw': ('withdrew', 'withdrawn'), 'withhold': ('withheld', 'withheld'),
    'withstand': ('withstood', 'withstood'), 'wring': ('wrung', 'wrung'),
    'write': ('wrote', 'written'),
}
# Two-syllable verbs stressed on the last syllable double their consonant.
_FINAL_STRESS_VERBS = frozenset({
    'admit', 'commit', 'compel', 'control', 'equip', 'omit', 'occur',
    'patrol', 'permit', 'prefer', 'refer', 'regret', 'submit', 'transfer',
    'confer', 'defer', 'deter', 'expel', 'propel', 'rebel', 'repel',
    'transmit', 'emit', 'acquit', 'incur', 'recur', 'compel', 'excel',
})
_IRREGULAR_PLURALS = {
    'man': 'men', 'woman': 'women', 'child': 'children', 'person': 'people',
    'foot': 'feet', 'tooth': 'teeth', 'mouse': 'mice', 'goose': 'geese',
    'knife': 'knives', 'wife': 'wives', 'life': 'lives', 'leaf': 'leaves',
    'half': 'halves', 'wolf': 'wolves', 'shelf': 'shelves', 'loaf': 'loaves',
    'thief': 'thieves', 'calf': 'calves', 'potato': 'potatoes',
    'tomato': 'tomatoes', 'hero': 'heroes', 'echo': 'echoes',
    'sheep': 'sheep', 'fish': 'fish', 'deer': 'deer', 'series': 'series',
    'species': 'species', 'ox': 'oxen', 'cactus': 'cacti',
    'crisis': 'crises', 'analysis': 'analyses', 'thesis': 'theses',
}

_VOWELS = 'aeiou'
_WORD_PATTERN = re.compile(r'^[a-z]+$')


def _is_consonant_y_ending(word: str) -> bool:
  return word.endswith('y') and len(word) > 1 and word[-2] not in _VOWELS


def _doubles_final_consonant(verb: str) -> bool:
  """True for 'stop' -> 'stopped': one vowel group ending consonant-vowel-
  consonant (not w, x or y), or a known final-stress verb."""
  if verb in _FINAL_STRESS_VERBS:
    return True
  vowel_groups = re.findall(r'[aeiou]+', verb)
  return (len(vowel_groups) == 1 and len(verb) >= 3 and
          verb[-1] not in _VOWELS + 'wxy' and verb[-2] in _VOWELS and
          verb[-3] not in _VOWELS)


def third_person(verb: str) -> str:
  """Returns the 3rd person singular present: 'watch' -> 'watches'."""
  if verb == 'have':
    return 'has'
  if _is_consonant_y_ending(verb):
    return verb[:-1] + 'ies'
  if verb.endswith(('s', 'x', 'z', 'ch', 'sh', 'o')):
    return verb + 'es'
  return verb + 's'


def past_tense(verb: str) -> str:
  """Returns the simple past: 'stop' -> 'stopped', 'go' -> 'went'."""
  if verb in _IRREGULAR_VERBS:
    return _IRREGULAR_VERBS[verb][0]
  if verb.endswith('e'):
    return verb + 'd'
  if _is_consonant_y_ending(verb):
    return verb[:-1] + 'ied'
  if _doubles_final_consonant(verb):
    return verb + verb[-1] + 'ed'
  return verb + 'ed'


def past_participle(verb: str) -> str:
  """Returns the past participle: 'write' -> 'written'."""
  if verb in _IRREGULAR_VERBS:
    return _IRREGULAR_VERBS[verb][1]
  return past_tense(verb)


def present_participle(verb: str) -> str:
  """Returns the -ing form: 'make' -> 'making', 'run' -> 'running'."""
  if verb.endswith('ie'):
    return verb[:-2] + 'ying'
  if verb.endswith('e') and not verb.endswith(('ee', 'ye', 'oe')) and len(
      verb) > 2:
    return verb[:-1] + 'ing'
  if _doubles_final_consonant(verb):
    return verb + verb[-1] + 'ing'
  return verb + 'ing'


def plural(noun: str) -> str:
  """Returns the plural: 'box' -> 'boxes', 'city' -> 'cities'."""
  if noun in _IRREGULAR_PLURALS:
    return _IRREGULAR_PLURALS[noun]
  if _is_consonant_y_ending(noun):
    return noun[:-1] + 'ies'
  if noun.endswith(('s', 'x', 'z', 'ch', 'sh')):
    return noun + 'es'
  return noun + 's'


def _adverb_candidates(adjective: str) -> Tuple[str, ...]:
  if adjective.endswith('ic'):
    return (adjective + 'ally',)
  if adjective.endswith('le') and len(adjective) > 3:
    return (adjective[:-1] + 'y',)
  if _is_consonant_y_ending(adjective):
    return (adjective[:-1] + 'ily',)
  return (adjective + 'ly',)


def _read_wonderwords_list(name: str) -> List[str]:
  path = os.path.join(os.path.dirname(wonderwords.__file__), 'assets', name)
  with open(path, encoding='utf-8') as f:
    return [line.strip().lower() for line in f if line.strip()]


@functools.lru_cache(maxsize=1)
def load_lexicon() -> Dict[str, Tuple[Tuple[str, ...], np.ndarray]]:
  """Loads the content-word lists with their sampling probabilities.

  Returns:
    {'noun'|'verb'|'adjective'|'adverb': (sorted words, probabilities)}, with
    probabilities proportional to sqrt(word frequency).
  """
  profanity = frozenset(_read_wonderwords_list('profanitylist.txt'))

  def common(words: Sequence[str], min_zipf: float) -> Dict[str, float]:
    kept = {}
    for word in words:
      # No vowel means an abbreviation ('tv'), which eSpeak spells out.
      if (_WORD_PATTERN.match(word) and re.search('[aeiouy]', word) and
          word not in profanity and word not in _EXCLUDED):
        zipf = wordfreq.zipf_frequency(word, 'en')
        if zipf >= min_zipf:
          kept[word] = zipf
    return kept

  nouns = common(_read_wonderwords_list('nounlist.txt'), MIN_NOUN_ZIPF)
  # The verb list holds a few past forms ('acted', 'led'); keep base forms.
  verbs = common([verb for verb in _read_wonderwords_list('verblist.txt')
                  if verb in ('shed', 'wed') or not verb.endswith('ed') or
                  verb.endswith('eed')], MIN_VERB_ZIPF)
  adjectives = common(_read_wonderwords_list('adjectivelist.txt'),
                      MIN_ADJECTIVE_ZIPF)
  derived = [candidate for adjective in adjectives
             for candidate in _adverb_candidates(adjective)]
  adverbs = common(derived, MIN_ADVERB_ZIPF)
  for adverb in _COMMON_ADVERBS:
    adverbs.setdefault(adverb, wordfreq.zipf_frequency(adverb, 'en'))

  lexicon = {}
  for pos, zipfs in (('noun', nouns), ('verb', verbs),
                     ('adjective', adjectives), ('adverb', adverbs)):
    words = tuple(sorted(zipfs))
    # sqrt(frequency) = 10 ** (zipf / 2), up to a constant factor.
    weights = np.array([10.0 ** (zipfs[w] / 2.0) for w in words])
    lexicon[pos] = (words, weights / weights.sum())
  return lexicon


class SentenceGenerator:
  """Samples roughly grammatical English sentences from a small grammar."""

  def __init__(self, min_words: int = 3, max_words: int = 15):
    """Builds the generator.

    Args:
      min_words: shortest sentence, in words.
      max_words: longest sentence, in words.
    """
    if not 1 <= min_words <= max_words:
      raise ValueError(f'bad word range [{min_words}, {max_words}]')
    self.min_words = min_words
    self.max_words = max_words
    self._words = {}
    self._cumulative = {}
    for pos, (words, probabilities) in load_lexicon().items():
      self._words[pos] = words
      self._cumulative[pos] = np.cumsum(probabilities)
    self._templates = (
        (self._statement, 5.0), (self._copula, 1.5), (self._there_is, 1.0),
        (self._question, 2.0), (self._imperative, 1.0),
        (self._reported, 1.0), (self._compound, 2.0),
        (self._subordinate, 1.5), (self._perfect, 1.0),
    )
    weights = np.array([weight for _, weight in self._templates])
    self._template_cumulative = np.cumsum(weights / weights.sum())

  @property
  def content_vocabulary(self) -> FrozenSet[str]:
    """Base forms of all nouns, verbs, adjectives and adverbs it may use."""
    return frozenset(w for words in self._words.values() for w in words)

  def sentence(self, rng: np.random.Generator) -> str:
    """Samples one sentence.

    Args:
      rng: the source of randomness.

    Returns:
      Lowercase words separated by single spaces, ending in '.' or '?'.
    """
    while True:
      index = int(np.searchsorted(self._template_cumulative, rng.random(),
                                  side='right'))
      template = self._templates[min(index, len(self._templates) - 1)][0]
      words, mark = template(rng)
      text = ' '.join(words)
      if self.min_words <= len(text.split()) <= self.max_words:
        return text + mark

  # Word sampling.

  def _content(self, pos: str, rng: np.random.Generator) -> str:
    cumulative = self._cumulative[pos]
    index = int(np.searchsorted(cumulative, rng.random(), side='right'))
    return self._words[pos][min(index, len(cumulative) - 1)]

  @staticmethod
  def _pick(options: Sequence, rng: np.random.Generator):
    return options[int(rng.integers(len(options)))]

  # Phrases; each returns a list of words (some entries hold two words).

  def _noun_phrase(self, rng: np.random.Generator,
                   allow_pp: bool = True) -> Tuple[List[str], bool]:
    """Returns (words, is_singular)."""
    noun = self._content('noun', rng)
    adjectives = []
    if rng.random() < 0.4:
      adjectives.append(self._content('adjective', rng))
      if rng.random() < 0.15:
        adjectives.append(self._content('adjective', rng))
    singular = rng.random() < 0.6
    if singular:
      determiner = self._pick(_DETERMINERS_SINGULAR, rng)
      if determiner == 'a' and (adjectives or [noun])[0][0] in _VOWELS:
        determiner = 'an'
      words = [determiner] + adjectives + [noun]
    else:
      determiner = (self._pick(_NUMBERS, rng) if rng.random() < 0.3 else
                    self._pick(_DETERMINERS_PLURAL, rng))
      words = [determiner] + adjectives + [plural(noun)]
    if allow_pp and rng.random() < 0.2:
      words += self._prepositional_phrase(rng)
    return words, singular

  def _prepositional_phrase(self, rng: np.random.Generator) -> List[str]:
    return [self._pick(_PREPOSITIONS, rng)] + self._noun_phrase(
        rng, allow_pp=False)[0]

  def _subject(self, rng: np.random.Generator) -> Tuple[List[str], bool]:
    if rng.random() < 0.45:
      pronoun, _, singular = self._pick(_PRONOUNS, rng)
      return [pronoun], singular
    return self._noun_phrase(rng)

  def _object(self, rng: np.random.Generator) -> List[str]:
    if rng.random() < 0.2:
      return [self._pick(_PRONOUNS, rng)[1]]
    return self._noun_phrase(rng)[0]

  def _modifiers(self, rng: np.random.Generator) -> List[str]:
    """Optional trailing prepositional phrase, adverb and time word."""
    words = []
    if rng.random() < 0.35:
      words += self._prepositional_phrase(rng)
    if rng.random() < 0.25:
      words.append(self._content('adverb', rng))
    if rng.random() < 0.2:
      words.append(self._pick(_TIME_WORDS, rng))
    return words

  def _verb_phrase(self, subject: List[str], singular: bool,
                   rng: np.random.Generator) -> List[str]:
    """A finite verb in a random tense, agreeing with the subject."""
    verb = self._content('verb', rng)
    tense = rng.random()
    if tense < 0.4:
      return [past_tense(verb)]
    if tense < 0.6:
      return [third_person(verb) if singular else verb]
    if tense < 0.75:
      return [self._pick(_MODALS, rng), verb]
    if subject == ['i']:
      be = 'am' if tense < 0.9 else 'was'
    elif singular:
      be = 'is' if tense < 0.9 else 'was'
    else:
      be = 'are' if tense < 0.9 else 'were'
    return [be, present_participle(verb)]

  def _clause(self, rng: np.random.Generator) -> List[str]:
    subject, singular = self._subject(rng)
    words = subject + self._verb_phrase(subject, singular, rng)
    if rng.random() < 0.8:
      words += self._object(rng)
    return words

  # Templates; each returns (words, final punctuation mark).

  def _statement(self, rng):
    return self._clause(rng) + self._modifiers(rng), '.'

  def _copula(self, rng):
    subject, singular = self._subject(rng)
    if subject == ['i']:
      be = self._pick(('am', 'was'), rng)
    elif singular:
      be = self._pick(('is', 'was', 'seems', 'looks', 'became'), rng)
    else:
      be = self._pick(('are', 'were', 'seem', 'look', 'became'), rng)
    words = subject + [be]
    if rng.random() < 0.4:
      # 'not', 'always' and 'never' only read well after a form of 'be'.
      degree_only = be in ('seems', 'looks', 'became', 'seem', 'look')
      words.append(self._pick(_INTENSIFIERS[:6] if degree_only else
                              _INTENSIFIERS, rng))
    words.append(self._content('adjective', rng))
    if rng.random() < 0.3:
      words.append(self._pick(_TIME_WORDS, rng))
    return words, '.'

  def _there_is(self, rng):
    noun_phrase, singular = self._noun_phrase(rng, allow_pp=False)
    be = self._pick(('is', 'was') if singular else ('are', 'were'), rng)
    return (['there', be] + noun_phrase + self._prepositional_phrase(rng),
            '.')

  def _question(self, rng):
    subject, singular = self._subject(rng)
    verb = self._content('verb', rng)
    kind = rng.random()
    if kind < 0.35:
      auxiliary = self._pick(
          ('did', 'does' if singular else 'do', 'can', 'will', 'should'), rng)
      words = [auxiliary] + subject + [verb] + self._object(rng)
    elif kind < 0.7:
      words = ([self._pick(_QUESTION_WORDS, rng),
                self._pick(('did', 'will', 'can', 'should', 'must'), rng)] +
               subject + [verb] + self._object(rng))
    elif kind < 0.85:
      noun_phrase, singular = self._noun_phrase(rng)
      words = [self._pick(('where', 'why', 'how'), rng),
               'is' if singular else 'are'] + noun_phrase
    else:
      words = (['how many', plural(self._content('noun', rng)),
                'did'] + subject + [verb])
    if rng.random() < 0.3:
      words.append(self._pick(_TIME_WORDS, rng))
    return words, '?'

  def _imperative(self, rng):
    verb = self._content('verb', rng)
    prefix = self._pick(((), ('please',), ('do not',), ('never',),
                         ('always',), ('let us',)), rng)
    return list(prefix) + [verb] + self._object(rng) + self._modifiers(
        rng), '.'

  def _reported(self, rng):
    subject, singular = self._subject(rng)
    verb = self._pick(_REPORTING_VERBS, rng)
    verb = (past_tense(verb) if rng.random() < 0.5 else
            third_person(verb) if singular else verb)
    return subject + [verb, 'that'] + self._clause(rng), '.'

  def _compound(self, rng):
    return (self._clause(rng) + [self._pick(_COORDINATORS, rng)] +
            self._clause(rng), '.')

  def _subordinate(self, rng):
    main, subordinate = self._clause(rng), self._clause(rng)
    conjunction = self._pick(_SUBORDINATORS, rng)
    if rng.random() < 0.5:
      return main + [conjunction] + subordinate, '.'
    return [conjunction] + subordinate + main, '.'

  def _perfect(self, rng):
    subject, singular = self._subject(rng)
    have = self._pick(('has' if singular else 'have', 'had'), rng)
    adverb = [self._pick(('already', 'never', 'just', 'recently'),
                         rng)] if rng.random() < 0.3 else []
    return (subject + [have] + adverb +
            [past_participle(self._content('verb', rng))] +
            self._object(rng) + self._modifiers(rng), '.')
