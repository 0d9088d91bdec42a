"""Every YAML under configs/ loads strictly onto its registered experiment."""

import glob
import os

import tensorflow as tf

from official.core import exp_factory
from official.modeling import hyperparams
from official.modeling import optimization

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.configs import optimizer_recipes
from asr_kd.noisy_student import config as noisy_student_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def experiment_yamls():
  """(experiment name, path) for configs/<experiment>.yaml files."""
  paths = sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', '*.yaml')))
  return [(os.path.splitext(os.path.basename(path))[0], path)
          for path in paths]


class ConfigsTest(tf.test.TestCase):

  def test_every_yaml_names_a_registered_experiment_and_overrides_strictly(
      self):
    yamls = experiment_yamls()
    self.assertGreaterEqual(len(yamls), 3)
    for experiment, path in yamls:
      with self.subTest(experiment=experiment):
        config = exp_factory.get_exp_config(experiment)
        # is_strict=True: a misspelled key in a YAML fails here.
        config = hyperparams.override_params_dict(config, path,
                                                  is_strict=True)
        config.validate()
        self.assertTrue(config.task.tokenizer_model_path)
        self.assertGreater(config.trainer.train_steps, 0)

  def test_demo_experiments_pair_a_full_context_teacher_with_a_streaming_student(
      self):
    teacher = exp_factory.get_exp_config('rnnt_demo_teacher')
    student = exp_factory.get_exp_config('rnnt_demo_student_streaming')
    self.assertFalse(teacher.task.model.encoder.causal)
    self.assertTrue(student.task.model.encoder.causal)
    self.assertEqual(teacher.task.model.encoder.subsampling_factor,
                     student.task.model.encoder.subsampling_factor)

  def test_experiment_comparison_yamls_load_onto_their_experiments(self):
    paths = sorted(glob.glob(os.path.join(REPO_ROOT, 'configs', 'experiments',
                                          '*.yaml')))
    self.assertGreaterEqual(len(paths), 6)
    for path in paths:
      experiment = os.path.splitext(os.path.basename(path))[0]
      with self.subTest(experiment=experiment):
        config = hyperparams.override_params_dict(
            exp_factory.get_exp_config(experiment), path, is_strict=True)
        config.validate()

  def test_noisy_student_run_configs_load(self):
    paths = glob.glob(os.path.join(REPO_ROOT, 'configs', 'noisy_student',
                                   '*.yaml'))
    self.assertNotEmpty(paths)
    for path in paths:
      with self.subTest(path=path):
        config = noisy_student_config.load_config(path)
        self.assertGreaterEqual(config.num_generations, 1)

  def test_unknown_yaml_key_is_rejected(self):
    config = exp_factory.get_exp_config('rnnt_demo_teacher')
    with self.assertRaises(KeyError):
      hyperparams.override_params_dict(
          config, {'task': {'no_such_field': 1}}, is_strict=True)


class LearningRateScheduleTest(tf.test.TestCase):

  def _rates(self, config, steps):
    factory = optimization.OptimizerFactory(config.trainer.optimizer_config)
    schedule = factory.build_learning_rate()
    return [float(schedule(step)) for step in steps]

  def test_cosine_decays_to_zero_at_the_overridden_last_step(self):
    config = exp_factory.get_exp_config('rnnt_demo_teacher')
    config.trainer.train_steps = 3000
    self.assertTrue(optimizer_recipes.decay_over_train_steps(config))
    self.assertFalse(optimizer_recipes.decay_over_train_steps(config))
    warmup = config.trainer.optimizer_config.warmup.linear.warmup_steps
    peak = config.trainer.optimizer_config.learning_rate.cosine.initial_learning_rate
    middle, end, after_warmup = self._rates(config, [1500, 3000, warmup])
    # Cosine from step 0: 0.5 * (1 + cos(pi * step / 3000)) of the peak.
    self.assertNear(middle, 0.5 * peak, 1e-7)
    self.assertNear(end, 0.0, 1e-9)
    self.assertGreater(after_warmup, 0.9 * peak)

  def test_inverse_sqrt_schedule_is_left_alone(self):
    config = exp_factory.get_exp_config('rnnt_librispeech_conformer_l')
    config.trainer.train_steps = 123
    self.assertFalse(optimizer_recipes.decay_over_train_steps(config))
    warmup = config.trainer.optimizer_config.warmup.linear.warmup_steps
    at_warmup, later = self._rates(config, [warmup, 4 * warmup])
    self.assertNear(later, at_warmup / 2, 1e-7)


if __name__ == '__main__':
  tf.test.main()
