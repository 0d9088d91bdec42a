"""Tests for asr_kd.pseudo_labeling and the pseudo_label binary."""

import contextlib
import glob
import io
import json
import os
import shutil

from absl import flags
import numpy as np
import tensorflow as tf

from official.core import task_factory
from official.core import train_lib
from official.core import train_utils

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.configs import rnnt_config
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.inference import model_loader
from asr_kd.inference import recognizer as recognizer_lib
from asr_kd.pseudo_labeling import command as pseudo_label_bin
from asr_kd.pseudo_labeling import confidence
from asr_kd.pseudo_labeling import pipeline
from asr_kd.pseudo_labeling import teacher as teacher_lib
from tests import testing_utils

# In-process pipelines: one worker, no subprocesses, so tests stay fast.
_IN_MEMORY = ['--direct_running_mode=in_memory', '--direct_num_workers=1']
_BEAM_SIZE = 3


def train_tiny_model(corpus: dict, model_dir: str, train_steps: int = 2):
  """Trains the tiny test model in-process; returns its model_dir."""
  config = testing_utils.tiny_experiment(corpus, train_steps=train_steps)
  config.task.jit_compile = False  # Compiling costs more than 2 steps.
  train_utils.serialize_config(config, model_dir)
  task = task_factory.get_task(config.task, logging_dir=model_dir)
  train_lib.run_experiment(distribution_strategy=tf.distribute.get_strategy(),
                           task=task, mode='train', params=config,
                           model_dir=model_dir)
  return model_dir


def _noise(seed, num_samples):
  rng = np.random.default_rng(seed)
  return (rng.standard_normal(num_samples) * 2000).astype(np.int16)


def _read_records(pattern):
  records = {}
  for path in sorted(glob.glob(pattern)):
    for serialized in tf.data.TFRecordDataset(path):
      parsed = tfrecord_schema.parse_example(serialized)
      parsed = {key: value.numpy() for key, value in parsed.items()}
      records[parsed[tfrecord_schema.UTTERANCE_ID].decode()] = parsed
  return records


class BeamPosteriorTest(tf.test.TestCase):

  def test_matches_float64_softmax_with_empty_slots(self):
    rng = np.random.default_rng(3)
    for _ in range(5):
      batch, beam = rng.integers(1, 5), rng.integers(1, 7)
      scores = rng.normal(-20.0, 8.0, size=(batch, beam))
      # Empty beam slots (never the first one, which always holds a hyp).
      scores[:, 1:][rng.random((batch, beam - 1)) < 0.3] = -np.inf
      chosen = np.array([rng.choice(np.flatnonzero(np.isfinite(row)))
                         for row in scores])
      finite = np.isfinite(scores)
      shifted = np.where(finite, scores - scores.max(axis=1, keepdims=True),
                         -np.inf)
      expected = (np.exp(shifted[np.arange(batch), chosen]) /
                  np.exp(shifted).sum(axis=1))
      got = confidence.beam_posterior(tf.constant(scores, tf.float32),
                                      tf.constant(chosen))
      self.assertAllClose(got, expected, rtol=1e-5, atol=1e-6)
      self.assertAllInRange(got, 0.0, 1.0)

  def test_single_hypothesis_is_certain(self):
    got = confidence.beam_posterior(
        tf.constant([[-3.0, -np.inf, -np.inf]]), tf.constant([0]))
    self.assertAllClose(got, [1.0])


class PseudoLabelPipelineTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = os.path.join(tf.compat.v1.test.get_temp_dir(), 'pseudo_label')
    shutil.rmtree(cls.root, ignore_errors=True)
    cls.corpus = testing_utils.write_tiny_corpus(
        os.path.join(cls.root, 'corpus'))
    cls.model_dir = train_tiny_model(cls.corpus,
                                     os.path.join(cls.root, 'teacher'))
    # A record that is not an Example and one shorter than one frame.
    cls.bad_path = os.path.join(cls.root, 'bad.tfrecord')
    with tf.io.TFRecordWriter(cls.bad_path) as writer:
      writer.write(b'not an Example proto')
      writer.write(tfrecord_schema.make_example(
          'too_short', _noise(1, 100)).SerializeToString())
    # One good record, then a second one cut in the middle.
    cls.truncated_path = os.path.join(cls.root, 'truncated.tfrecord')
    with tf.io.TFRecordWriter(cls.truncated_path) as writer:
      for index in range(2):
        writer.write(tfrecord_schema.make_example(
            f'noise{index}', _noise(index, 8000), speaker='7'
        ).SerializeToString())
    with open(cls.truncated_path, 'rb+') as record_file:
      record_file.truncate(os.path.getsize(cls.truncated_path) - 100)
    cls.output_dir = os.path.join(cls.root, 'pseudo')
    cls.summary = pipeline.run_pseudo_labeling(
        cls.model_dir,
        ','.join([cls.corpus['tfrecords'], cls.bad_path, cls.truncated_path]),
        cls.output_dir, num_shards=2, beam_size=_BEAM_SIZE, batch_size=4,
        beam_args=_IN_MEMORY)
    cls.records = _read_records(cls.summary['shard_pattern'])

  def test_records_carry_the_recognizers_hypothesis(self):
    self.assertLen(self.records, 13)  # 12 corpus + the untruncated one.
    loaded = model_loader.load_model(self.model_dir)
    beam_recognizer = recognizer_lib.from_loaded_model(
        loaded, rnnt_config.DecodingConfig(method='beam',
                                           beam_size=_BEAM_SIZE))
    ids = sorted(self.records)
    expected = beam_recognizer.recognize(
        [self.records[utterance_id]['audio'] for utterance_id in ids])
    self.assertEqual(
        [self.records[utterance_id][tfrecord_schema.PSEUDO_HYPOTHESIS]
         .decode() for utterance_id in ids], expected)
    for record in self.records.values():
      self.assertBetween(record[tfrecord_schema.PSEUDO_CONFIDENCE], 0.0, 1.0)
      self.assertEqual(
          record[tfrecord_schema.PSEUDO_SOURCE_MODEL].decode(),
          os.path.abspath(self.model_dir) + '@ckpt-2')

  def test_original_fields_are_kept(self):
    texts = dict(enumerate(self.corpus['texts']))
    for index, text in texts.items():
      record = self.records[f'utt{index:03d}']
      self.assertEqual(record[tfrecord_schema.TRANSCRIPT].decode(), text)
      self.assertEqual(record[tfrecord_schema.SPEAKER].decode(), '0')
    noise = self.records['noise0']
    self.assertAllEqual(noise['audio'], _noise(0, 8000))
    self.assertEqual(noise[tfrecord_schema.SPEAKER].decode(), '7')
    self.assertEqual(noise[tfrecord_schema.TRANSCRIPT].decode(), '')

  def test_rejects_and_counts_reconcile(self):
    with open(self.summary['rejects_file'], encoding='utf-8') as rejects:
      lines = rejects.read().splitlines()
    self.assertEqual(lines[0], pipeline.REJECTS_HEADER)
    reasons = {line.split('\t')[0]: line.split('\t')[1] for line in lines[1:]}
    self.assertEqual(reasons, {
        f'{self.bad_path}#0': pipeline.UNPARSABLE_RECORD,
        f'{self.bad_path}#1': pipeline.NO_AUDIO_FRAMES,
        f'{self.truncated_path}#1': pipeline.UNREADABLE_FILE,
    })
    self.assertEqual(self.summary['inputs'], 16)
    self.assertEqual(self.summary['written'], 13)
    self.assertEqual(self.summary['rejected'], 3)
    self.assertTrue(self.summary['reconciled'])
    self.assertEqual(self.summary['samples_written'], sum(
        record['audio'].shape[0] for record in self.records.values()))
    self.assertLen(glob.glob(self.summary['shard_pattern']), 2)
    with open(os.path.join(self.output_dir, 'pseudo.summary.json'),
              encoding='utf-8') as summary_file:
      self.assertEqual(json.load(summary_file)['written'], 13)
    mean = np.mean([record[tfrecord_schema.PSEUDO_CONFIDENCE]
                    for record in self.records.values()])
    self.assertAllClose(self.summary['mean_confidence'], mean, rtol=1e-5)

  def test_keep_transcripts_labels_only_unlabeled_audio(self):
    label_fn = pipeline.LabelBatchFn(self.model_dir, None, _BEAM_SIZE,
                                     keep_transcripts=True)
    label_fn.setup()
    utterances = [
        {'utterance_id': 'a', 'speaker': '', 'transcript': 'hello there',
         'samples': _noise(5, 6000)},
        {'utterance_id': 'b', 'speaker': '', 'transcript': '',
         'samples': _noise(6, 7000)},
    ]
    outputs = list(label_fn.process(utterances))
    parsed = [tfrecord_schema.parse_example(output[1]) for output in outputs]
    self.assertEqual(parsed[0][tfrecord_schema.PSEUDO_HYPOTHESIS].numpy(),
                     b'hello there')
    self.assertEqual(parsed[0][tfrecord_schema.PSEUDO_CONFIDENCE].numpy(), 1.0)
    self.assertEqual(parsed[0][tfrecord_schema.PSEUDO_SOURCE_MODEL].numpy(),
                     pipeline.TRANSCRIPT_SOURCE.encode())
    teacher = teacher_lib.Teacher.from_model_dir(self.model_dir,
                                                 beam_size=_BEAM_SIZE)
    expected = teacher.label_batch([utterances[1]['samples']])[0]
    self.assertEqual(
        parsed[1][tfrecord_schema.PSEUDO_HYPOTHESIS].numpy().decode(),
        expected.hypothesis)
    self.assertAllClose(parsed[1][tfrecord_schema.PSEUDO_CONFIDENCE],
                        expected.confidence)
    self.assertEqual(
        parsed[1][tfrecord_schema.PSEUDO_SOURCE_MODEL].numpy().decode(),
        teacher.source_model)

  def _run_binary(self, args, binary='pseudo_label'):
    flag_values = flags.FlagValues()
    pseudo_label_bin.define_flags(flag_values, binary=binary)
    argv = pseudo_label_bin.parse_flags([binary] + args, flag_values)
    pseudo_label_bin.main(argv, flag_values)

  def test_teacher_targets_binary_stores_the_teachers_top_k(self):
    output_dir = os.path.join(self.root, 'targets')
    with contextlib.redirect_stdout(io.StringIO()):
      self._run_binary([f'--model_dir={self.model_dir}',
                        f'--input={self.corpus["tfrecords"]}',
                        f'--output_dir={output_dir}', '--temperature=2',
                        f'--beam_size={_BEAM_SIZE}', '--batch_size=4',
                        *_IN_MEMORY], binary='teacher_targets')
    records = _read_records(os.path.join(output_dir, 'pseudo-*'))
    self.assertLen(records, 12)
    loaded = model_loader.load_model(self.model_dir)
    for utterance_id, record in records.items():
      # Labeled records keep their transcript as the label.
      label = record[tfrecord_schema.PSEUDO_HYPOTHESIS].decode()
      self.assertEqual(label, record[tfrecord_schema.TRANSCRIPT].decode())
      tokens = loaded.tokenizer.tokenize(label).numpy()
      audio = record['audio'].astype(np.float32)[None] / 32768.0
      outputs = loaded.model(
          {'waveforms': audio, 'num_samples': [audio.shape[1]],
           'labels': tokens[None], 'label_lengths': [len(tokens)]},
          training=False)
      logits = loaded.model.joint_fn(
          outputs['encoder_outputs'][:, :, None],
          outputs['prediction_outputs'][:, None])[0].numpy()
      log_probs = logits / 2.0
      log_probs -= np.log(np.exp(log_probs - log_probs.max(-1, keepdims=True))
                          .sum(-1, keepdims=True)) + log_probs.max(
                              -1, keepdims=True)
      num_frames = int(outputs['encoder_lengths'][0])
      self.assertAllEqual(record[tfrecord_schema.TARGETS_SHAPE],
                          [num_frames, len(tokens) + 1, 8], utterance_id)
      ids = record[tfrecord_schema.TARGETS_TOP_IDS].astype(np.int64)
      stored = record[tfrecord_schema.TARGETS_TOP_LOG_PROBS].astype(
          np.float64)
      expected = np.take_along_axis(log_probs[:num_frames], ids, axis=-1)
      self.assertAllClose(stored, expected, atol=5e-3, rtol=2e-3)
      # The k largest: nothing outside them beats the smallest kept.
      others = log_probs[:num_frames].copy()
      np.put_along_axis(others, ids, -np.inf, axis=-1)
      self.assertTrue(np.all(others.max(-1) <= expected.min(-1) + 1e-5))
      rest = np.log(np.exp(others).sum(-1))
      self.assertAllClose(
          record[tfrecord_schema.TARGETS_REST_LOG_PROB].astype(np.float64),
          rest, atol=5e-3, rtol=2e-3)
      self.assertAllClose(record[tfrecord_schema.TARGETS_TEMPERATURE], 2.0)
      self.assertEqual(record[tfrecord_schema.TARGETS_FRAME_RATIO], 1)

  def test_lattice_targets_average_frame_groups(self):
    teacher = teacher_lib.Teacher.from_model_dir(self.model_dir,
                                                 beam_size=_BEAM_SIZE)
    waveforms = [_noise(8, 9000), _noise(9, 5000)]
    single, pairs = [teacher.lattice_targets(waveforms, ['ab c', 'd'], 4, 1.0,
                                             frame_ratio=ratio)
                     for ratio in (1, 2)]
    for one, two in zip(single, pairs):
      frames = one['top_log_probs'].shape[0]
      self.assertEqual(two['top_log_probs'].shape[0], (frames + 1) // 2)
      self.assertEqual(two['top_log_probs'].shape[1:],
                       one['top_log_probs'].shape[1:])
    with self.assertRaisesRegex(ValueError, 'top_k must be in'):
      teacher.lattice_targets(waveforms, ['a', 'b'], 100000, 1.0)

  def test_binary_user_errors_exit_with_one_line(self):
    output_dir = os.path.join(self.root, 'unused')
    cases = [
        ([f'--input={self.bad_path}', f'--output_dir={output_dir}'],
         '--model_dir is required'),
        ([f'--model_dir={self.root}/missing', f'--input={self.bad_path}',
          f'--output_dir={output_dir}'], 'params.yaml not found'),
        ([f'--model_dir={self.model_dir}', f'--input={self.root}/none-*',
          f'--output_dir={output_dir}'], 'No files match'),
    ]
    for args, message in cases:
      with self.subTest(message=message):
        with self.assertRaises(SystemExit) as context:
          with contextlib.redirect_stderr(io.StringIO()) as stderr:
            self._run_binary(args)
        self.assertEqual(context.exception.code, 1)
        self.assertIn(message, stderr.getvalue())
        self.assertLen(stderr.getvalue().strip().splitlines(), 1)


if __name__ == '__main__':
  tf.test.main()
