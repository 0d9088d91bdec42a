r"""Builds a synthetic English speech corpus with eSpeak NG and Flite.

Usage:
  python -m tfrecords_tools.make_demo_corpus --output_dir=/tmp/demo_corpus \
      [--num_train=8000 --num_dev=400 --num_test=400 --num_ood=400 \
       --num_unlabeled=2000 --flite_fraction=0.3 --seed=0 --num_workers=2 \
       --overwrite]

Output, LibriSpeech style so it goes through the same converter as real data:
  <split>/<speaker>/<chapter>/<speaker>-<chapter>-<idx>.flac
  <split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
  unlabeled/<speaker>-<chapter>-<idx>.flac        (no transcripts)
  corpus_info.json                                (seed, counts, voices)
under <output_dir>, for <split> in train, dev, test and ood.

A "speaker" is an accent + voice variant + base pitch combination with a
numeric id. Train, dev, test and unlabeled speak WordNet example sentences;
dev and test sentences never occur in train, and test voices (accent +
variant) in no other split. The out-of-domain split `ood` speaks sentences
of another source (fortune files) with voice variants, base pitches and
speaking rates that no other split uses.

With --flite_fraction > 0, that fraction of every split's utterances (drawn
per utterance) is spoken by Debian's Flite instead: its speakers are a voice
at a pitch factor. slt, rms and awb speak train, dev and unlabeled; the
diphone voice kal16 speaks only test; ood has slt, awb and kal16 at pitch
factors no other split uses, at ood's rates. The eSpeak NG utterances keep
the settings they have without Flite. The whole corpus is planned up
front from seeded RNGs; workers only render the plan, so the output is
byte-identical for a seed, whatever the worker count.
"""

import dataclasses
import json
import os
import shutil
import sys
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from absl import app
from absl import flags
from absl import logging
import numpy as np
import soundfile
import tqdm

from tfrecords_tools import crash_isolating_pool
from tfrecords_tools import demo_sentences
from tfrecords_tools import espeak_synth
from tfrecords_tools import flite_synth

LABELED_SPLITS = ('train', 'dev', 'test', 'ood')
UNLABELED_SPLIT = 'unlabeled'
SPLITS = LABELED_SPLITS + (UNLABELED_SPLIT,)
OOD_SPLIT = 'ood'
# Splits take sentences from their source's shuffled pool in this order, so
# test, dev and unlabeled stay the same when only --num_train changes.
_PLANNING_ORDER = ('test', 'dev', 'unlabeled', 'train', 'ood')
# Sentence source (demo_sentences.SOURCE_FILES) of each split.
SENTENCE_SOURCE = {'train': 'wordnet', 'dev': 'wordnet', 'test': 'wordnet',
                   'unlabeled': 'wordnet', 'ood': 'fortunes'}
# LibriSpeech chapter id used for each split's utterances (ids stay unique
# across splits even where speakers are shared).
_CHAPTER = {'train': 1, 'dev': 2, 'test': 3, 'unlabeled': 4, 'ood': 5}
CORPUS_INFO_FILE = 'corpus_info.json'
ESPEAK = 'espeak'
FLITE = 'flite'

# eSpeak base pitch (0-100) of the three speakers made from each voice.
PITCH_LEVELS = (30, 50, 70)
# Fraction of voices (accent + variant) held out for the test split.
TEST_VOICE_FRACTION = 0.15
# Fraction of voice variants held out for the ood split (with every accent),
# and the ood speakers' base pitches: outside the others' 26-74.
OOD_VARIANT_FRACTION = 0.1
OOD_PITCH_LEVELS = (16, 84)
_FIRST_SPEAKER_ID = 100
# Per-utterance prosody ranges (inclusive).
_RATE_RANGE_WPM = (130, 220)
# ood rates: half slower, half faster than any other split's.
_OOD_RATE_RANGES_WPM = ((100, 122), (228, 250))
_PITCH_JITTER = 4
_PITCH_RANGE_RANGE = (30, 80)
_WORD_GAP_RANGE = (1, 3)  # In 10 ms units, used for 20% of utterances.

