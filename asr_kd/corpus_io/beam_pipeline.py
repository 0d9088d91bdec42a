"""What every Beam binary of the project shares: flag parsing, pipeline
options and the rejects file's line format."""

import os
import sys
from typing import List

from absl import flags
from apache_beam.options import pipeline_options


def format_reject(path: str, reason: str, detail: str) -> str:
  """One TSV line of the rejects file; tabs/newlines in fields become spaces."""
  fields = (path, reason, detail)
  return '\t'.join(' '.join(str(field).split()) for field in fields)


def make_pipeline_options(beam_args: List[str]
                         ) -> pipeline_options.PipelineOptions:
  """Beam options from the flags absl did not claim.

  Without a --runner this is the DirectRunner in multi-processing mode with
  one worker per CPU; worker logs default to WARNING. Each of these can be
  overridden on the command line.

  Args:
    beam_args: e.g. ['--runner=DataflowRunner', '--project=p'].

  Returns:
    The pipeline options.
  """
  def given(name):
    return any(arg == f'--{name}' or arg.startswith(f'--{name}=')
               for arg in beam_args)

  beam_args = list(beam_args)
  if not given('runner'):
    beam_args.append('--runner=DirectRunner')
    if not given('direct_running_mode'):
      beam_args.append('--direct_running_mode=multi_processing')
    if not given('direct_num_workers'):
      beam_args.append(f'--direct_num_workers={os.cpu_count() or 1}')
  if not given('default_sdk_harness_log_level'):
    # Worker harnesses log every control message at INFO; keep them quiet.
    beam_args.append('--default_sdk_harness_log_level=WARNING')
  return pipeline_options.PipelineOptions(beam_args)


def parse_known_flags(argv: List[str], flag_values: flags.FlagValues,
                      program: str) -> List[str]:
  """absl parses its flags; everything else is left for Beam.

  A bad absl flag exits with `PROGRAM: error: ...` instead of a traceback.
  """
  try:
    return flag_values(argv, known_only=True)
  except flags.Error as error:
    print(f'{program}: error: {error}', file=sys.stderr)
    sys.exit(1)
