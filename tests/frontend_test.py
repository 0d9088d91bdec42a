"""The model owns its frontend; old params.yaml files still load."""

import numpy as np
import tensorflow as tf

from asr_kd.configs import params_upgrade
from asr_kd.dataloaders import features as features_lib
from asr_kd.modeling import rnnt_model
from tests import testing_utils


def _model(causal: bool = False) -> rnnt_model.RnntModel:
  model = rnnt_model.RnntModel(testing_utils.tiny_model_config(causal),
                               vocab_size=12)
  model.build_for_checkpoint()
  rng = np.random.RandomState(3)
  bins = model.config.encoder.input_dim
  model.set_feature_stats(rng.uniform(-8, -2, bins),
                          rng.uniform(0.5, 3, bins))
  return model


class FrontendTest(tf.test.TestCase):

  def test_normalize_uses_the_model_statistics_and_zeroes_masked_cells(self):
    model = _model()
    rng = np.random.RandomState(0)
    log_mel = rng.normal(-5, 2, [2, 7, model.config.encoder.input_dim])
    log_mel = log_mel.astype(np.float32)
    mean = model.feature_mean.numpy().astype(np.float64)
    stddev = model.feature_stddev.numpy().astype(np.float64)
    expected = (log_mel.astype(np.float64) - mean) / stddev
    self.assertAllClose(model.frontend.normalize(log_mel), expected,
                        rtol=1e-5, atol=1e-5)
    mask = rng.uniform(size=log_mel.shape) < 0.3
    masked = model.frontend.normalize(log_mel, mask).numpy()
    self.assertAllEqual(masked[mask], np.zeros(mask.sum(), np.float32))
    self.assertAllClose(masked[~mask], expected[~mask], rtol=1e-5, atol=1e-5)

  def test_waveforms_and_log_mel_inputs_give_the_same_outputs(self):
    model = _model()
    rng = np.random.RandomState(1)
    num_samples = np.array([16000, 11000], np.int32)
    waveforms = rng.uniform(-0.3, 0.3, [2, 16000]).astype(np.float32)
    waveforms[1, 11000:] = 0.0
    from_waveforms = model({'waveforms': waveforms,
                            'num_samples': num_samples}, training=False)
    config = model.config.features
    log_mel = features_lib.log_mel(waveforms, config)
    lengths = features_lib.num_frames(num_samples, config)
    from_log_mel = model({'features': log_mel, 'feature_lengths': lengths},
                         training=False)
    self.assertAllEqual(from_waveforms['encoder_lengths'],
                        from_log_mel['encoder_lengths'])
    self.assertAllClose(from_waveforms['encoder_outputs'],
                        from_log_mel['encoder_outputs'], atol=1e-5)

  def test_feature_mask_reaches_the_encoder(self):
    model = _model()
    log_mel = tf.random.stateless_normal(
        [1, 40, model.config.encoder.input_dim], [4, 2], mean=-5.0)
    lengths = tf.constant([40])
    plain = model({'features': log_mel, 'feature_lengths': lengths})
    mask = tf.zeros_like(log_mel, tf.bool)
    unmasked = model({'features': log_mel, 'feature_lengths': lengths,
                      'feature_mask': mask})
    self.assertAllClose(plain['encoder_outputs'], unmasked['encoder_outputs'])
    masked = model({'features': log_mel, 'feature_lengths': lengths,
                    'feature_mask': tf.logical_not(mask)})
    self.assertNotAllClose(plain['encoder_outputs'],
                           masked['encoder_outputs'])

  def test_statistics_of_another_size_are_refused(self):
    model = _model()
    with self.assertRaisesRegex(ValueError, '80 mel bins'):
      model.set_feature_stats(np.zeros(40), np.ones(40))

  def test_dither_aside_frontends_must_match(self):
    model = _model()
    other = _model()
    self.assertTrue(model.frontend.same_features_as(other.frontend))
    other.frontend.config.dither = 1e-3
    self.assertTrue(model.frontend.same_features_as(other.frontend))
    other.frontend.config.frame_step_ms = 20.0
    self.assertFalse(model.frontend.same_features_as(other.frontend))


class ParamsUpgradeTest(tf.test.TestCase):

  def test_data_frontend_moves_to_the_model(self):
    old = {'task': {
        'model': {'encoder': {'num_layers': 2}},
        'train_data': {'features': {'num_mel_bins': 40, 'dither': 0.1},
                       'feature_stats_file': 'stats.json',
                       'keep_unaugmented_features': False,
                       'spec_augment': {'enabled': True, 'mask_value': 0.0},
                       'input_path': 'train-*'},
        'validation_data': {'features': {'num_mel_bins': 40},
                            'feature_stats_file': 'stats.json',
                            'input_path': 'dev-*'}}}
    upgraded = params_upgrade.upgrade(old)
    task = upgraded['task']
    self.assertEqual(task['model'], {
        'encoder': {'num_layers': 2},
        'features': {'num_mel_bins': 40, 'dither': 0.1},
        'feature_stats_file': 'stats.json'})
    self.assertEqual(task['train_data'], {'spec_augment': {'enabled': True},
                                          'input_path': 'train-*'})
    self.assertEqual(task['validation_data'], {'input_path': 'dev-*'})
    self.assertIn('features', old['task']['train_data'])  # Not changed.
    self.assertEqual(params_upgrade.upgrade(upgraded), upgraded)

  def test_a_nonzero_mask_value_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'mask_value=-1.0'):
      params_upgrade.upgrade({'task': {'train_data': {
          'spec_augment': {'mask_value': -1.0}}}})


if __name__ == '__main__':
  tf.test.main()