# Flite's speakers (module docstring). kal16, the one diphone voice, is the
# unseen test voice: the others are built from recordings by one method.
FLITE_TEST_VOICES = ('kal16',)
FLITE_F0_SHIFTS = (0.88, 1.0, 1.14)
FLITE_OOD_F0_SHIFTS = (0.78, 1.28)
# Per-utterance jitter of the f0 factor, relative; the ood factors stay
# outside the others' 0.845-1.186.
_FLITE_F0_JITTER = 0.04


class CorpusError(Exception):
  """A user error: bad arguments or an output directory we must not touch."""


@dataclasses.dataclass(frozen=True)
class Speaker:
  """A synthetic speaker: one voice at one base pitch."""
  speaker_id: int
  accent: str
  variant: str
  pitch: int

  @property
  def voice(self) -> str:
    return f'{self.accent}+{self.variant}' if self.variant else self.accent


@dataclasses.dataclass(frozen=True)
class FliteSpeaker:
  """A Flite speaker: one voice at one pitch factor."""
  speaker_id: int
  flite_voice: str
  f0_shift: float

  @property
  def voice(self) -> str:
    return f'flite:{self.flite_voice}@{self.f0_shift:g}'


@dataclasses.dataclass(frozen=True)
class UtterancePlan:
  """Everything needed to render one utterance."""
  split: str
  utterance_id: str
  relative_path: str  # Of the .flac file, relative to output_dir.
  text: str
  settings: Union[espeak_synth.VoiceSettings, flite_synth.FliteSettings]


def choose_ood_variants(variants: Sequence[str], seed: int) -> List[str]:
  """The voice variants only the ood split uses, chosen by the seed.

  Args:
    variants: voice variant names ('' for the plain accent voice, which is
      never held out).

  Returns:
    OOD_VARIANT_FRACTION of the named variants (at least one), sorted.
  """
  named = sorted(variant for variant in variants if variant)
  if not named:
    return []
  rng = np.random.default_rng([seed, 2])
  count = max(1, int(round(OOD_VARIANT_FRACTION * len(named))))
  return sorted(named[i] for i in rng.permutation(len(named))[:count])


def make_speakers(variants: Sequence[str],
                  ood_variants: Sequence[str] = ()) -> List[Speaker]:
  """Returns every accent x variant x pitch level, with numeric ids.

  Args:
    variants: voice variant names ('' for the plain accent voice).
    ood_variants: variants held out for the ood split; their speakers take
      OOD_PITCH_LEVELS instead of PITCH_LEVELS.

  Returns:
    Speakers in a fixed order, ids counting up from 100.
  """
  speakers = []
  for accent in espeak_synth.ENGLISH_ACCENTS:
    for variant in variants:
      pitches = OOD_PITCH_LEVELS if variant in ood_variants else PITCH_LEVELS
      for pitch in pitches:
        speakers.append(Speaker(_FIRST_SPEAKER_ID + len(speakers), accent,
                                variant, pitch))
  return speakers


def assign_speakers(speakers: Sequence[Speaker], seed: int,
                    ood_variants: Sequence[str] = ()
                   ) -> Dict[str, List[Speaker]]:
  """Splits speakers so that test and ood voices are unseen elsewhere.

  Args:
    speakers: output of `make_speakers`.
    seed: corpus seed; picks which voices are held out for test.
    ood_variants: the variants only ood uses (`choose_ood_variants`).

  Returns:
    {split: speakers}; dev and unlabeled share train's speakers.
  """
  ood_speakers = [s for s in speakers if s.variant in ood_variants]
  in_domain = [s for s in speakers if s.variant not in ood_variants]
  voices = sorted({speaker.voice for speaker in in_domain})
  rng = np.random.default_rng([seed, 1])
  num_test_voices = max(1, int(round(TEST_VOICE_FRACTION * len(voices))))
  test_voices = {voices[i] for i in
                 rng.permutation(len(voices))[:num_test_voices]}
  train_speakers = [s for s in in_domain if s.voice not in test_voices]
  return {'train': train_speakers, 'dev': train_speakers,
          'unlabeled': train_speakers,
          'test': [s for s in in_domain if s.voice in test_voices],
          'ood': ood_speakers}


