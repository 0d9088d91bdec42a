"""Tests for asr_kd.noisy_student (config, stage planning, resume)."""

import contextlib
import io
import json
import os
import shutil

from absl import flags
import numpy as np
import tensorflow as tf
import yaml

from official.core import train_utils

from asr_kd.bin import noisy_student as noisy_student_bin
from asr_kd.dataloaders import tfrecord_schema
from asr_kd.noisy_student import config as config_lib
from asr_kd.noisy_student import stages as stages_lib
from asr_kd.pseudo_labeling import pipeline
from tests import pseudo_label_test
from tests import testing_utils

_IN_MEMORY = ['--direct_running_mode=in_memory', '--direct_num_workers=1']


def _write_yaml(path, content):
  with open(path, 'w', encoding='utf-8') as yaml_file:
    yaml.safe_dump(content, yaml_file)
  return path


class NoisyStudentConfigTest(tf.test.TestCase):

  def _config(self, **fields):
    base = {'work_dir': '/w', 'unlabeled_input': 'u-*',
            'initial_teacher': {'model_dir': '/t'},
            'student': {'experiment': 'rnnt_demo_teacher'}}
    base.update(fields)
    path = _write_yaml(os.path.join(self.get_temp_dir(), 'c.yaml'), base)
    return config_lib.load_config(path)

  def test_bad_configs_fail_with_a_message(self):
    cases = [({'targets': 'medium'}, 'targets must be one of'),
             ({'num_generations': 0}, 'num_generations must be >= 1'),
             ({'min_confidence': 1.5}, 'min_confidence must be in'),
             ({'initial_teacher': {'model_dir': ''}}, 'initial_teacher needs'),
             ({'generation_overrides': ['a=1', 'b=2']}, 'generation_overrides'),
             ({'no_such_key': 1}, 'no_such_key')]
    for fields, message in cases:
      with self.subTest(message=message):
        with self.assertRaisesRegex(ValueError, message):
          self._config(**fields)
    with self.assertRaisesRegex(ValueError, 'not found'):
      config_lib.load_config(os.path.join(self.get_temp_dir(), 'none.yaml'))

  def test_plan_chains_generations(self):
    config = self._config(
        num_generations=2, evaluate=True,
        initial_teacher={'experiment': 'rnnt_demo_teacher'})
    stages = stages_lib.plan_stages(config)
    self.assertEqual([stage.name for stage in stages], [
        'teacher/train',
        'generation_1/pseudo_label', 'generation_1/train_student',
        'generation_1/evaluate', 'generation_1/finish',
        'generation_2/pseudo_label', 'generation_2/train_student',
        'generation_2/evaluate', 'generation_2/finish'])
    self.assertEqual(stages[0].done_path, '/w/teacher/train.done.json')
    self.assertEqual(stages[5].done_path,
                     '/w/generation_2/pseudo_labels/pseudo.summary.json')

  def test_student_overrides_for_hard_and_soft_targets(self):
    teacher = stages_lib.ModelRef('/t', 'rnnt_demo_teacher')
    hard = stages_lib.student_overrides(
        self._config(min_confidence=0.25), teacher, 'p-*')
    self.assertEqual(hard['task']['train_data'], {
        'input_path': 'p-*', 'label_source': 'pseudo_label',
        'min_pseudo_label_confidence': 0.25,
        'spec_augment': {'enabled': True}})
    self.assertNotIn('teacher_model_dir', hard['task'])
    soft = stages_lib.student_overrides(
        self._config(targets='soft', student={
            'experiment': 'kd_demo_student_soft_full'}), teacher, 'p-*')
    self.assertEqual(soft['task']['teacher_model_dir'], '/t')
    hard_kd = stages_lib.student_overrides(
        self._config(student={'experiment': 'kd_demo_student_soft_full'}),
        teacher, 'p-*')
    self.assertEqual(hard_kd['task']['distillation'], {'kind': 'none'})
    with self.assertRaisesRegex(stages_lib.StageError, 'distillation'):
      stages_lib.student_overrides(self._config(targets='soft'), teacher,
                                   'p-*')

  def test_binary_user_errors(self):
    for args, message in [([], '--config_file is required'),
                          (['--config_file=/no/such.yaml'], 'not found')]:
      flag_values = flags.FlagValues()
      noisy_student_bin.define_flags(flag_values)
      argv = flag_values(['noisy_student'] + args)
      with self.assertRaises(SystemExit) as context:
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
          noisy_student_bin.main(argv, flag_values)
      self.assertEqual(context.exception.code, 1)
      self.assertIn(message, stderr.getvalue())


