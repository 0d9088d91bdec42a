"""The commands in README.md and docs/*.md name real modules and real flags.

Every `python -m MODULE --flag ...` command of the docs (backslash
continuations joined) is checked against `MODULE --helpfull`, so a renamed or
removed flag fails here instead of in a user's shell.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

import tensorflow as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Binaries that hand the flags absl does not know to Apache Beam.
BEAM_PASS_THROUGH = ('tfrecords_tools.convert', 'asr_kd.bin.pseudo_label')
_COMMAND = re.compile(r'python -m ([A-Za-z_][\w.]*)(.*)')
_FLAG = re.compile(r"(?:^|\s)'?--([a-z_][a-z0-9_]*)")


def documented_commands():
  """(doc file, module, [flag names]) of every documented command."""
  paths = [os.path.join(REPO_ROOT, 'README.md')] + sorted(
      glob.glob(os.path.join(REPO_ROOT, 'docs', '*.md')))
  commands = []
  for path in paths:
    with open(path) as doc:
      text = re.sub(r'\\\n\s*', ' ', doc.read())
    for line in text.splitlines():
      for match in _COMMAND.finditer(line):
        module, rest = match.groups()
        # The command ends at the next shell separator or inline-code end.
        rest = re.split(r'`|;|&&|\|', rest)[0]
        commands.append((os.path.relpath(path, REPO_ROOT), module,
                         _FLAG.findall(rest)))
  return commands


# Imports what every binary imports, then forks one child per module that
# runs it as `MODULE --helpfull` into its own file: the children share the
# parent's seconds of importing TensorFlow instead of repeating them.
_HELP_RUNNER = r"""
import os, runpy, sys
import tensorflow, apache_beam, official.core.exp_factory
out_dir, modules = sys.argv[1], sys.argv[2:]
for index, module in enumerate(modules):
  pid = os.fork()
  if pid == 0:
    with open(os.path.join(out_dir, str(index)), 'w') as out:
      os.dup2(out.fileno(), 1)
      os.dup2(out.fileno(), 2)
      sys.argv = [module, '--helpfull']
      try:
        runpy.run_module(module, run_name='__main__', alter_sys=True)
      except BaseException:
        pass
      sys.stdout.flush()
      sys.stderr.flush()
    os._exit(0)
  os.waitpid(pid, 0)
"""


def _help_texts(modules):
  """{module: output of `python -m module --helpfull`}."""
  with tempfile.TemporaryDirectory() as out_dir:
    subprocess.run([sys.executable, '-c', _HELP_RUNNER, out_dir, *modules],
                   cwd=REPO_ROOT, check=True, timeout=600)
    texts = {}
    for index, module in enumerate(modules):
      with open(os.path.join(out_dir, str(index))) as out:
        texts[module] = out.read()
    return texts


class DocsCommandsTest(tf.test.TestCase):

  def test_documented_flags_exist(self):
    commands = [c for c in documented_commands() if c[1] != 'pytest']
    self.assertGreater(len(commands), 30)

    modules = sorted({module for _, module, _ in commands})
    help_texts = _help_texts(modules)
    for doc, module, flag_names in commands:
      self.assertIn('--helpfull', help_texts[module],
                    f'{doc}: {module} does not run as an absl binary')
      if module in BEAM_PASS_THROUGH:
        continue
      for name in flag_names:
        known = re.search(rf'--(\[no\])?{name}\b', help_texts[module])
        negated = name.startswith('no') and re.search(
            rf'--\[no\]{name[2:]}\b', help_texts[module])
        self.assertTrue(known or negated,
                        f'{doc}: {module} has no flag --{name}')


if __name__ == '__main__':
  tf.test.main()