def assign_flite_speakers(first_speaker_id: int
                         ) -> Dict[str, List[FliteSpeaker]]:
  """Flite's speakers by split (module docstring), ids counting up.

  Args:
    first_speaker_id: the first id, after the eSpeak NG speakers'.

  Returns:
    {split: speakers}; dev and unlabeled share train's speakers.
  """
  by_split = {'train': [], 'test': [], 'ood': []}

  def add(split, voice, f0_shift):
    count = sum(len(speakers) for speakers in by_split.values())
    by_split[split].append(
        FliteSpeaker(first_speaker_id + count, voice, f0_shift))

  for voice in flite_synth.VOICES:
    split = 'test' if voice in FLITE_TEST_VOICES else 'train'
    if voice not in flite_synth.F0_SHIFT_VOICES:
      add(split, voice, 1.0)
      continue
    for f0_shift in FLITE_F0_SHIFTS:
      add(split, voice, f0_shift)
    for f0_shift in FLITE_OOD_F0_SHIFTS:
      add(OOD_SPLIT, voice, f0_shift)
  by_split['dev'] = by_split['unlabeled'] = by_split['train']
  return by_split


def assign_sentences(counts: Mapping[str, int], seed: int
                    ) -> Dict[str, List[str]]:
  """Deals each split its sentences from its source's shuffled pool.

  Test, dev and unlabeled take distinct sentences in turn; train takes the
  rest of the pool and goes round it again (another speaker, another
  prosody) when it asks for more utterances than are left; ood takes
  distinct sentences of its own source.

  Args:
    counts: number of utterances per split.
    seed: corpus seed.

  Returns:
    {split: sentences}, one per utterance.

  Raises:
    CorpusError: when a pool has too few sentences.
  """
  order = {source: np.random.default_rng([seed, 3, index]).permutation(
               len(demo_sentences.load_pool(source)))
           for index, source in enumerate(sorted(demo_sentences.SOURCE_FILES))}
  taken = {source: 0 for source in order}
  sentences = {}
  for split in _PLANNING_ORDER:
    source = SENTENCE_SOURCE[split]
    pool = demo_sentences.load_pool(source)
    remaining = order[source][taken[source]:]
    count = counts[split]
    if split == 'train':
      if count and not len(remaining):
        raise CorpusError(f'no {source} sentences left for train; ask for '
                          'fewer dev, test or unlabeled utterances')
      picked = [remaining[i % len(remaining)] for i in range(count)]
    else:
      if count > len(remaining):
        raise CorpusError(
            f'--num_{split}={count} asks for more {source} sentences than '
            f'the {len(remaining)} left of its {len(pool)}')
      picked = remaining[:count]
      taken[source] += count
    sentences[split] = [pool[i] for i in picked]
  return sentences


def _draw_rate(rng: np.random.Generator, split: str) -> int:
  """A speaking rate in words per minute: ood's ranges for ood."""
  if split == OOD_SPLIT:
    low, high = _OOD_RATE_RANGES_WPM[int(rng.integers(2))]
  else:
    low, high = _RATE_RANGE_WPM
  return int(rng.integers(low, high + 1))


def _espeak_utterance(rng: np.random.Generator, split: str,
                      speakers: Sequence[Speaker]
                     ) -> Tuple[Speaker, espeak_synth.VoiceSettings]:
  speaker = speakers[int(rng.integers(len(speakers)))]
  rate = _draw_rate(rng, split)
  return speaker, espeak_synth.VoiceSettings(
      accent=speaker.accent, variant=speaker.variant, rate=rate,
      pitch=speaker.pitch + int(
          rng.integers(-_PITCH_JITTER, _PITCH_JITTER + 1)),
      pitch_range=int(rng.integers(_PITCH_RANGE_RANGE[0],
                                   _PITCH_RANGE_RANGE[1] + 1)),
      word_gap=(int(rng.integers(_WORD_GAP_RANGE[0], _WORD_GAP_RANGE[1] + 1))
                if rng.random() < 0.2 else 0))


