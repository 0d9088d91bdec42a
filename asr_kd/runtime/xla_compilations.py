"""Counts XLA compilations from XLA's own module dumps.

XLA writes one `module_NNNN.<name>.before_optimizations.txt` per program it
compiles when `--xla_dump_to` is set, so the number of such files is the
number of compilations. XLA reads XLA_FLAGS once, at its first compilation
in the process: `start_dump` must run before anything is XLA-compiled.

  dumps = xla_compilations.start_dump(directory)
  ... run ...
  dumps.count('forward_backward')   # programs whose name holds the string
"""

import glob
import os

_DUMP_FLAG = '--xla_dump_to'
_MODULE_SUFFIX = '.before_optimizations.txt'


class XlaDump:
  """The modules XLA has compiled in this process, read from its dump."""

  def __init__(self, directory: str):
    self.directory = directory

  def module_names(self) -> list:
    """Names of the compiled modules, in compilation order."""
    paths = sorted(glob.glob(os.path.join(self.directory,
                                          'module_*' + _MODULE_SUFFIX)))
    return [os.path.basename(path)[:-len(_MODULE_SUFFIX)] for path in paths]

  def count(self, name_contains: str = '') -> int:
    """Compilations so far whose module name holds `name_contains`."""
    return sum(name_contains in name for name in self.module_names())


def start_dump(directory: str) -> XlaDump:
  """Makes XLA dump every program it compiles from now on into `directory`.

  Args:
    directory: an empty or new directory.

  Returns:
    The dump's reader.

  Raises:
    ValueError: XLA_FLAGS already names another dump directory.
  """
  flags = os.environ.get('XLA_FLAGS', '')
  if _DUMP_FLAG in flags:
    if f'{_DUMP_FLAG}={directory}' not in flags.split():
      raise ValueError(f'XLA_FLAGS already dumps elsewhere: {flags!r}')
  else:
    os.makedirs(directory, exist_ok=True)
    os.environ['XLA_FLAGS'] = (
        f'{flags} {_DUMP_FLAG}={directory} --xla_dump_hlo_as_text').strip()
  return XlaDump(directory)
