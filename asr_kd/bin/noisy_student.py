r"""Runs Noisy Student Training generations from a YAML config.

  python -m asr_kd.bin.noisy_student --config_file=configs/noisy_student/demo.yaml

Each generation: the teacher pseudo-labels the unlabeled (and labeled)
audio, a student trains on the labels with SpecAugment (hard targets, or
soft targets with an online KL to the teacher) and becomes the next
teacher. Rerunning the same command after a kill skips finished stages and
resumes the interrupted one (docs/noisy_student.md).
"""

import sys
from typing import List

from absl import app
from absl import flags
import tensorflow as tf

from asr_kd.inference import model_loader
from asr_kd.noisy_student import config as config_lib
from asr_kd.noisy_student import stages as stages_lib


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (only when run as one)."""
  flags.DEFINE_string('config_file', None, 'Noisy Student YAML config.',
                      flag_values=flag_values)
  flags.DEFINE_string('stop_after', None, 'Stop after this stage (e.g. '
                      'generation_1/pseudo_label).', flag_values=flag_values)
  flags.DEFINE_bool('list_stages', False, 'Print the stages and whether '
                    'they are done, then exit.', flag_values=flag_values)


def _fail(message: str) -> None:
  print(f'noisy_student: error: {message}', file=sys.stderr)
  sys.exit(1)


def main(argv: List[str],
         flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Plans the stages and runs the unfinished ones."""
  if len(argv) > 1:
    _fail(f'unexpected arguments: {" ".join(argv[1:])}')
  if not flag_values.config_file:
    _fail('--config_file is required')
  try:
    config = config_lib.load_config(flag_values.config_file)
    stages = stages_lib.plan_stages(config)
  except ValueError as error:
    _fail(str(error))
  if flag_values.list_stages:
    for stage in stages:
      state = 'done' if tf.io.gfile.exists(stage.done_path) else 'todo'
      print(f'{state}\t{stage.name}\t{stage.done_path}')
    return
  try:
    ran = stages_lib.run_stages(stages, stop_after=flag_values.stop_after)
  except (stages_lib.StageError, model_loader.ModelLoadError,
          ValueError) as error:
    _fail(str(error))
  print(f'noisy_student: ran {len(ran)} stage(s): {", ".join(ran) or "-"}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