def _flite_utterance(rng: np.random.Generator, split: str,
                     speakers: Sequence[FliteSpeaker]
                    ) -> Tuple[FliteSpeaker, flite_synth.FliteSettings]:
  # Voice first, so that rms (one pitch) speaks as often as the others.
  voices = sorted({speaker.flite_voice for speaker in speakers})
  voice = voices[int(rng.integers(len(voices)))]
  of_voice = [speaker for speaker in speakers if speaker.flite_voice == voice]
  speaker = of_voice[int(rng.integers(len(of_voice)))]
  rate = _draw_rate(rng, split)
  f0_shift = speaker.f0_shift
  if speaker.flite_voice in flite_synth.F0_SHIFT_VOICES:
    f0_shift = round(f0_shift * (1.0 + float(rng.uniform(
        -_FLITE_F0_JITTER, _FLITE_F0_JITTER))), 3)
  return speaker, flite_synth.FliteSettings(speaker.flite_voice, rate,
                                            f0_shift)


def plan_corpus(counts: Mapping[str, int], seed: int,
                speakers_by_split: Mapping[str, Sequence[Speaker]],
                flite_speakers_by_split: Optional[
                    Mapping[str, Sequence[FliteSpeaker]]] = None,
                flite_fraction: float = 0.0
               ) -> Dict[str, List[UtterancePlan]]:
  """Chooses the text, speaker and prosody of every utterance.

  Each utterance draws its speaker and prosody from its own RNG seeded with
  (seed, split, index); its sentence comes from `assign_sentences`. Whether
  Flite speaks it, and Flite's speaker and prosody, come from a second RNG
  (seed, split, index, 1), so that the eSpeak NG utterances keep their
  settings whatever `flite_fraction` is.

  Args:
    counts: number of utterances per split.
    seed: corpus seed.
    speakers_by_split: output of `assign_speakers`.
    flite_speakers_by_split: output of `assign_flite_speakers`; needed when
      `flite_fraction` > 0.
    flite_fraction: probability that Flite speaks an utterance.

  Returns:
    {split: plans}, in utterance-id order within each split.
  """
  sentences = assign_sentences(counts, seed)
  plans = {}
  for split in _PLANNING_ORDER:
    split_plans = []
    utterances_per_speaker = {}
    speakers = speakers_by_split[split]
    if counts[split] and not speakers:
      raise CorpusError(f'no speakers available for split {split}')
    for index, text in enumerate(sentences[split]):
      flite_rng = None
      if flite_fraction:
        flite_rng = np.random.default_rng(
            [seed, SPLITS.index(split), index, 1])
      if flite_rng is not None and flite_rng.random() < flite_fraction:
        speaker, settings = _flite_utterance(
            flite_rng, split, flite_speakers_by_split[split])
      else:
        speaker, settings = _espeak_utterance(
            np.random.default_rng([seed, SPLITS.index(split), index]), split,
            speakers)
      chapter = _CHAPTER[split]
      position = utterances_per_speaker.get(speaker.speaker_id, 0)
      utterances_per_speaker[speaker.speaker_id] = position + 1
      utterance_id = f'{speaker.speaker_id}-{chapter}-{position:04d}'
      if split == UNLABELED_SPLIT:
        relative_path = os.path.join(split, utterance_id + '.flac')
      else:
        relative_path = os.path.join(split, str(speaker.speaker_id),
                                     str(chapter), utterance_id + '.flac')
      split_plans.append(UtterancePlan(split, utterance_id, relative_path,
                                       text, settings))
    plans[split] = sorted(split_plans, key=lambda plan: plan.utterance_id)
  return {split: plans[split] for split in SPLITS}


def _render(task: Tuple[str, UtterancePlan]) -> int:
  """Synthesizes one planned utterance and writes its FLAC file.

  Args:
    task: (output_dir, plan).

  Returns:
    The number of 16 kHz samples written.
  """
  output_dir, plan = task
  if isinstance(plan.settings, flite_synth.FliteSettings):
    samples = flite_synth.synthesize(plan.text, plan.settings)
  else:
    samples = espeak_synth.EspeakSynthesizer.get().synthesize(plan.text,
                                                              plan.settings)
  path = os.path.join(output_dir, plan.relative_path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, samples, espeak_synth.OUTPUT_SAMPLE_RATE,
                  subtype='PCM_16', format='FLAC')
  return int(samples.shape[0])


