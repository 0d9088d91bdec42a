"""Tests for asr_kd.tasks.distillation_task (online frozen teacher)."""

import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import train_utils
from official.modeling import hyperparams

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.configs import distillation_config
from asr_kd.dataloaders import features as features_lib
from asr_kd.dataloaders import input_pipeline
from asr_kd.dataloaders import tokenizer as tokenizer_lib
from asr_kd.losses import rnnt as rnnt_lib
from asr_kd.modeling import rnnt_model
from asr_kd.pseudo_labeling import pipeline
from asr_kd.tasks import distillation_task
from asr_kd.tasks import rnnt_task
from tests import testing_utils

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _log_softmax64(logits, temperature):
  scaled = np.asarray(logits, np.float64) / temperature
  scaled -= scaled.max(-1, keepdims=True)
  return scaled - np.log(np.exp(scaled).sum(-1, keepdims=True))


def _reference_kl(student_logits, teacher_logits, labels, logit_lengths,
                  label_lengths, kind, temperature, blank=0):
  """float64 per-example KL(teacher || student) summed over lattice nodes."""
  student = np.exp(_log_softmax64(student_logits, temperature))
  teacher = np.exp(_log_softmax64(teacher_logits, temperature))
  batch, num_frames, num_rows, _ = student.shape
  kl = np.zeros(batch)
  for b in range(batch):
    for t in range(min(logit_lengths[b], num_frames)):
      for u in range(label_lengths[b] + 1):
        p_teacher, p_student = teacher[b, t, u], student[b, t, u]
        if kind == 'three_class':
          groups = [[blank]]
          if u < label_lengths[b]:
            groups.append([labels[b, u]])
          taken = {i for group in groups for i in group}
          groups.append([i for i in range(len(p_teacher)) if i not in taken])
          p_teacher = np.array([p_teacher[g].sum() for g in groups])
          p_student = np.array([p_student[g].sum() for g in groups])
        kl[b] += np.sum(p_teacher * (np.log(p_teacher) - np.log(p_student)))
  del num_rows
  return kl * temperature**2


def _write_model_dir(model_dir, experiment, seed):
  """A model_dir like asr_kd.bin.train writes: params.yaml + ckpt-1.

  The weights are a seeded random initialization: the plumbing under test
  does not need a trained teacher.
  """
  task = rnnt_task.RnntTask(experiment.task)
  tf_keras.utils.set_random_seed(seed)
  model = task.build_model()
  train_utils.serialize_config(experiment, model_dir)
  tf.train.Checkpoint(model=model).save(os.path.join(model_dir, 'ckpt'))
  return model


def _teacher_model_config():
  """Full-context, wider than the student (weights cannot be confused)."""
  config = testing_utils.tiny_model_config(causal=False)
  config.encoder.model_dim = 24
  config.joint.joint_dim = 20
  return config


class DistillationTaskTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.work_dir = tempfile.mkdtemp()
    cls.corpus = testing_utils.write_tiny_corpus(
        os.path.join(cls.work_dir, 'corpus'))
    teacher_experiment = testing_utils.tiny_experiment(cls.corpus)
    teacher_experiment.task.model = _teacher_model_config()
    teacher_experiment.task.model.feature_stats_file = (
        cls.corpus['feature_stats'])
    cls.teacher_dir = os.path.join(cls.work_dir, 'teacher')
    # Like the demo teacher, it trains a CTC head that the loaded teacher
    # does not have (inference models are built without it).
    cls.teacher_weights = [
        w.numpy() for w in
        _write_model_dir(cls.teacher_dir, teacher_experiment, seed=7).weights
        if 'ctc_head' not in w.name]

  def _experiment(self, kind='full', **task_overrides):
    """tiny_experiment with a streaming student and the teacher above."""
    experiment = testing_utils.tiny_experiment(self.corpus, causal=True)
    task = distillation_config.DistillationTaskConfig()
    task.override(experiment.task.as_dict(), is_strict=True)
    # The demo students train without the teacher preset's auxiliary CTC.
    task.override({'teacher_model_dir': self.teacher_dir,
                   'distillation': {'kind': kind}, 'jit_compile': False,
                   'loss': {'ctc_weight': 0.0}},
                  is_strict=True)
    task.override(task_overrides, is_strict=True)
    experiment.task = task
    return experiment

  def _build(self, experiment):
    task = distillation_task.DistillationTask(experiment.task)
    model = task.build_model()
    optimizer = task.create_optimizer(experiment.trainer.optimizer_config,
                                      experiment.runtime)
    return task, model, optimizer, task.build_metrics(training=True)

  def _batch(self, task, experiment):
    return next(iter(task.build_inputs(experiment.task.train_data)))

  def test_training_updates_the_student_only(self):
    experiment = self._experiment()
    task, model, optimizer, metrics = self._build(experiment)
    by_name = {metric.name: metric for metric in metrics}
    batch = self._batch(task, experiment)
    expected_total, _ = task.per_example_losses(
        model, batch, model(batch, training=True))
    student_before = [w.numpy() for w in model.trainable_weights]

    logs = task.train_step(batch, model, optimizer, metrics)
    task.train_step(batch, model, optimizer, metrics)

    # The step's loss is the mean of the per-utterance distillation loss.
    self.assertAllClose(logs[task.loss], np.mean(expected_total), rtol=1e-5)
    self.assertGreater(float(by_name['kl_per_utterance'].result()), 0.0)
    self.assertGreater(float(by_name['rnnt_loss_per_utterance'].result()),
                       0.0)
    self.assertEqual(float(by_name['nonfinite_steps'].result()), 0.0)
    self.assertTrue(any(
        not np.array_equal(old, new.numpy())
        for old, new in zip(student_before, model.trainable_weights)))
    # The restored teacher is frozen and untouched by the steps.
    self.assertFalse(task.teacher.trainable_weights)
    self.assertLen(task.teacher.weights, len(self.teacher_weights))
    for expected, actual in zip(self.teacher_weights, task.teacher.weights):
      self.assertAllEqual(expected, actual.numpy())
    teacher_refs = {w.ref() for w in task.teacher.weights}
    self.assertFalse(teacher_refs & {w.ref() for w in model.weights})
    self.assertFalse(teacher_refs & {w.ref() for w in optimizer.variables()})
    # The student checkpoint (as Model Garden writes it) holds the student's
    # variables only.
    prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save(
        os.path.join(self.get_temp_dir(), 'student'))
    model_values = [name for name, _ in tf.train.list_variables(prefix)
                    if name.startswith('model/') and
                    name.endswith('.ATTRIBUTES/VARIABLE_VALUE') and
                    'OPTIMIZER_SLOT' not in name]
    self.assertLen(model_values, len(model.weights))

  def test_loss_is_rnnt_plus_alpha_kl_against_numpy(self):
    alpha, temperature = 0.3, 2.0
    for kind, fused, teacher_sees_augmented in (
        ('full', True, False), ('full', False, False),
        ('three_class', True, False), ('three_class', False, True)):
      with self.subTest(kind=kind, fused=fused,
                        teacher_sees_augmented=teacher_sees_augmented):
        experiment = self._experiment(
            kind, distillation={
                'alpha': alpha, 'temperature': temperature,
                'teacher_sees_augmented_features': teacher_sees_augmented},
            loss={'fused': fused})
        task, model, _, _ = self._build(experiment)
        batch = self._batch(task, experiment)
        outputs = model(batch, training=True)
        total, reported = task.per_example_losses(model, batch, outputs)
        # The student trains on SpecAugmented features; the teacher sees
        # them before SpecAugment unless told otherwise.
        mask = input_pipeline.FEATURE_MASK
        self.assertIn(mask, batch)
        self.assertTrue(bool(tf.reduce_any(batch[mask])))
        teacher_batch = dict(batch)
        if not teacher_sees_augmented:
          del teacher_batch[mask]
        teacher_outputs = task.teacher(teacher_batch, training=False)
        student_logits = model.joint_fn(
            outputs['encoder_outputs'][:, :, None],
            outputs['prediction_outputs'][:, None])
        teacher_logits = task.teacher.joint_fn(
            teacher_outputs['encoder_outputs'][:, :, None],
            teacher_outputs['prediction_outputs'][:, None])
        lengths = outputs['encoder_lengths'].numpy()
        self.assertAllEqual(lengths,
                            teacher_outputs['encoder_lengths'].numpy())
        expected_kl = _reference_kl(
            student_logits.numpy(), teacher_logits.numpy(),
            batch['labels'].numpy(), lengths,
            batch['label_lengths'].numpy(), kind, temperature)
        expected_rnnt = rnnt_lib.rnnt_loss(
            student_logits, batch['labels'], lengths,
            batch['label_lengths']).numpy()
        self.assertAllClose(reported['kl_per_utterance'], expected_kl,
                            rtol=1e-4, atol=1e-5)
        self.assertAllClose(reported['rnnt_loss_per_utterance'],
                            expected_rnnt, rtol=1e-5)
        self.assertAllClose(total, expected_rnnt + alpha * expected_kl,
                            rtol=1e-5)

  def test_stored_targets_of_every_id_match_online_distillation(self):
    # Targets of the whole vocabulary (k = V) stored by the teacher_targets
    # pipeline: the KL from the batch equals the online teacher's, up to
    # their float16 storage, and training needs no teacher.
    online = self._experiment(
        'full', distillation={'temperature': 2.0, 'alpha': 0.5,
                              'teacher_right_shift': 1})
    online_task, model, _, _ = self._build(online)
    targets_dir = os.path.join(self.work_dir, 'stored_targets')
    pipeline.run_pseudo_labeling(
        self.teacher_dir, self.corpus['tfrecords'], targets_dir,
        keep_transcripts=True, beam_size=2, batch_size=4,
        beam_args=['--direct_running_mode=in_memory',
                   '--direct_num_workers=1'],
        targets=pipeline.TargetOptions(
            top_k=online_task.tokenizer.vocab_size, temperature=2.0,
            frame_ratio=online_task.teacher_frame_ratio))
    data = {'input_path': os.path.join(targets_dir, 'pseudo-*'),
            'label_source': 'pseudo_label'}
    online.task.override({'train_data': data}, is_strict=True)
    stored = self._experiment(
        'full', teacher_model_dir='', train_data=data,
        distillation={'temperature': 2.0, 'alpha': 0.5, 'targets': 'stored',
                      'teacher_right_shift': 1,
                      'top_k': online_task.tokenizer.vocab_size})
    for fused in (True, False):
      with self.subTest(fused=fused):
        online.task.loss.fused = stored.task.loss.fused = fused
        online_task = distillation_task.DistillationTask(online.task)
        online_task.build_model()
        stored_task, _, optimizer, metrics = self._build(stored)
        self.assertIsNone(stored_task.teacher)
        batch = self._batch(stored_task, stored)
        self.assertIn(input_pipeline.TARGET_LOG_PROBS, batch)
        outputs = model(batch, training=False)
        _, from_batch = stored_task.per_example_losses(model, batch, outputs)
        _, from_teacher = online_task.per_example_losses(
            model, self._batch(online_task, online), outputs)
        self.assertAllClose(from_batch['kl_per_utterance'],
                            from_teacher['kl_per_utterance'], rtol=2e-2)
        self.assertAllClose(from_batch['rnnt_loss_per_utterance'],
                            from_teacher['rnnt_loss_per_utterance'])
        logs = stored_task.train_step(batch, model, optimizer, metrics)
        self.assertTrue(np.isfinite(float(logs[stored_task.loss])))

  def test_online_top_k_is_the_stored_targets_kl_of_the_live_teacher(self):
    experiment = self._experiment(
        'full', distillation={'temperature': 2.0, 'alpha': 0.5})
    task, model, _, _ = self._build(experiment)
    vocab_size = task.tokenizer.vocab_size
    batch = self._batch(task, experiment)
    outputs = model(batch, training=False)
    teacher = task.teacher_outputs(batch)
    self.assertEqual(teacher.frame_ratio, 1)
    kl = {}
    for fused in (False, True):
      experiment.task.loss.fused = fused
      for top_k in (0, 3, vocab_size):
        experiment.task.distillation.online_top_k = top_k
        _, reported = distillation_task.DistillationTask(
            experiment.task).objective.transducer_terms(
                model, batch, outputs, teacher)
        kl[fused, top_k] = reported['kl_per_utterance'].numpy()
    for top_k in (0, 3, vocab_size):
      self.assertAllClose(kl[True, top_k], kl[False, top_k], rtol=1e-4)
    kl = {top_k: kl[False, top_k] for top_k in (0, 3, vocab_size)}
    # k = V: every token its own class, the online full-vocabulary KL.
    self.assertAllClose(kl[vocab_size], kl[0], rtol=1e-4)
    # k = 3: the KL over {top 3, rest} per node, in float64 NumPy.
    tau = 2.0

    def log_softmax(logits):
      logits = logits.astype(np.float64) / tau
      logits -= logits.max(-1, keepdims=True)
      return logits - np.log(np.exp(logits).sum(-1, keepdims=True))

    def joint(joint_fn, model_outputs):
      return joint_fn(model_outputs['encoder_outputs'][:, :, None],
                      model_outputs['prediction_outputs'][:, None]).numpy()

    log_p = log_softmax(joint(teacher.joint_fn, teacher.outputs))
    log_q = log_softmax(joint(model.joint_fn, outputs))
    ids = np.argsort(-log_p, axis=-1, kind='stable')[..., :3]
    p_top = np.exp(np.take_along_axis(log_p, ids, -1))
    q_top = np.exp(np.take_along_axis(log_q, ids, -1))
    p_classes = np.concatenate([p_top, 1 - p_top.sum(-1, keepdims=True)], -1)
    q_classes = np.concatenate([q_top, 1 - q_top.sum(-1, keepdims=True)], -1)
    node_kl = (p_classes * (np.log(p_classes) - np.log(q_classes))).sum(-1)
    frames = outputs['encoder_lengths'].numpy()
    labels = batch['label_lengths'].numpy()
    valid = ((np.arange(node_kl.shape[1])[None, :, None] <
              frames[:, None, None]) &
             (np.arange(node_kl.shape[2])[None, None, :] <=
              labels[:, None, None]))
    expected = tau**2 * np.where(valid, node_kl, 0.0).sum(axis=(1, 2))
    self.assertAllClose(kl[3], expected, rtol=1e-3)
    self.assertNotAllClose(kl[3], kl[0], rtol=1e-2)

  def test_online_top_k_needs_online_full_vocabulary_targets(self):
    for distillation in ({'online_top_k': -1},
                         {'online_top_k': 4, 'kind': 'three_class'},
                         {'online_top_k': 4, 'targets': 'stored'}):
      with self.subTest(**distillation):
        experiment = self._experiment(distillation=distillation)
        with self.assertRaisesRegex(ValueError, 'online_top_k'):
          experiment.task.validate()

  def test_three_class_with_right_shift_and_none_train(self):
    for kind, shift in (('three_class', 2), ('none', 0)):
      with self.subTest(kind=kind, shift=shift):
        experiment = self._experiment(
            kind, distillation={'teacher_right_shift': shift})
        task, model, optimizer, metrics = self._build(experiment)
        by_name = {metric.name: metric for metric in metrics}
        logs = task.train_step(self._batch(task, experiment), model,
                               optimizer, metrics)
        self.assertTrue(np.isfinite(float(logs[task.loss])))
        kl = float(by_name['kl_per_utterance'].result())
        if kind == 'none':
          self.assertIsNone(task.teacher)
          self.assertEqual(kl, 0.0)
        else:
          self.assertGreater(kl, 0.0)

  def test_labels_alone_train_on_the_pruned_loss(self):
    experiment = self._experiment('none', loss={'pruned_range': 2})
    task, model, optimizer, metrics = self._build(experiment)
    batch = self._batch(task, experiment)
    total, reported = task.per_example_losses(
        model, batch, model(batch, training=True))
    self.assertAllClose(
        total, reported['rnnt_loss_per_utterance'] +
        0.5 * reported[rnnt_task.SIMPLE_LOSS_NAME], rtol=1e-6)
    self.assertAllEqual(reported['kl_per_utterance'], tf.zeros_like(total))
    by_name = {metric.name: metric for metric in metrics}
    task.train_step(batch, model, optimizer, metrics)
    self.assertGreater(float(by_name[rnnt_task.SIMPLE_LOSS_NAME].result()),
                       0.0)

  def test_teacher_at_twice_the_student_frame_rate(self):
    experiment = self._experiment(
        'full', model={'encoder': {'subsampling_factor': 8}},
        distillation={'teacher_right_shift': 1})
    task, model, optimizer, metrics = self._build(experiment)
    self.assertEqual(task.teacher_frame_ratio, 2)
    batch = self._batch(task, experiment)
    outputs = model(batch, training=True)
    teacher_lengths = task.teacher(batch)['encoder_lengths']
    self.assertAllLessEqual(
        np.abs(teacher_lengths.numpy() - 2 * outputs['encoder_lengths']), 1)
    fused_total, _ = task.per_example_losses(model, batch, outputs)
    task.task_config.loss.fused = False
    unfused_total, _ = task.per_example_losses(model, batch, outputs)
    self.assertAllClose(fused_total, unfused_total, rtol=1e-5)
    logs = task.train_step(batch, model, optimizer, metrics)
    self.assertTrue(np.isfinite(float(logs[task.loss])))

  def test_teacher_normalizes_with_its_own_statistics(self):
    mean, stddev = features_lib.load_feature_stats(
        self.corpus['feature_stats'])
    rng = np.random.default_rng(3)
    student_stats = os.path.join(self.get_temp_dir(), 'student_stats.json')
    with open(student_stats, 'w') as stats_file:
      json.dump({'mean': (mean + rng.normal(size=mean.shape)).tolist(),
                 'stddev': (stddev * rng.uniform(0.5, 2.0, stddev.shape)
                           ).tolist()}, stats_file)
    experiment = self._experiment()
    experiment.task.model.feature_stats_file = student_stats
    task, model, _, _ = self._build(experiment)
    self.assertNotAllClose(model.feature_mean, task.teacher.feature_mean)
    self.assertAllClose(task.teacher.feature_mean, mean)
    batch = self._batch(task, experiment)
    teacher = task.teacher_outputs(batch)
    # The teacher's outputs are those of its own frontend on the clean
    # log-mel features of the batch.
    expected = task.teacher({'features': batch['features'],
                             'feature_lengths': batch['feature_lengths'],
                             'labels': batch['labels'],
                             'label_lengths': batch['label_lengths']},
                            training=False)
    self.assertAllClose(teacher.outputs['encoder_outputs'],
                        expected['encoder_outputs'], atol=1e-5)

  def test_a_teacher_with_other_features_is_refused_in_one_line(self):
    experiment = self._experiment()
    experiment.task.model.features.frame_step_ms = 12.5
    with self.assertRaisesRegex(ValueError,
                                'computes other log-mel features') as caught:
      self._build(experiment)
    self.assertNotIn('\n', str(caught.exception))

  def test_bad_configurations_fail_clearly(self):
    with self.assertRaisesRegex(ValueError, 'does not divide'):
      self._build(self._experiment(
          model={'encoder': {'subsampling_factor': 6}}))
    with self.assertRaisesRegex(ValueError, 'teacher_model_dir is required'):
      self._build(self._experiment(teacher_model_dir=''))
    with self.assertRaisesRegex(FileNotFoundError, 'teacher model_dir not'):
      self._build(self._experiment(teacher_model_dir='/no/such/dir'))
    with self.assertRaisesRegex(FileNotFoundError,
                                r'teacher checkpoint \S+ not found'):
      self._build(self._experiment(teacher_checkpoint='/no/such/ckpt-3'))
    with self.assertRaisesRegex(ValueError, 'kind must be one of'):
      self._build(self._experiment(distillation={'kind': 'softest'}))
    with self.assertRaisesRegex(ValueError, 'pruned_range is not available'):
      self._build(self._experiment('three_class', loss={'pruned_range': 4}))
    with self.assertRaisesRegex(ValueError, 'integer'):
      distillation_config.teacher_frame_ratio(8, 4)

  def test_experiments_registered(self):
    for name in ('kd_demo_student_none', 'kd_demo_student_hard',
                 'kd_demo_self_hard'):
      config = exp_factory.get_exp_config(name)
      self.assertTrue(config.task.model.encoder.causal)
      self.assertNotIsInstance(config.task,
                               distillation_config.DistillationTaskConfig)
    self.assertEqual(
        exp_factory.get_exp_config('kd_demo_student_hard'
                                  ).task.train_data.label_source,
        'pseudo_label')
    for name, kind, teacher in (
        ('kd_demo_student', 'full', 'demo_run/teacher'),
        ('kd_demo_student_soft_full', 'full', 'demo_run/teacher'),
        ('kd_demo_student_soft_3class', 'three_class', 'demo_run/teacher'),
        ('kd_demo_self_soft', 'full', 'demo_run/self_teacher')):
      config = exp_factory.get_exp_config(name)
      config.validate()
      config.task.validate()
      self.assertEqual(config.task.distillation.kind, kind)
      self.assertEqual(config.task.teacher_model_dir, teacher)
      self.assertTrue(config.task.model.encoder.causal)

  def test_shipped_student_is_noise_free_and_comparison_rows_are_noisy(self):
    shipped = exp_factory.get_exp_config('kd_demo_student')
    labels_only = exp_factory.get_exp_config('rnnt_demo_student_streaming')
    self.assertEqual(shipped.task.model.as_dict(),
                     labels_only.task.model.as_dict())
    self.assertEqual(shipped.task.train_data.as_dict(),
                     labels_only.task.train_data.as_dict())
    self.assertEqual(shipped.task.distillation.kind, 'full')
    self.assertEqual(shipped.task.teacher_model_dir, 'demo_run/teacher')
    self.assertEqual(shipped.trainer.train_steps,
                     labels_only.trainer.train_steps)
    self.assertEqual(shipped.task.model.encoder.dropout_rate, 0.0)
    self.assertFalse(shipped.task.train_data.spec_augment.enabled)

    def without_dropout(model_config):
      model = model_config.as_dict()
      for part in ('encoder', 'prediction'):
        model[part] = {key: value for key, value in model[part].items()
                       if 'dropout' not in key}
      return model

    for name in ('kd_demo_student_none', 'kd_demo_student_hard',
                 'kd_demo_student_soft_full', 'kd_demo_student_soft_3class',
                 'kd_demo_self_hard', 'kd_demo_self_soft'):
      with self.subTest(name=name):
        row = exp_factory.get_exp_config(name).task
        self.assertEqual(without_dropout(row.model),
                         without_dropout(shipped.task.model))
        self.assertEqual(row.model.encoder.dropout_rate, 0.1)
        self.assertEqual(row.model.encoder.attention_dropout_rate, 0.1)
        self.assertEqual(row.model.prediction.dropout_rate, 0.1)
        self.assertTrue(row.train_data.spec_augment.enabled)

  def test_experiment_yamls_load_strictly(self):
    paths = sorted(glob.glob(
        os.path.join(_REPO_ROOT, 'configs', 'experiments', 'kd_*.yaml')))
    names = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    self.assertCountEqual(names, [
        'kd_demo_student_none', 'kd_demo_student_hard',
        'kd_demo_student_soft_full', 'kd_demo_student_soft_3class',
        'kd_demo_self_hard', 'kd_demo_self_soft', 'kd_demo_big_teacher'])
    for name, path in zip(names, paths):
      with self.subTest(name=name):
        registered = exp_factory.get_exp_config(name)
        # is_strict: a misspelled key fails here.
        config = hyperparams.override_params_dict(
            exp_factory.get_exp_config(name), path, is_strict=True)
        config.validate()
        config.task.validate()
        self.assertEqual(config.task.model.as_dict(),
                         registered.task.model.as_dict())
        self.assertEqual(config.task.train_data.label_source,
                         registered.task.train_data.label_source)

  def test_train_binary_distills_the_tiny_student(self):
    experiment = self._experiment(jit_compile=True)
    experiment.trainer.train_steps = 2
    experiment.trainer.validation_steps = 1
    config_path = os.path.join(self.get_temp_dir(), 'kd.yaml')
    hyperparams.save_params_dict_to_yaml(experiment, config_path)
    model_dir = os.path.join(self.get_temp_dir(), 'student')
    result = subprocess.run(
        [sys.executable, '-m', 'asr_kd.bin.train',
         '--experiment=kd_demo_student_soft_full',
         f'--config_file={config_path}', '--mode=train',
         f'--model_dir={model_dir}'],
        cwd=_REPO_ROOT, capture_output=True, text=True, timeout=300,
        check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    self.assertIsNotNone(tf.train.latest_checkpoint(model_dir))
    # The run's params.yaml names the teacher, and its checkpoint holds a
    # student of the configured size (restorable as a plain RnntModel).
    with open(os.path.join(model_dir, 'params.yaml')) as params_file:
      self.assertIn(self.teacher_dir, params_file.read())
    student = rnnt_model.RnntModel(
        experiment.task.model,
        vocab_size=tokenizer_lib.Tokenizer(self.corpus['tokenizer']).vocab_size)
    student.build_for_checkpoint()
    status = tf.train.Checkpoint(model=student).restore(
        tf.train.latest_checkpoint(model_dir))
    status.expect_partial().assert_existing_objects_matched()


if __name__ == '__main__':
  tf.test.main()
