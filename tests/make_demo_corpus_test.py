"""Tests for tfrecords_tools.make_demo_corpus."""

import dataclasses
import filecmp
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

import numpy as np
import soundfile
import tensorflow as tf

from tfrecords_tools import build_demo_sentences
from tfrecords_tools import demo_sentences
from tfrecords_tools import espeak_synth
from tfrecords_tools import flite_synth
from tfrecords_tools import make_demo_corpus

_TINY = dict(num_train=12, num_dev=4, num_test=4, num_unlabeled=4, num_ood=4)
_TRANSCRIPT_LINE = re.compile(
    r"^(\d+)-(\d+)-(\d{4}) ([A-Z]+(?:'[A-Z]+)*(?: [A-Z]+(?:'[A-Z]+)*)*)$")
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _relative_files(root):
  return sorted(os.path.relpath(path, root) for path in
                glob.glob(os.path.join(root, '**', '*'), recursive=True)
                if os.path.isfile(path))


def _read_transcripts(split_dir):
  """{utterance id: transcript} from all trans.txt files of a split."""
  transcripts = {}
  for path in glob.glob(os.path.join(split_dir, '*', '*', '*.trans.txt')):
    speaker, chapter = path.split(os.sep)[-3:-1]
    assert os.path.basename(path) == f'{speaker}-{chapter}.trans.txt', path
    with open(path, encoding='utf-8') as f:
      for line in f:
        match = _TRANSCRIPT_LINE.match(line.rstrip('\n'))
        assert match, f'bad line in {path}: {line!r}'
        assert match.group(1, 2) == (speaker, chapter), line
        transcripts[line.split(' ', 1)[0]] = match.group(4)
  return transcripts


class MakeDemoCorpusTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    # Two workers here, one in the twin: the bytes must not depend on it.
    cls.corpus = os.path.join(cls.root, 'seed0_two_workers')
    cls.info = make_demo_corpus.make_corpus(cls.corpus, seed=0, num_workers=2,
                                            show_progress=False, **_TINY)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def test_same_seed_gives_identical_bytes_different_seed_differs(self):
    twin = os.path.join(self.root, 'seed0_one_worker')
    make_demo_corpus.make_corpus(twin, seed=0, num_workers=1,
                                 show_progress=False, **_TINY)
    files = _relative_files(self.corpus)
    self.assertEqual(files, _relative_files(twin))
    _, mismatch, errors = filecmp.cmpfiles(self.corpus, twin, files,
                                           shallow=False)
    self.assertEqual((mismatch, errors), ([], []))

    other = os.path.join(self.root, 'seed1')
    make_demo_corpus.make_corpus(other, seed=1, num_workers=1,
                                 show_progress=False, **_TINY)
    self.assertNotEqual(_read_transcripts(os.path.join(self.corpus, 'train')),
                        _read_transcripts(os.path.join(other, 'train')))

  def test_layout_and_transcripts(self):
    for split in make_demo_corpus.LABELED_SPLITS:
      split_dir = os.path.join(self.corpus, split)
      transcripts = _read_transcripts(split_dir)
      flacs = glob.glob(os.path.join(split_dir, '*', '*', '*.flac'))
      self.assertLen(flacs, _TINY[f'num_{split}'])
      self.assertCountEqual(
          transcripts, [os.path.basename(p)[:-len('.flac')] for p in flacs])
      for transcript in transcripts.values():
        self.assertBetween(len(transcript.split()),
                           build_demo_sentences.MIN_WORDS,
                           build_demo_sentences.MAX_WORDS)

  def test_audio_is_16k_mono_int16(self):
    for path in glob.glob(os.path.join(self.corpus, '**', '*.flac'),
                          recursive=True):
      info = soundfile.info(path)
      self.assertEqual((info.samplerate, info.channels, info.subtype),
                       (16000, 1, 'PCM_16'), path)
      samples, _ = soundfile.read(path, dtype='int16')
      self.assertGreater(np.abs(samples).max(), 1000, path)

  def test_unlabeled_split_has_audio_only(self):
    unlabeled = os.path.join(self.corpus, 'unlabeled')
    names = sorted(os.listdir(unlabeled))
    self.assertLen(names, _TINY['num_unlabeled'])
    for name in names:
      self.assertRegex(name, r'^\d+-\d+-\d{4}\.flac$')

  def test_corpus_info(self):
    with open(os.path.join(self.corpus, 'corpus_info.json')) as f:
      info = json.load(f)
    self.assertEqual(info, json.loads(json.dumps(self.info)))
    self.assertEqual(info['seed'], 0)
    for split in make_demo_corpus.SPLITS:
      split_info = info['splits'][split]
      self.assertEqual(split_info['num_utterances'], _TINY[f'num_{split}'])
      self.assertGreater(split_info['hours'], 0.0)
      total_samples = sum(
          soundfile.info(p).frames for p in glob.glob(
              os.path.join(self.corpus, split, '**', '*.flac'),
              recursive=True))
      self.assertAllClose(split_info['hours'], total_samples / 16000 / 3600,
                          atol=1e-4)
    self.assertEmpty(set(info['splits']['test']['voices']) &
                     set(info['splits']['train']['voices']))
    self.assertEmpty(set(info['splits']['ood']['voices']) &
                     set(info['splits']['train']['voices']))
    self.assertEqual(info['splits']['ood']['sentence_source'], 'fortunes')
    self.assertEqual(info['splits']['train']['sentence_source'], 'wordnet')
    self.assertEqual(
        info['sentence_pools']['wordnet']['sentences'],
        len(demo_sentences.load_pool('wordnet')))

  def test_plan_holds_out_test_and_ood_voices_and_sentences(self):
    seed = int(np.random.default_rng().integers(1 << 20))
    variants = espeak_synth.available_variants()
    ood_variants = make_demo_corpus.choose_ood_variants(variants, seed)
    self.assertNotEmpty(ood_variants)
    self.assertNotIn('', ood_variants)
    speakers = make_demo_corpus.make_speakers(variants, ood_variants)
    by_split = make_demo_corpus.assign_speakers(speakers, seed, ood_variants)
    wordnet = demo_sentences.load_pool('wordnet')
    # More train utterances than the pool has left: train goes round again.
    counts = {'train': len(wordnet), 'dev': 300, 'test': 300,
              'unlabeled': 300, 'ood': 300}
    plans = make_demo_corpus.plan_corpus(counts, seed, by_split)
    voices = {split: {p.settings.voice_name for p in plans[split]}
              for split in plans}
    sentences = {split: {p.text for p in plans[split]} for split in plans}
    in_domain = ('train', 'dev', 'unlabeled')
    seen_voices = set().union(*(voices[split] for split in in_domain))
    self.assertEmpty(voices['test'] & seen_voices)
    self.assertEmpty(voices['ood'] & (seen_voices | voices['test']))
    self.assertEqual({p.settings.variant for p in plans['ood']},
                     set(ood_variants))
    self.assertGreater(len(voices['train']), 100)
    self.assertGreater(len(voices['test']), 20)
    for split in ('test', 'dev', 'unlabeled'):
      self.assertEmpty(sentences[split] & sentences['train'])
      self.assertContainsSubset(sentences[split], set(wordnet))
    self.assertContainsSubset(sentences['ood'],
                              set(demo_sentences.load_pool('fortunes')))
    self.assertLen(sentences['train'], len(wordnet) - 900)
    for split, count in counts.items():
      if split != 'train':
        self.assertLen(sentences[split], count)  # No repeats within a split.
      ids = [p.utterance_id for p in plans[split]]
      self.assertLen(set(ids), count)
    all_ids = [p.utterance_id for split in plans for p in plans[split]]
    self.assertLen(set(all_ids), len(all_ids))
    for split in in_domain + ('test',):
      for plan in plans[split]:
        self.assertBetween(plan.settings.rate, 130, 220)
        self.assertBetween(plan.settings.pitch, 26, 74)
    for plan in plans['ood']:
      self.assertFalse(130 <= plan.settings.rate <= 220, plan.settings)
      self.assertFalse(26 <= plan.settings.pitch <= 74, plan.settings)

  def test_dev_test_and_unlabeled_do_not_change_with_num_train(self):
    variants = espeak_synth.available_variants()
    ood_variants = make_demo_corpus.choose_ood_variants(variants, 3)
    by_split = make_demo_corpus.assign_speakers(
        make_demo_corpus.make_speakers(variants, ood_variants), 3,
        ood_variants)
    counts = {'train': 10, 'dev': 5, 'test': 5, 'unlabeled': 5, 'ood': 5}
    small = make_demo_corpus.plan_corpus(counts, 3, by_split)
    large = make_demo_corpus.plan_corpus(dict(counts, train=50), 3, by_split)
    for split in ('dev', 'test', 'unlabeled', 'ood'):
      self.assertEqual(small[split], large[split])
    self.assertContainsSubset({p.text for p in small['train']},
                              {p.text for p in large['train']})

  def test_flite_speaks_its_fraction_and_espeak_keeps_its_settings(self):
    seed = int(np.random.default_rng().integers(1 << 20))
    variants = espeak_synth.available_variants()
    ood_variants = make_demo_corpus.choose_ood_variants(variants, seed)
    speakers = make_demo_corpus.make_speakers(variants, ood_variants)
    by_split = make_demo_corpus.assign_speakers(speakers, seed, ood_variants)
    flite_by_split = make_demo_corpus.assign_flite_speakers(100 +
                                                            len(speakers))
    counts = {'train': 2000, 'dev': 600, 'test': 600, 'unlabeled': 600,
              'ood': 600}
    fraction = 0.3
    espeak_only = make_demo_corpus.plan_corpus(counts, seed, by_split)
    mixed = make_demo_corpus.plan_corpus(counts, seed, by_split,
                                         flite_by_split, fraction)
    flite_speaker_ids = {split: {s.speaker_id for s in group}
                         for split, group in flite_by_split.items()}
    espeak_ids = {s.speaker_id for s in speakers}
    for split, plans in mixed.items():
      flite_plans = [p for p in plans if
                     isinstance(p.settings, flite_synth.FliteSettings)]
      # Binomial: 4.5 standard deviations at n = 600.
      self.assertAllClose(len(flite_plans) / len(plans), fraction, atol=0.085)
      espeak_plans = {(p.text, p.settings) for p in plans
                      if p not in flite_plans}
      self.assertContainsSubset(
          espeak_plans, {(p.text, p.settings) for p in espeak_only[split]})
      self.assertEqual([p.text for p in sorted(plans, key=lambda p: p.text)],
                       [p.text for p in sorted(espeak_only[split],
                                               key=lambda p: p.text)])
      for plan in plans:
        speaker_id = int(plan.utterance_id.split('-')[0])
        if plan in flite_plans:
          self.assertIn(speaker_id, flite_speaker_ids[split])
        else:
          self.assertIn(speaker_id, espeak_ids)
      voices = {p.settings.voice for p in flite_plans}
      if split == 'test':
        self.assertEqual(voices, {'kal16'})
      elif split == 'ood':
        self.assertEqual(voices, {'slt', 'awb', 'kal16'})
      else:
        self.assertEqual(voices, {'slt', 'rms', 'awb'})
      for plan in flite_plans:
        in_domain_f0 = 0.845 <= plan.settings.f0_shift <= 1.186
        in_domain_rate = 130 <= plan.settings.rate <= 220
        self.assertEqual(in_domain_f0, split != 'ood', plan)
        self.assertEqual(in_domain_rate, split != 'ood', plan)
    self.assertEmpty(flite_speaker_ids['test'] & flite_speaker_ids['train'])
    self.assertEmpty(flite_speaker_ids['ood'] &
                     (flite_speaker_ids['train'] | flite_speaker_ids['test']))
    self.assertEqual(flite_by_split['dev'], flite_by_split['train'])

  def test_flite_fraction_outside_0_to_1_is_an_error(self):
    with self.assertRaisesRegex(make_demo_corpus.CorpusError,
                                r'--flite_fraction must be in \[0, 1\]'):
      make_demo_corpus.make_corpus(os.path.join(self.root, 'bad_fraction'),
                                   1, 1, 1, 1, num_workers=1, num_ood=1,
                                   show_progress=False, flite_fraction=1.5)

  def test_missing_flite_fails_before_anything_is_written(self):
    target = os.path.join(self.root, 'no_flite')
    with mock.patch.object(shutil, 'which', return_value=None):
      with self.assertRaisesRegex(flite_synth.FliteError,
                                  'apt-get install flite'):
        make_demo_corpus.make_corpus(target, 1, 1, 1, 1, num_workers=1,
                                     num_ood=1, show_progress=False,
                                     flite_fraction=0.5)
    self.assertFalse(os.path.exists(target))

  def test_corpus_with_flite_renders_each_plan_with_its_synthesizer(self):
    if not shutil.which('flite'):
      self.skipTest('flite is not installed (apt-get install flite)')
    target = os.path.join(self.root, 'with_flite')
    info = make_demo_corpus.make_corpus(target, seed=0, num_workers=2,
                                        show_progress=False,
                                        flite_fraction=0.5, **_TINY)
    self.assertEqual(info['flite_fraction'], 0.5)
    flite_speakers = {speaker_id: speaker for speaker_id, speaker
                      in info['speakers'].items()
                      if speaker['synthesizer'] == 'flite'}
    # slt, awb and kal16 at 3 + 2 pitch factors, rms at its own.
    self.assertLen(flite_speakers, 16)
    total_flite = 0
    for split in make_demo_corpus.SPLITS:
      by_synthesizer = info['splits'][split]['num_utterances_by_synthesizer']
      self.assertEqual(sum(by_synthesizer.values()), _TINY[f'num_{split}'])
      total_flite += by_synthesizer['flite']
    transcripts = _read_transcripts(os.path.join(target, 'train'))
    flite_ids = [utterance_id for utterance_id in transcripts
                 if utterance_id.split('-')[0] in flite_speakers]
    self.assertBetween(total_flite, 8, 24)  # 28 utterances at 0.5.
    self.assertNotEmpty(flite_ids)
    # Flite's file is what flite says for the transcript at the speaker's
    # voice; the rate and pitch jitter make it differ from the voice's own.
    utterance_id = flite_ids[0]
    speaker = flite_speakers[utterance_id.split('-')[0]]
    speaker_dir, chapter = utterance_id.split('-')[:2]
    samples, sample_rate = soundfile.read(
        os.path.join(target, 'train', speaker_dir, chapter,
                     utterance_id + '.flac'), dtype='int16')
    self.assertEqual(sample_rate, 16000)
    plain = flite_synth.synthesize(
        transcripts[utterance_id],
        flite_synth.FliteSettings(speaker['flite_voice']))
    self.assertNotEqual(samples.shape, plain.shape)
    self.assertBetween(samples.shape[0] / plain.shape[0], 170 / 220 - 0.05,
                       170 / 130 + 0.05)
    twin = os.path.join(self.root, 'with_flite_one_worker')
    make_demo_corpus.make_corpus(twin, seed=0, num_workers=1,
                                 show_progress=False, flite_fraction=0.5,
                                 **_TINY)
    files = _relative_files(target)
    _, mismatch, errors = filecmp.cmpfiles(target, twin, files, shallow=False)
    self.assertEqual((mismatch, errors), ([], []))

  def test_asking_for_more_sentences_than_a_pool_holds_is_an_error(self):
    num_fortunes = len(demo_sentences.load_pool('fortunes'))
    variants = espeak_synth.available_variants()
    by_split = make_demo_corpus.assign_speakers(
        make_demo_corpus.make_speakers(variants, ['m1']), 0, ['m1'])
    counts = {'train': 1, 'dev': 1, 'test': 1, 'unlabeled': 1,
              'ood': num_fortunes + 1}
    with self.assertRaisesRegex(make_demo_corpus.CorpusError,
                                '--num_ood=.* asks for more fortunes'):
      make_demo_corpus.plan_corpus(counts, 0, by_split)

  def test_utterance_that_crashes_espeak_is_left_out(self):
    # The eSpeak NG of espeakng-loader 0.2.4 segfaults on this request, found
    # in `--num_train=48000 --seed=0`.
    fatal = make_demo_corpus.UtterancePlan(
        'train', '949-1-0040', 'train/949/1/949-1-0040.flac',
        'he had warmed that bomb accurately.',
        espeak_synth.VoiceSettings(accent='en-gb-x-gbclan', variant='rob',
                                   rate=202, pitch=26, pitch_range=80,
                                   word_gap=0))
    fine = dataclasses.replace(fatal, utterance_id='950-1-0000',
                               relative_path='train/950/1/950-1-0000.flac',
                               text='there is your sunshine.')
    target = os.path.join(self.root, 'crash')
    with self.assertLogs(level='WARNING') as logs:
      num_samples, crashed = make_demo_corpus.render_utterances(
          target, [fatal, fine], num_workers=1)
    self.assertEqual(crashed, [fatal])
    self.assertIn('949-1-0040', logs.output[0])
    self.assertEqual(list(num_samples), ['950-1-0000'])
    self.assertEqual(_relative_files(target), [fine.relative_path])
    self.assertEqual(soundfile.info(os.path.join(target, fine.relative_path))
                     .frames, num_samples['950-1-0000'])

  def test_refuses_non_empty_output_dir(self):
    target = os.path.join(self.root, 'occupied')
    os.makedirs(target)
    with open(os.path.join(target, 'keep.txt'), 'w') as f:
      f.write('mine')
    with self.assertRaisesRegex(make_demo_corpus.CorpusError, 'not empty'):
      make_demo_corpus.make_corpus(target, 1, 1, 1, 1, num_workers=1,
                                   show_progress=False, num_ood=1)
    make_demo_corpus.make_corpus(target, 1, 1, 1, 1, num_workers=1,
                                 overwrite=True, show_progress=False,
                                 num_ood=1)
    self.assertTrue(os.path.exists(os.path.join(target, 'keep.txt')))
    self.assertLen(glob.glob(os.path.join(target, 'train', '*', '*',
                                          '*.flac')), 1)

  def test_binary_reports_user_errors_in_one_line(self):
    env = dict(os.environ, PYTHONPATH=_REPO_ROOT)
    result = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.make_demo_corpus',
         f'--output_dir={self.corpus}', '--num_train=1'],
        capture_output=True, text=True, cwd=_REPO_ROOT, env=env, check=False)
    self.assertNotEqual(result.returncode, 0)
    self.assertEqual(result.stderr.strip().count('\n'), 0, result.stderr)
    self.assertIn('not empty', result.stderr)
    self.assertNotIn('Traceback', result.stderr)


if __name__ == '__main__':
  tf.test.main()