def render_utterances(
    output_dir: str, plans: Sequence[UtterancePlan], num_workers: int,
    progress_label: Optional[str] = None
) -> Tuple[Dict[str, int], List[UtterancePlan]]:
  """Writes the FLAC files of `plans` in worker processes.

  Args:
    output_dir: corpus folder.
    plans: utterances to synthesize.
    num_workers: worker processes.
    progress_label: draws a tqdm progress bar with this label when given.

  Returns:
    ({utterance id: 16 kHz samples written}, the plans on which eSpeak NG
    crashed: logged, and no file left for them).
  """
  results = crash_isolating_pool.map_isolating_crashes(
      _render, [(output_dir, plan) for plan in plans], num_workers)
  num_samples = {}
  crashed = []
  for index, result in tqdm.tqdm(results, total=len(plans),
                                 desc=progress_label, unit='utt',
                                 disable=progress_label is None or not plans):
    if result is crash_isolating_pool.CRASHED:
      crashed.append(plans[index])
    else:
      num_samples[plans[index].utterance_id] = result
  for plan in crashed:
    # A crash while writing could leave part of a file.
    path = os.path.join(output_dir, plan.relative_path)
    if os.path.exists(path):
      os.remove(path)
    logging.warning('The synthesizer crashed on %s (%r, %s); left out of '
                    'the corpus.', plan.utterance_id, plan.text,
                    plan.settings)
  return num_samples, crashed


def _write_transcripts(output_dir: str, plans: Sequence[UtterancePlan]):
  """Writes one <speaker>-<chapter>.trans.txt per chapter folder."""
  by_folder = {}
  for plan in plans:
    by_folder.setdefault(os.path.dirname(plan.relative_path), []).append(plan)
  for folder, folder_plans in by_folder.items():
    speaker, chapter = folder.split(os.sep)[-2:]
    path = os.path.join(output_dir, folder, f'{speaker}-{chapter}.trans.txt')
    with open(path, 'w', encoding='utf-8') as f:
      for plan in folder_plans:
        f.write(f'{plan.utterance_id} '
                f'{demo_sentences.transcript_text(plan.text)}\n')


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise CorpusError(f'--output_dir {output_dir} exists and is not a '
                      'directory')
  if os.path.isdir(output_dir) and os.listdir(output_dir):
    if not overwrite:
      raise CorpusError(f'--output_dir {output_dir} is not empty; pass '
                        '--overwrite to replace the corpus in it')
    # Remove only what this tool writes, never unrelated files.
    for name in SPLITS:
      shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
    info_path = os.path.join(output_dir, CORPUS_INFO_FILE)
    if os.path.exists(info_path):
      os.remove(info_path)
  os.makedirs(output_dir, exist_ok=True)


