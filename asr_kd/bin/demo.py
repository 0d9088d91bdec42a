r"""The main job on the bundled demo corpus, end to end (`make demo`).

  python -m asr_kd.bin.demo --work_dir=demo_run

Each stage runs the same public command a user would run (printed before it
starts) and leaves its outputs under --work_dir. A stage whose outputs exist
is skipped, so an interrupted demo continues where it stopped; delete
--work_dir (or one stage's folder) to redo it.
"""

import os
import shlex
import subprocess
import sys
import time
from typing import Callable, List, NamedTuple

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags():
  flags.DEFINE_string('work_dir', 'demo_run', 'Where every stage writes.')
  flags.DEFINE_integer('num_train', 8000, 'Training utterances to synthesize.')
  flags.DEFINE_integer('seed', 0, 'Corpus seed.')
  flags.DEFINE_integer('num_shards', 8, 'TFRecord shards per split.')
  flags.DEFINE_integer('teacher_train_steps', None,
                       'Override the teacher config\'s trainer.train_steps.')


class Stage(NamedTuple):
  name: str
  done_marker: str  # Path that exists once the stage has finished.
  commands: Callable[[], List[List[str]]]


def run_command(command: List[str]):
  """Runs one stage command, echoing it, and stops the demo if it fails."""
  print('+ ' + ' '.join(shlex.quote(part) for part in command), flush=True)
  result = subprocess.run(command, check=False)
  if result.returncode != 0:
    sys.exit(f'demo: stage command failed with exit code {result.returncode}:'
             f' {" ".join(command)}')


def python_module(module: str, *args: str) -> List[str]:
  return [sys.executable, '-m', module, *args]


def build_stages(work_dir: str) -> List[Stage]:
  """The demo's stages, in order."""
  corpus = os.path.join(work_dir, 'corpus')
  records = os.path.join(work_dir, 'tfrecords')
  splits = ('train', 'dev', 'test')

  def convert():
    commands = [python_module(
        'tfrecords_tools.convert', f'--input={corpus}/{split}',
        '--format=librispeech', f'--output_dir={records}',
        f'--output_prefix={split}', f'--num_shards={FLAGS.num_shards}',
        '--direct_running_mode=in_memory')
                for split in splits]
    commands.append(python_module(
        'tfrecords_tools.convert', f'--input={corpus}/unlabeled',
        '--format=audio_dir', f'--output_dir={records}',
        '--output_prefix=unlabeled', f'--num_shards={FLAGS.num_shards}',
        '--direct_running_mode=in_memory'))
    return commands

  teacher_overrides = []
  if FLAGS.teacher_train_steps:
    teacher_overrides = [
        f'--params_override=trainer.train_steps={FLAGS.teacher_train_steps}']
  return [
      Stage('Synthesize the demo corpus (eSpeak NG)',
            os.path.join(corpus, 'corpus_info.json'),
            lambda: [python_module(
                'tfrecords_tools.make_demo_corpus', f'--output_dir={corpus}',
                f'--num_train={FLAGS.num_train}', f'--seed={FLAGS.seed}',
                '--overwrite')]),
      Stage('Convert to TFRecords (Apache Beam)',
            os.path.join(records, 'unlabeled.summary.json'), convert),
      Stage('Inspect the TFRecords', '',
            lambda: [python_module('tfrecords_tools.inspect',
                                   f'{records}/*.tfrecord*')]),
      Stage('Train the SentencePiece tokenizer',
            os.path.join(work_dir, 'tokenizer', 'spm.model'),
            lambda: [python_module(
                'tfrecords_tools.train_tokenizer',
                f'--input={records}/train-*',
                f'--output_prefix={work_dir}/tokenizer/spm',
                '--vocab_size=256', '--model_type=unigram')]),
      Stage('Compute feature statistics',
            os.path.join(work_dir, 'feature_stats.json'),
            lambda: [python_module(
                'tfrecords_tools.compute_feature_stats',
                f'--input={records}/train-*',
                f'--output={work_dir}/feature_stats.json')]),
      Stage('Train the Conformer teacher', '',
            lambda: [python_module(
                'asr_kd.bin.train', '--experiment=rnnt_demo_teacher',
                '--config_file=configs/rnnt_demo_teacher.yaml',
                '--mode=train', f'--model_dir={work_dir}/teacher',
                *teacher_overrides)]),
      Stage('Evaluate the teacher on the test split', '',
            lambda: [python_module(
                'asr_kd.bin.evaluate', f'--model_dir={work_dir}/teacher',
                f'--tfrecords={records}/test-*', '--decoder=greedy',
                f'--output={work_dir}/teacher/test_hypotheses.jsonl')]),
  ]


def main(argv):
  del argv
  work_dir = FLAGS.work_dir
  os.makedirs(work_dir, exist_ok=True)
  stages = build_stages(work_dir)
  start = time.time()
  for number, stage in enumerate(stages, 1):
    header = f'[{number}/{len(stages)}] {stage.name}'
    if stage.done_marker and os.path.exists(stage.done_marker):
      print(f'{header}: done already ({stage.done_marker})', flush=True)
      continue
    print(f'{header} ({time.time() - start:.0f} s elapsed)', flush=True)
    for command in stage.commands():
      run_command(command)
  print(f'demo: finished in {time.time() - start:.0f} s; outputs in '
        f'{work_dir}/', flush=True)


if __name__ == '__main__':
  define_flags()
  app.run(main)
