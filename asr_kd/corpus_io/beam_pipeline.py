"""What every Beam binary of the project shares: flag parsing, pipeline
options, the rejects file's line format and how a run's errors and summary
end the program."""

import json
import os
import sys
from typing import Any, Dict, List, NoReturn, Sequence

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
    exit_with_error(program, str(error))


def exit_with_error(program: str, message: str) -> NoReturn:
  """Prints `PROGRAM: error: MESSAGE` to stderr and exits with status 1."""
  print(f'{program}: error: {message}', file=sys.stderr)
  sys.exit(1)


def require_flags(flag_values: flags.FlagValues, names: Sequence[str],
                  program: str) -> None:
  """Exits with an error naming the first of `names` that is not set."""
  for name in names:
    if not flag_values[name].value:
      exit_with_error(program, f'--{name} is required')


def finish_with_summary(summary: Dict[str, Any], program: str,
                        strict: bool) -> None:
  """Prints a run's summary (JSON); exits with an error if its counts do
  not reconcile, or if `strict` and some input was rejected."""
  print(json.dumps(summary, indent=2))
  if not summary['reconciled']:
    exit_with_error(program, 'counts do not reconcile (inputs != written + '
                    f'rejected); this is a bug in {program}')
  if strict and summary['rejected']:
    reasons = ', '.join(f'{reason}={count}' for reason, count
                        in summary['rejected_by_reason'].items())
    exit_with_error(program, f'--strict: {summary["rejected"]} of '
                    f'{summary["inputs"]} inputs rejected ({reasons}); see '
                    f'{summary["rejects_file"]}')