def make_corpus(output_dir: str, num_train: int = 8000, num_dev: int = 400,
                num_test: int = 400, num_unlabeled: int = 2000, seed: int = 0,
                num_workers: Optional[int] = None, overwrite: bool = False,
                show_progress: bool = True, num_ood: int = 400,
                flite_fraction: float = 0.0) -> dict:
  """Synthesizes the corpus into `output_dir`.

  Args:
    output_dir: destination folder; must be empty or absent unless
      `overwrite`.
    num_train: utterances in train.
    num_dev: utterances in dev.
    num_test: utterances in test.
    num_unlabeled: utterances in unlabeled (audio only).
    seed: makes the corpus reproducible.
    num_workers: synthesis processes; default os.cpu_count(). Synthesis
      always runs in worker processes, so an utterance on which eSpeak NG
      crashes is left out (and listed in corpus_info.json) instead of
      ending or hanging the run.
    overwrite: replace an existing corpus in `output_dir`.
    show_progress: draw a tqdm progress bar per split.
    num_ood: utterances in ood (other sentences, voices and prosody).
    flite_fraction: fraction of each split that Flite speaks (module
      docstring); Flite must be installed when it is above 0.

  Returns:
    The corpus info, also written to <output_dir>/corpus_info.json.

  Raises:
    CorpusError: on bad arguments or a non-empty `output_dir`.
    flite_synth.FliteError: when Flite is needed and missing.
  """
  counts = {'train': num_train, 'dev': num_dev, 'test': num_test,
            'unlabeled': num_unlabeled, 'ood': num_ood}
  for split, count in counts.items():
    if count < 0:
      raise CorpusError(f'--num_{split} must be >= 0, got {count}')
  num_workers = num_workers or os.cpu_count() or 1
  if num_workers < 1:
    raise CorpusError(f'--num_workers must be >= 1, got {num_workers}')
  if not 0.0 <= flite_fraction <= 1.0:
    raise CorpusError(f'--flite_fraction must be in [0, 1], got '
                      f'{flite_fraction}')
  flite_speakers_by_split = {}
  if flite_fraction:
    flite_synth.check_voices(flite_synth.VOICES)
  _prepare_output_dir(output_dir, overwrite)

  variants = espeak_synth.available_variants()
  ood_variants = choose_ood_variants(variants, seed)
  speakers = make_speakers(variants, ood_variants)
  speakers_by_split = assign_speakers(speakers, seed, ood_variants)
  if flite_fraction:
    flite_speakers_by_split = assign_flite_speakers(_FIRST_SPEAKER_ID +
                                                    len(speakers))
  plans = plan_corpus(counts, seed, speakers_by_split,
                      flite_speakers_by_split, flite_fraction)

  num_samples = {}
  crashed = []
  for split in SPLITS:
    split_samples, split_crashed = render_utterances(
        output_dir, plans[split], num_workers,
        progress_label=split if show_progress else None)
    num_samples.update(split_samples)
    crashed.extend(split_crashed)
    plans[split] = [plan for plan in plans[split]
                    if plan.utterance_id in num_samples]
    if split in LABELED_SPLITS:
      _write_transcripts(output_dir, plans[split])

  info = _corpus_info(seed, plans, num_samples, speakers, speakers_by_split,
                      ood_variants, crashed, flite_fraction,
                      flite_speakers_by_split)
  with open(os.path.join(output_dir, CORPUS_INFO_FILE), 'w',
            encoding='utf-8') as f:
    json.dump(info, f, indent=2, sort_keys=True)
    f.write('\n')
  return info


def _corpus_info(seed: int, plans: Mapping[str, Sequence[UtterancePlan]],
                 num_samples: Mapping[str, int], speakers: Sequence[Speaker],
                 speakers_by_split: Mapping[str, Sequence[Speaker]],
                 ood_variants: Sequence[str],
                 crashed: Sequence[UtterancePlan], flite_fraction: float,
                 flite_speakers_by_split: Mapping[str, Sequence[FliteSpeaker]]
                ) -> dict:
  """Summarizes a corpus: enough to reproduce and inspect it.

  Args:
    seed: corpus seed.
    plans: output of `plan_corpus`, less the utterances in `crashed`.
    num_samples: 16 kHz samples written per utterance id.
    speakers: all speakers (`make_speakers`).
    speakers_by_split: output of `assign_speakers`.
    ood_variants: the voice variants only ood uses.
    crashed: planned utterances left out because a synthesizer crashed on
      them.
    flite_fraction: the fraction of utterances Flite was to speak.
    flite_speakers_by_split: output of `assign_flite_speakers`, or {} without
      Flite.

  Returns:
    A JSON-serializable dict.
  """
  splits = {}
  for split in SPLITS:
    split_plans = plans[split]
    total = sum(num_samples[plan.utterance_id] for plan in split_plans)
    used_ids = sorted({int(plan.utterance_id.split('-')[0])
                       for plan in split_plans})
    splits[split] = {
        'num_utterances': len(split_plans),
        'hours': round(total / espeak_synth.OUTPUT_SAMPLE_RATE / 3600, 4),
        'labeled': split in LABELED_SPLITS,
        'num_speakers': len(used_ids),
        'voices': sorted({s.voice for s in speakers_by_split[split]} |
                         {s.voice for s in
                          flite_speakers_by_split.get(split, ())}),
        'num_utterances_by_synthesizer': {
            synthesizer: sum(_synthesizer(plan.settings) == synthesizer
                             for plan in split_plans)
            for synthesizer in (ESPEAK, FLITE)},
        'speakers_used': used_ids,
        'sentence_source': SENTENCE_SOURCE[split],
        'num_distinct_sentences': len({plan.text for plan in split_plans}),
        'num_distinct_words': len({
            word for plan in split_plans
            for word in demo_sentences.words(plan.text)}),
    }
  return {
      'seed': seed,
      'sample_rate': espeak_synth.OUTPUT_SAMPLE_RATE,
      'format': 'librispeech (train/dev/test/ood), audio_dir (unlabeled)',
      'splits': splits,
      'flite_fraction': flite_fraction,
      'speakers': {
          **{str(speaker.speaker_id): dict(dataclasses.asdict(speaker),
                                           synthesizer=ESPEAK)
             for speaker in speakers},
          **{str(speaker.speaker_id): dict(dataclasses.asdict(speaker),
                                           synthesizer=FLITE)
             for speaker in sorted(
                 {s for group in flite_speakers_by_split.values()
                  for s in group}, key=lambda s: s.speaker_id)}},
      'ood_variants': list(ood_variants),
      'sentence_pools': {
          source: {'file': file_name,
                   'sentences': len(demo_sentences.load_pool(source))}
          for source, file_name in demo_sentences.SOURCE_FILES.items()},
      'left_out': [{'utterance_id': plan.utterance_id, 'text': plan.text,
                    'synthesizer': _synthesizer(plan.settings),
                    'settings': dataclasses.asdict(plan.settings)}
                   for plan in crashed],
  }


