"""Tests for asr_kd.inference.model_loader (restoring a trained model_dir)."""

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import yaml

from official.core import exp_factory
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import hyperparams

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.dataloaders import features as features_lib
from asr_kd.inference import model_loader
from asr_kd.inference import weights_copy
from asr_kd.modeling import rnnt_model
from tests import testing_utils

TRAIN_STEPS = 2


def train_tiny_model_dir(directory: str, num_utterances: int = 8,
                         causal: bool = False,
                         train_steps: int = TRAIN_STEPS) -> dict:
  """Trains a tiny model for `train_steps` steps as asr_kd.bin.train does.

  Writes params.yaml (train_utils.serialize_config, as the binary does) and
  a checkpoint every 2 steps (ckpt-2 with the default 2 steps) through
  train_lib.run_experiment.

  Returns:
    dict with 'corpus' (testing_utils.write_tiny_corpus), 'model_dir',
    'config' and 'model' (the trained in-memory model).
  """
  corpus = testing_utils.write_tiny_corpus(
      os.path.join(directory, 'corpus'), num_utterances=num_utterances)
  config = testing_utils.tiny_experiment(corpus, train_steps=train_steps,
                                         causal=causal)
  config.task.jit_compile = False  # XLA compilation would double the time.
  model_dir = os.path.join(directory, 'model')
  train_utils.serialize_config(config, model_dir)
  task = task_factory.get_task(config.task, logging_dir=model_dir)
  model, _ = train_lib.run_experiment(
      distribution_strategy=tf.distribute.get_strategy(), task=task,
      mode='train', params=config, model_dir=model_dir)
  return {'corpus': corpus, 'model_dir': model_dir, 'config': config,
          'model': model}


class ModelLoaderTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work_dir = tempfile.mkdtemp()
    cls.run_info = train_tiny_model_dir(cls.work_dir)
    cls.model_dir = cls.run_info['model_dir']

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.work_dir, ignore_errors=True)
    super().tearDownClass()

  def test_restores_the_trained_weights(self):
    loaded = model_loader.load_model(self.model_dir)
    self.assertEqual(loaded.checkpoint_path,
                     os.path.join(self.model_dir, f'ckpt-{TRAIN_STEPS}'))
    # The preset trains a CTC head, which inference builds without.
    trained = [w for w in self.run_info['model'].weights
               if 'ctc_head' not in w.name]
    self.assertLess(len(trained), len(self.run_info['model'].weights))
    self.assertEqual([w.name for w in loaded.model.weights],
                     [w.name for w in trained])
    for restored, expected in zip(loaded.model.weights, trained):
      self.assertAllEqual(restored.numpy(), expected.numpy(), msg=restored.name)

  def test_a_params_yaml_of_the_earlier_layout_loads_to_the_same_model(self):
    # Before the model owned its frontend, params.yaml held it on the data
    # configs; a copy of the model_dir is rewritten that way.
    old_dir = os.path.join(self.work_dir, 'old_layout')
    shutil.copytree(self.model_dir, old_dir)
    params_path = os.path.join(old_dir, model_loader.PARAMS_FILE)
    with open(params_path) as params_file:
      params = yaml.safe_load(params_file)
    model = params['task']['model']
    for data in ('train_data', 'validation_data'):
      params['task'][data].update(
          features=dict(model['features']),
          feature_stats_file=model['feature_stats_file'],
          keep_unaugmented_features=False)
      params['task'][data]['spec_augment']['mask_value'] = 0.0
    del model['features'], model['feature_stats_file']
    with open(params_path, 'w') as params_file:
      yaml.safe_dump(params, params_file)
    with self.assertRaises(KeyError):  # Today's schema alone refuses it.
      hyperparams.override_params_dict(
          exp_factory.get_exp_config('rnnt_demo_teacher'), params_path,
          is_strict=True)
    old = model_loader.load_model(old_dir)
    new = model_loader.load_model(self.model_dir)
    self.assertEqual(old.config.task.model.as_dict(),
                     new.config.task.model.as_dict())
    waveforms = np.random.RandomState(2).uniform(
        -0.2, 0.2, [1, 12000]).astype(np.float32)
    inputs = {'waveforms': waveforms, 'num_samples': np.array([12000])}
    self.assertAllEqual(old.model(inputs)['encoder_outputs'],
                        new.model(inputs)['encoder_outputs'])

  def test_inference_copy_holds_the_same_model_without_optimizer_state(self):
    work_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    model_dir = os.path.join(work_dir, 'model')
    shutil.copytree(self.model_dir, model_dir)
    for name, text in (('test_summary.json', '{"wer": 0.5}'),
                       (model_loader.EXPERIMENT_FILE, 'rnnt_demo_teacher')):
      with open(os.path.join(model_dir, name), 'w') as extra:
        extra.write(text)
    copy_dir = os.path.join(work_dir, 'copy')
    os.makedirs(copy_dir)
    with open(os.path.join(copy_dir, 'stale.txt'), 'w') as stale:
      stale.write('an earlier copy')
    prefix = weights_copy.write_inference_copy(
        model_dir, copy_dir, ['test_summary.json', 'absent.json'])
    self.assertEqual(prefix, os.path.join(copy_dir, f'ckpt-{TRAIN_STEPS}'))
    self.assertCountEqual(
        [name for name in os.listdir(copy_dir) if 'ckpt-' not in name],
        ['checkpoint', 'params.yaml', model_loader.EXPERIMENT_FILE,
         'test_summary.json'])
    original = model_loader.load_model(model_dir)
    # The copy's checkpoint state names its files relatively, so it loads
    # from wherever it is copied to.
    moved_dir = shutil.copytree(copy_dir, os.path.join(work_dir, 'moved'))
    copied = model_loader.load_model(moved_dir)
    self.assertEqual(copied.checkpoint_path,
                     os.path.join(moved_dir, f'ckpt-{TRAIN_STEPS}'))
    self.assertEqual([w.name for w in copied.model.weights],
                     [w.name for w in original.model.weights])
    for restored, expected in zip(copied.model.weights,
                                  original.model.weights):
      self.assertAllEqual(restored.numpy(), expected.numpy(),
                          msg=restored.name)
    training_keys = [name for name, _ in tf.train.list_variables(
        original.checkpoint_path)]
    copy_keys = [name for name, _ in tf.train.list_variables(prefix)]
    self.assertTrue(any('OPTIMIZER_SLOT' in k for k in training_keys))
    self.assertFalse([k for k in copy_keys if 'OPTIMIZER_SLOT' in k or
                      k.startswith('optimizer/')])
    self.assertLess(os.path.getsize(prefix + '.data-00000-of-00001'),
                    os.path.getsize(original.checkpoint_path +
                                    '.data-00000-of-00001'))

  def test_weights_differ_from_a_fresh_model(self):
    # Guards the test above: equal weights must come from the checkpoint.
    loaded = model_loader.load_model(self.model_dir)
    fresh = rnnt_model.RnntModel(loaded.config.task.model,
                                 vocab_size=loaded.tokenizer.vocab_size)
    fresh.build_for_checkpoint()
    self.assertNotAllClose(fresh.encoder.weights[0].numpy(),
                           loaded.model.encoder.weights[0].numpy())

  def test_feature_stats_match_the_checkpoint_and_the_stats_file(self):
    loaded = model_loader.load_model(self.model_dir)
    reader = tf.train.load_checkpoint(loaded.checkpoint_path)
    keys = [name for name, _ in tf.train.list_variables(loaded.checkpoint_path)
            if 'feature_mean' in name]
    self.assertLen(keys, 1)
    self.assertAllEqual(loaded.model.feature_mean.numpy(),
                        reader.get_tensor(keys[0]))
    mean, stddev = features_lib.load_feature_stats(
        self.run_info['corpus']['feature_stats'])
    self.assertAllClose(loaded.model.feature_mean.numpy(), mean)
    self.assertAllClose(loaded.model.feature_stddev.numpy(), stddev)

  def test_config_and_tokenizer_come_from_params_yaml(self):
    loaded = model_loader.load_model(self.model_dir)
    expected = self.run_info['config']
    self.assertEqual(loaded.config.task.model.as_dict(),
                     expected.task.model.as_dict())
    self.assertEqual(loaded.config.trainer.train_steps, TRAIN_STEPS)
    self.assertEqual(loaded.tokenizer.vocab_size,
                     loaded.model.joint_network.weights[-1].shape[-1])

  def test_explicit_checkpoint_prefix_and_folder(self):
    prefix = os.path.join(self.model_dir, f'ckpt-{TRAIN_STEPS}')
    self.assertEqual(model_loader.find_checkpoint(self.model_dir, prefix),
                     prefix)
    self.assertEqual(model_loader.find_checkpoint('/nonexistent',
                                                  self.model_dir), prefix)
    with self.assertRaisesRegex(model_loader.ModelLoadError, 'not found'):
      model_loader.find_checkpoint(self.model_dir, prefix + '99')

  def test_missing_params_yaml(self):
    empty_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    with self.assertRaisesRegex(model_loader.ModelLoadError, 'params.yaml'):
      model_loader.load_model(empty_dir)

  def test_missing_checkpoint(self):
    params_only = tempfile.mkdtemp(dir=self.get_temp_dir())
    shutil.copy(os.path.join(self.model_dir, 'params.yaml'), params_only)
    with self.assertRaisesRegex(model_loader.ModelLoadError, 'no checkpoint'):
      model_loader.load_model(params_only)

  def test_unknown_yaml_key_is_rejected(self):
    bad_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    with open(os.path.join(self.model_dir, 'params.yaml')) as params_file:
      text = params_file.read()
    with open(os.path.join(bad_dir, 'params.yaml'), 'w') as params_file:
      params_file.write(text + 'not_a_section:\n  value: 1\n')
    with self.assertRaisesRegex(model_loader.ModelLoadError, 'does not fit'):
      model_loader.load_experiment_config(bad_dir)

  def test_experiment_recorded_in_model_dir_reads_params_yaml(self):
    recorded_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    shutil.copy(os.path.join(self.model_dir, 'params.yaml'), recorded_dir)
    self.assertEqual(model_loader.recorded_experiment(recorded_dir),
                     model_loader.DEFAULT_EXPERIMENT)
    with open(os.path.join(recorded_dir, model_loader.EXPERIMENT_FILE),
              'w') as experiment_file:
      experiment_file.write('no_such_experiment\n')
    self.assertEqual(model_loader.recorded_experiment(recorded_dir),
                     'no_such_experiment')
    with self.assertRaisesRegex(model_loader.ModelLoadError,
                                "unknown experiment 'no_such_experiment'"):
      model_loader.load_experiment_config(recorded_dir)
    # An explicit experiment wins over the recorded one.
    config = model_loader.load_experiment_config(
        recorded_dir, experiment='rnnt_demo_student_streaming')
    self.assertEqual(config.task.tokenizer_model_path,
                     self.run_info['config'].task.tokenizer_model_path)

  def test_checkpoint_of_another_architecture_is_rejected(self):
    other_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    config = self.run_info['config']
    config.override({'task': {'model': {'encoder': {'model_dim': 24}}}})
    try:
      train_utils.serialize_config(config, other_dir)
    finally:
      config.override({'task': {'model': {'encoder': {'model_dim': 16}}}})
    prefix = os.path.join(self.model_dir, f'ckpt-{TRAIN_STEPS}')
    with self.assertRaisesRegex(model_loader.ModelLoadError,
                                'does not match'):
      model_loader.load_model(other_dir, checkpoint=prefix)


if __name__ == '__main__':
  tf.test.main()
