"""Tests for tfrecords_tools.wer_by_voice."""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tfrecords_tools import wer_by_voice

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEAKERS = {
    '100': {'speaker_id': 100, 'accent': 'en-us', 'variant': 'm3',
            'pitch': 50, 'synthesizer': 'espeak'},
    '101': {'speaker_id': 101, 'accent': 'en', 'variant': '', 'pitch': 30,
            'synthesizer': 'espeak'},
    '1444': {'speaker_id': 1444, 'flite_voice': 'slt', 'f0_shift': 0.88,
             'synthesizer': 'flite'},
    '1445': {'speaker_id': 1445, 'flite_voice': 'slt', 'f0_shift': 1.0,
             'synthesizer': 'flite'},
    '1449': {'speaker_id': 1449, 'flite_voice': 'rms', 'f0_shift': 1.0,
             'synthesizer': 'flite'},
}


def random_utterances(rng, count):
  utterances = []
  for index in range(count):
    speaker = rng.choice(sorted(SPEAKERS))
    words = int(rng.integers(1, 15))
    utterances.append({'utterance_id': f'{speaker}-1-{index:04d}',
                       'reference_words': words,
                       'word_errors': int(rng.integers(0, words + 3))})
  return utterances


class WerByVoiceTest(tf.test.TestCase):

  def test_rows_sum_each_group(self):
    rng = np.random.default_rng()
    utterances = random_utterances(rng, 200)
    rows = {row['group']: row for row in
            wer_by_voice.group_errors(utterances, SPEAKERS, by_voice=True)}
    groups = {'espeak': ('100', '101'), 'flite': ('1444', '1445', '1449'),
              'espeak:en-us+m3': ('100',), 'espeak:en': ('101',),
              'flite:slt': ('1444', '1445'), 'flite:rms': ('1449',)}
    self.assertCountEqual(rows, groups)
    for group, speaker_ids in groups.items():
      members = [u for u in utterances
                 if u['utterance_id'].split('-')[0] in speaker_ids]
      errors = sum(u['word_errors'] for u in members)
      words = sum(u['reference_words'] for u in members)
      self.assertEqual((rows[group]['utterances'],
                        rows[group]['reference_words'],
                        rows[group]['word_errors']),
                       (len(members), words, errors), group)
      self.assertAllClose(rows[group]['wer'], errors / words)
    only_synthesizers = wer_by_voice.group_errors(utterances, SPEAKERS)
    self.assertEqual([row['group'] for row in only_synthesizers],
                     ['espeak', 'flite'])

  def test_unknown_speaker_is_named(self):
    with self.assertRaisesRegex(wer_by_voice.WerByVoiceError,
                                'utterance 7-1-0000: speaker 7 is not in'):
      wer_by_voice.group_errors(
          [{'utterance_id': '7-1-0000', 'reference_words': 3,
            'word_errors': 1}], SPEAKERS)

  def test_binary_prints_the_table_and_writes_json(self):
    directory = tempfile.mkdtemp()
    utterances = random_utterances(np.random.default_rng(0), 20)
    paths = {name: os.path.join(directory, name) for name in
             ('hypotheses.jsonl', 'corpus_info.json', 'rows.json')}
    with open(paths['hypotheses.jsonl'], 'w') as lines:
      lines.writelines(json.dumps(u) + '\n' for u in utterances)
    with open(paths['corpus_info.json'], 'w') as info:
      json.dump({'speakers': SPEAKERS}, info)
    result = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.wer_by_voice',
         f'--hypotheses={paths["hypotheses.jsonl"]}',
         f'--corpus_info={paths["corpus_info.json"]}',
         f'--output={paths["rows.json"]}'], cwd=REPO_ROOT,
        capture_output=True, text=True, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)
    with open(paths['rows.json']) as rows_file:
      rows = json.load(rows_file)
    self.assertEqual(result.stdout.strip(), wer_by_voice.markdown(rows))
    self.assertEqual(rows, wer_by_voice.group_errors(utterances, SPEAKERS))
    missing = subprocess.run(
        [sys.executable, '-m', 'tfrecords_tools.wer_by_voice',
         '--hypotheses=/nonexistent.jsonl',
         f'--corpus_info={paths["corpus_info.json"]}'], cwd=REPO_ROOT,
        capture_output=True, text=True, check=False)
    self.assertEqual(missing.returncode, 1)
    self.assertRegex(missing.stderr.strip(),
                     r'^wer_by_voice: FileNotFoundError: .*nonexistent')


if __name__ == '__main__':
  tf.test.main()
