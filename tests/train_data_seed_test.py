"""One run seed (task.seed) drives the training data's order and SpecAugment."""

import tempfile

import numpy as np
import tensorflow as tf

from asr_kd.configs import rnnt_experiments
from asr_kd.configs import task_config
from asr_kd.dataloaders import input_pipeline
from asr_kd.tasks import rnnt_task
from tests import testing_utils

_BATCHES = 3


class TrainDataSeedTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.corpus = testing_utils.write_tiny_corpus(tempfile.mkdtemp())

  def batches(self, task_seed, data_seed=None):
    """The first batches' ids, features and SpecAugment masks."""
    config = testing_utils.tiny_experiment(self.corpus)
    config.task.seed = task_seed
    config.task.train_data.seed = data_seed
    config.task.model.features.dither = 1e-3
    task = rnnt_task.RnntTask(config.task)
    ids, features, masks = [], [], {}
    for batch in task.build_inputs(config.task.train_data).take(_BATCHES):
      mask = batch[input_pipeline.FEATURE_MASK].numpy()
      for index, utterance_id in enumerate(batch['utterance_id'].numpy()):
        ids.append(utterance_id.decode())
        masks.setdefault(utterance_id.decode(), mask[index])
      features.append(batch['features'].numpy())
    return ids, features, masks

  def test_rule(self):
    self.assertEqual(task_config.train_data_seed(4, None),
                     4 + task_config.TRAIN_DATA_SEED_OFFSET)
    self.assertEqual(task_config.train_data_seed(4, 9), 9)
    # The demo presets leave it to the rule.
    for preset in (rnnt_experiments.rnnt_demo_teacher,
                   rnnt_experiments.rnnt_demo_student_streaming):
      self.assertIsNone(preset().task.train_data.seed)

  def test_same_seed_same_batches_other_seed_other_order_and_masks(self):
    ids_a, features_a, masks_a = self.batches(task_seed=0)
    ids_again, features_again, _ = self.batches(task_seed=0)
    ids_b, _, masks_b = self.batches(task_seed=1)
    self.assertEqual(ids_a, ids_again)
    for first, second in zip(features_a, features_again):
      self.assertAllEqual(first, second)
    self.assertNotEqual(ids_a, ids_b)
    common = sorted(set(masks_a) & set(masks_b))
    self.assertNotEmpty(common)
    # SpecAugment masked something, and differently under the other seed.
    self.assertTrue(any(masks_a[key].any() for key in common))
    different = [key for key in common
                 if not np.array_equal(masks_a[key], masks_b[key])]
    self.assertNotEmpty(different)

  def test_explicit_data_seed_overrides_the_rule(self):
    ids_a, features_a, _ = self.batches(task_seed=0, data_seed=5)
    ids_b, features_b, _ = self.batches(task_seed=1, data_seed=5)
    self.assertEqual(ids_a, ids_b)
    for first, second in zip(features_a, features_b):
      self.assertAllEqual(first, second)
    # And the rule's seed for task.seed 4 is data seed 5.
    ids_rule, _, _ = self.batches(task_seed=5 -
                                  task_config.TRAIN_DATA_SEED_OFFSET)
    self.assertEqual(ids_rule, ids_a)


if __name__ == '__main__':
  tf.test.main()