def _synthesizer(settings) -> str:
  return FLITE if isinstance(settings, flite_synth.FliteSettings) else ESPEAK


FLAGS = flags.FLAGS


def define_flags():
  """Defined only when run as a binary, so importing never clashes."""
  flags.DEFINE_string('output_dir', None, 'Folder to write the corpus into.')
  flags.DEFINE_integer('num_train', 8000, 'Train utterances.')
  flags.DEFINE_integer('num_dev', 400, 'Dev utterances (train voices).')
  flags.DEFINE_integer('num_test', 400, 'Test utterances (unseen voices).')
  flags.DEFINE_integer('num_ood', 400, 'Out-of-domain utterances (other '
                       'sentences, voices, pitches and rates).')
  flags.DEFINE_integer('num_unlabeled', 2000,
                       'Unlabeled utterances (audio only, for noisy student).')
  flags.DEFINE_float('flite_fraction', 0.0, 'Fraction of every split spoken '
                     'by Flite (Debian package flite) instead of eSpeak NG.')
  flags.DEFINE_integer('seed', 0, 'Seed; the same seed gives the same corpus.')
  flags.DEFINE_integer('num_workers', None,
                       'Synthesis processes (default: number of CPUs).')
  flags.DEFINE_bool('overwrite', False,
                    'Replace the corpus in a non-empty --output_dir.')


def main(argv):
  if len(argv) > 1:
    sys.exit(f'make_demo_corpus: unexpected arguments: {argv[1:]}')
  if not FLAGS.output_dir:
    sys.exit('make_demo_corpus: --output_dir is required')
  try:
    info = make_corpus(FLAGS.output_dir, FLAGS.num_train, FLAGS.num_dev,
                       FLAGS.num_test, FLAGS.num_unlabeled, FLAGS.seed,
                       FLAGS.num_workers, FLAGS.overwrite,
                       num_ood=FLAGS.num_ood,
                       flite_fraction=FLAGS.flite_fraction)
  except (CorpusError, espeak_synth.EspeakError, flite_synth.FliteError,
          OSError) as e:
    sys.exit(f'make_demo_corpus: error: {e}')
  summary = ', '.join(f'{split} {info["splits"][split]["num_utterances"]} '
                      f'utts / {info["splits"][split]["hours"]:.2f} h'
                      for split in SPLITS)
  print(f'Wrote {FLAGS.output_dir}: {summary}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