class NoisyStudentRunTest(tf.test.TestCase):

  def test_generation_runs_and_resumes_after_a_stop(self):
    root = os.path.join(self.get_temp_dir(), 'nst')
    shutil.rmtree(root, ignore_errors=True)
    corpus = testing_utils.write_tiny_corpus(os.path.join(root, 'corpus'))
    teacher_dir = pseudo_label_test.train_tiny_model(
        corpus, os.path.join(root, 'teacher'))
    student_config = testing_utils.tiny_experiment(corpus, train_steps=2)
    student_config.task.jit_compile = False
    student_yaml_dir = os.path.join(root, 'student_config')
    train_utils.serialize_config(student_config, student_yaml_dir)
    unlabeled_path = os.path.join(root, 'unlabeled.tfrecord')
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(unlabeled_path) as writer:
      for index in range(3):
        samples = (rng.standard_normal(6000) * 2000).astype(np.int16)
        writer.write(tfrecord_schema.make_example(
            f'unlabeled{index}', samples).SerializeToString())
    config_path = _write_yaml(os.path.join(root, 'nst.yaml'), {
        'work_dir': os.path.join(root, 'work'),
        'initial_teacher': {'model_dir': teacher_dir},
        'unlabeled_input': unlabeled_path,
        'labeled_input': corpus['tfrecords'],
        'student': {'experiment': 'rnnt_demo_teacher',
                    'config_file': os.path.join(student_yaml_dir,
                                                'params.yaml')},
        'beam_size': 2, 'beam_args': _IN_MEMORY})
    config = config_lib.load_config(config_path)

    # "Killed" right after pseudo-labeling.
    ran = stages_lib.run_stages(stages_lib.plan_stages(config),
                                stop_after='generation_1/pseudo_label')
    self.assertEqual(ran, ['generation_1/pseudo_label'])
    generation_dir = os.path.join(root, 'work', 'generation_1')
    summary_path = os.path.join(generation_dir, 'pseudo_labels',
                                'pseudo.summary.json')
    summary_mtime = os.path.getmtime(summary_path)
    self.assertFalse(os.path.exists(os.path.join(generation_dir, 'student')))

    ran = stages_lib.run_stages(stages_lib.plan_stages(config))
    self.assertEqual(ran, ['generation_1/train_student', 'generation_1/finish'])
    self.assertEqual(os.path.getmtime(summary_path), summary_mtime)
    student_dir = os.path.join(generation_dir, 'student')
    self.assertIsNotNone(tf.train.latest_checkpoint(student_dir))
    with open(os.path.join(generation_dir, 'done.json'),
              encoding='utf-8') as marker:
      done = json.load(marker)
    self.assertEqual((done['teacher'], done['student']),
                     (teacher_dir, student_dir))
    # The student trained on this generation's pseudo-labels.
    params = yaml.safe_load(open(os.path.join(student_dir, 'params.yaml'),
                                 encoding='utf-8'))
    self.assertEqual(params['task']['train_data']['label_source'],
                     'pseudo_label')
    self.assertStartsWith(params['task']['train_data']['input_path'],
                          os.path.join(generation_dir, 'pseudo_labels'))
    # Labeled audio kept its transcripts; unlabeled audio got the teacher's.
    sources = {}
    for serialized in tf.data.TFRecordDataset(tf.io.gfile.glob(
        params['task']['train_data']['input_path'])):
      parsed = tfrecord_schema.parse_example(serialized)
      sources[parsed[tfrecord_schema.UTTERANCE_ID].numpy().decode()] = (
          parsed[tfrecord_schema.PSEUDO_SOURCE_MODEL].numpy().decode())
    self.assertLen(sources, 15)
    self.assertEqual(sources['utt000'], pipeline.TRANSCRIPT_SOURCE)
    self.assertEqual(sources['unlabeled0'],
                     os.path.abspath(teacher_dir) + '@ckpt-2')

    self.assertEqual(stages_lib.run_stages(stages_lib.plan_stages(config)),
                     [])


if __name__ == '__main__':
  tf.test.main()
