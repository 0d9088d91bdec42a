"""The commands in README.md and docs/*.md name real modules and real flags.

Every `python -m MODULE --flag ...` command of the docs (backslash
continuations joined) is checked against `MODULE --helpfull`, so a renamed or
removed flag fails here instead of in a user's shell.
"""

import glob
import os
import re

import tensorflow as tf

from tests import testing_utils

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


class DocsCommandsTest(tf.test.TestCase):

  def test_documented_flags_exist(self):
    commands = [c for c in documented_commands() if c[1] != 'pytest']
    self.assertGreater(len(commands), 30)

    modules = sorted({module for _, module, _ in commands})
    help_texts = testing_utils.help_texts(modules)
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
