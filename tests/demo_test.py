"""`make demo`'s plan: every stage names a real binary, config and flag."""

import contextlib
import importlib
import io
import json
import os
import sys
import tempfile
from unittest import mock

import tensorflow as tf

from official.core import exp_factory

from asr_kd import registry_imports  # pylint: disable=unused-import
from asr_kd.bin import demo
from asr_kd.experiments import results
from asr_kd.experiments import stages
from tests import model_loader_test
from tests import testing_utils

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parsed_flags(*args):
  return testing_utils.parsed_flags(demo.define_flags, 'demo', *args)


class DemoPlanTest(tf.test.TestCase):

  def test_stages_run_existing_modules_with_existing_files(self):
    options = parsed_flags('--teacher_train_steps=7')
    demo_stages = demo.build_stages('/tmp/wd', options)
    names = [stage.name for stage in demo_stages]
    self.assertIn('Train the full-context Conformer teacher', names)
    self.assertIn('Export the student to streaming TFLite', names)
    for stage in demo_stages:
      for command in stage.commands():
        self.assertEqual(command[:2], [sys.executable, '-m'])
        module = importlib.import_module(command[2])
        self.assertTrue(hasattr(module, 'main'), command[2])
        for argument in command[3:]:
          if argument.startswith('--config_file='):
            self.assertTrue(os.path.exists(os.path.join(
                REPO_ROOT, argument.split('=', 1)[1])), argument)
    teacher = [stage for stage in demo_stages if 'teacher' in stage.name][0]
    command = teacher.commands()[0]
    override = [a for a in command if a.startswith('--params_override=')][0]
    self.assertIn('trainer.train_steps=7', override)
    self.assertIn('task.tokenizer_model_path=/tmp/wd/tokenizer/spm.model',
                  override)
    # Replicas only where no accelerator is seen; 1 turns them off.
    replicas_flag = '--cpu_replicas=2'
    if stages.cpu_only_host():
      self.assertIn(replicas_flag, command)
    else:
      self.assertNotIn(replicas_flag, command)
    single = [stage for stage in demo.build_stages(
        '/tmp/wd', parsed_flags('--teacher_cpu_replicas=1'))
              if 'teacher' in stage.name][0]
    self.assertFalse([a for a in single.commands()[0]
                      if a.startswith('--cpu_replicas')])

  def test_corpus_stage_passes_the_flite_fraction(self):
    for args, fraction in (((), 0.0), (('--flite_fraction=0.3',), 0.3)):
      stage = demo.build_stages('/tmp/wd', parsed_flags(*args))[0]
      self.assertIn(f'--flite_fraction={fraction}', stage.commands()[0])

  def test_batches_split_over_the_default_cpu_replicas(self):
    options = parsed_flags()
    for experiment, replicas in (
        ('rnnt_demo_teacher', options.teacher_cpu_replicas),
        ('kd_demo_student', options.student_cpu_replicas)):
      train_data = exp_factory.get_exp_config(experiment).task.train_data
      for size in train_data.bucket_batch_sizes:
        self.assertEqual(size % replicas, 0, (experiment, size))

  def test_student_distills_on_cpu_replicas_unless_told_not_to(self):
    def student_command(*args):
      stage = [stage for stage in demo.build_stages('/tmp/wd',
                                                    parsed_flags(*args))
               if stage.name.startswith('Distill')][0]
      return stage.commands()[0]
    if stages.cpu_only_host():
      self.assertIn('--cpu_replicas=2', student_command())
    self.assertFalse([a for a in student_command('--student_cpu_replicas=1')
                      if a.startswith('--cpu_replicas')])

  def test_data_only_stops_after_the_feature_statistics(self):
    full = demo.build_stages('/tmp/wd', parsed_flags())
    data = demo.build_stages('/tmp/wd', parsed_flags('--data_only'))
    self.assertEqual([(stage.name, stage.done_marker, stage.time_file)
                      for stage in data],
                     [(stage.name, stage.done_marker, stage.time_file)
                      for stage in full[:len(data)]])
    self.assertEqual(data[-1].done_marker, '/tmp/wd/feature_stats.json')
    # Everything after it trains or uses a model.
    self.assertTrue(all(
        'asr_kd.bin' in ' '.join(stage.commands()[0])
        for stage in full[len(data):]), [stage.name for stage in full])

  def test_main_runs_every_stage_in_order_and_reports(self):
    work_dir = tempfile.mkdtemp()
    options = parsed_flags(f'--work_dir={work_dir}')
    commands_run = []
    output = io.StringIO()
    with mock.patch.object(demo, 'FLAGS', options), \
         mock.patch.object(stages, 'run_command',
                           lambda command, clock=None:
                           commands_run.append(command)), \
         contextlib.redirect_stdout(output):
      demo.main(['demo'])
    demo_stages = demo.build_stages(work_dir, options)
    expected = [command for stage in demo_stages
                for command in stage.commands()]
    self.assertGreater(len(expected), 8)
    self.assertEqual(commands_run, expected)
    # Every stage's time file was written, and the report adds them up.
    times = []
    for stage in demo_stages:
      with open(stage.time_file) as time_file:
        times.append(json.load(time_file)['seconds'])
    self.assertLen(set(stage.time_file for stage in demo_stages),
                   len(demo_stages))
    printed = output.getvalue()
    count = len(demo_stages)
    self.assertIn(f'time     [{count}/{count}] {demo_stages[-1].name}: ',
                  printed)
    self.assertIn(f'time     all stages: {sum(times) / 60:.1f} min wall',
                  printed)
    self.assertIn('demo: finished', printed)

  def test_every_stage_flag_is_accepted_by_its_binary(self):
    """Runs each stage binary with --helpfull: unknown flags would not list."""
    # convert passes unknown flags through to Beam.
    commands = [command
                for stage in demo.build_stages('/tmp/wd', parsed_flags())
                for command in stage.commands()
                if command[2] != 'tfrecords_tools.convert']
    help_texts = testing_utils.help_texts(
        sorted({command[2] for command in commands}))
    for command in commands:
      module = command[2]
      self.assertIn('--helpfull', help_texts[module], module)
      for argument in command[3:]:
        if argument.startswith('--'):
          name = argument[2:].split('=', 1)[0]
          self.assertIn(f'--{name}', help_texts[module], f'{module} --{name}')

  def test_evaluation_scores_test_and_ood_and_skips_scored_splits(self):
    model_dir = self.get_temp_dir()
    commands = stages.evaluate_commands(model_dir, '/tmp/records',
                                        results.REPORTED_SPLITS)
    self.assertLen(commands, 2)
    self.assertIn('--tfrecords=/tmp/records/test-*', commands[0])
    self.assertIn('--tfrecords=/tmp/records/ood-*', commands[1])
    for command in commands:
      self.assertIn('--decoder=beam', command)
      self.assertIn(f'--beam_size={stages.EVALUATION_BEAM_SIZE}', command)
    self.assertIn(f'--summary_output={model_dir}/ood_summary.json',
                  commands[1])
    with open(stages.summary_path(model_dir, 'test'), 'w') as summary:
      json.dump({'wer': 0.125, 'utterances': 400}, summary)
    remaining = stages.evaluate_commands(model_dir, '/tmp/records',
                                         results.REPORTED_SPLITS)
    self.assertLen(remaining, 1)
    self.assertIn('--tfrecords=/tmp/records/ood-*', remaining[0])

  def test_report_prints_test_and_ood_wer_of_each_model(self):
    work_dir = self.get_temp_dir()
    for name, wers in (('teacher', (0.1, 0.2)), ('student', (0.15, 0.3))):
      os.makedirs(os.path.join(work_dir, name), exist_ok=True)
      for split, wer in zip(results.REPORTED_SPLITS, wers):
        with open(stages.summary_path(os.path.join(work_dir, name), split),
                  'w') as summary:
          json.dump({'wer': wer, 'utterances': 400}, summary)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
      demo.report_wers(work_dir)
    lines = output.getvalue().splitlines()
    self.assertEqual(lines, [
        'teacher  test WER  10.00% (400 utterances, beam 4)  '
        'ood WER  20.00% (400 utterances, beam 4)',
        'student  test WER  15.00% (400 utterances, beam 4)  '
        'ood WER  30.00% (400 utterances, beam 4)'])

  def test_describe_model_counts_inference_weights_and_streaming_contexts(self):
    work_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
    self.assertEqual(demo.describe_model(work_dir), '')  # No checkpoint.
    run_info = model_loader_test.train_tiny_model_dir(work_dir, causal=True)
    trained = run_info['model']
    # The recipe trains an auxiliary CTC head, which transcription never uses.
    self.assertIsNotNone(trained.ctc_head)
    expected = (trained.count_params() - trained.ctc_head.count_params() -
                sum(int(weight.shape.num_elements())
                    for weight in trained.non_trainable_weights))
    encoder = run_info['config'].task.model.encoder
    frame_ms = run_info['config'].task.model.features.frame_step_ms
    chunk_ms = encoder.chunk_size * encoder.subsampling_factor * frame_ms
    self.assertEqual(
        demo.describe_model(run_info['model_dir']),
        f'{expected:,} parameters, streaming: {chunk_ms:.0f} ms chunks '
        f"(look-ahead to the chunk's end), "
        f'{encoder.left_chunks * chunk_ms:.0f} ms left context')

  def test_demo_converts_every_labeled_split_of_the_corpus(self):
    convert = [stage for stage in demo.build_stages('/tmp/wd', parsed_flags())
               if 'TFRecords' in stage.name][0]
    prefixes = {a.split('=', 1)[1] for command in convert.commands()
                for a in command if a.startswith('--output_prefix=')}
    self.assertEqual(prefixes, {'train', 'dev', 'test', 'ood', 'unlabeled'})


if __name__ == '__main__':
  tf.test.main()
