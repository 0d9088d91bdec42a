"""Imports only point down: the repository, and the checker on bad trees."""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import textwrap

import tensorflow as tf

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKER = os.path.join(REPO_ROOT, 'tools', 'import_layers.py')


def _load_checker():
  spec = importlib.util.spec_from_file_location('import_layers', CHECKER)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


import_layers = _load_checker()


def _write(root: str, path: str, text: str):
  full = os.path.join(root, path)
  os.makedirs(os.path.dirname(full), exist_ok=True)
  with open(full, 'w') as out:
    out.write(textwrap.dedent(text))


def _build(*deps: str) -> str:
  listed = ''.join(f'"{dep}", ' for dep in deps)
  return f'asr_kd_library(\n    name = "x",\n    deps = [{listed}],\n)\n'


class ImportLayersTest(tf.test.TestCase):

  def test_repository_imports_point_down_and_are_declared(self):
    result = subprocess.run([sys.executable, CHECKER, f'--root={REPO_ROOT}'],
                            capture_output=True, text=True, check=False)
    self.assertEqual(result.returncode, 0, result.stderr)

  def test_every_package_is_in_a_layer(self):
    for top in import_layers.FIRST_PARTY:
      for dirpath, _, filenames in os.walk(os.path.join(REPO_ROOT, top)):
        if '__pycache__' in dirpath or not any(
            name.endswith('.py') for name in filenames):
          continue
        package = import_layers.package_of_file(
            os.path.relpath(os.path.join(dirpath, 'x.py'), REPO_ROOT))
        import_layers.layer_of(package)  # Raises KeyError if missing.

  def test_readme_lists_the_layers_the_check_uses(self):
    with open(os.path.join(REPO_ROOT, 'README.md')) as readme:
      text = readme.read()
    table = text.split('| layer | packages |\n|---|---|\n', 1)[1]
    listed = []
    for line in table.split('\n'):
      if not line.startswith('|'):
        break
      cells = line.split('|')[2]
      listed.append(tuple(sorted(
          name if '/' in name or name in import_layers.FIRST_PARTY
          else f'asr_kd/{name}'
          for name in re.findall(r'`([\w/]+)`',
                                  re.sub(r'\([^)]*\)', '', cells)))))
    self.assertEqual(listed,
                     [tuple(sorted(layer)) for layer in import_layers.LAYERS])

  def _errors(self, files: dict, builds: dict):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    for path, text in files.items():
      _write(root, path, text)
    for package, text in builds.items():
      _write(root, f'{package}/BUILD', text)
    return import_layers.check_repository(root)

  def test_an_upward_import_is_refused(self):
    errors = self._errors(
        {'asr_kd/configs/schema.py': 'from asr_kd.modeling import m\n',
         'asr_kd/modeling/m.py': 'from asr_kd.configs import schema\n'},
        {'asr_kd/configs': _build('//asr_kd/modeling'),
         'asr_kd/modeling': _build('//asr_kd/configs')})
    self.assertLen(errors, 1)
    self.assertIn('asr_kd/configs/schema.py:1: imports asr_kd/modeling, '
                  'which is not below asr_kd/configs', errors[0])

  def test_an_import_within_a_layer_is_refused(self):
    errors = self._errors(
        {'asr_kd/decoding/d.py': 'import asr_kd.dataloaders.features\n'},
        {'asr_kd/decoding': _build('//asr_kd/dataloaders')})
    self.assertLen(errors, 1)
    self.assertIn('which is not below asr_kd/decoding', errors[0])

  def test_an_undeclared_downward_import_is_refused(self):
    files = {'asr_kd/tasks/t.py': ('from asr_kd.losses import rnnt\n'
                                   'from asr_kd.modeling import m\n')}
    errors = self._errors(files, {'asr_kd/tasks': _build('//asr_kd/losses')})
    self.assertEqual(errors, [
        'asr_kd/tasks/t.py:2: imports asr_kd/modeling, which is not in the '
        'deps of //asr_kd/tasks'])
    self.assertEqual(self._errors(files, {'asr_kd/tasks': _build(
        '//asr_kd/losses', '//asr_kd/modeling')}), [])

  def test_a_binary_importing_another_binary_is_refused(self):
    errors = self._errors(
        {'asr_kd/bin/experiments.py': 'from asr_kd.bin import demo\n'},
        {'asr_kd/bin': _build()})
    self.assertLen(errors, 1)
    self.assertIn('a binary imports the library only', errors[0])

  def test_a_package_without_build_file_is_reported(self):
    self.assertEqual(self._errors({'asr_kd/text/n.py': 'import os\n'}, {}),
                     ['asr_kd/text has no BUILD file'])

  def test_the_bazel_form_checks_one_package_against_its_deps(self):
    root = tempfile.mkdtemp(dir=self.get_temp_dir())
    _write(root, 'asr_kd/modeling/m.py', 'from asr_kd.configs import c\n')
    command = [sys.executable, CHECKER, f'--root={root}',
               '--package=asr_kd/modeling', 'asr_kd/modeling/m.py']
    refused = subprocess.run(command + ['--deps=//asr_kd:package'],
                             capture_output=True, text=True, check=False)
    self.assertEqual(refused.returncode, 1)
    self.assertIn('not in the deps of //asr_kd/modeling', refused.stderr)
    accepted = subprocess.run(command + ['--deps=//asr_kd/configs'],
                              capture_output=True, text=True, check=False)
    self.assertEqual(accepted.returncode, 0, accepted.stderr)


if __name__ == '__main__':
  tf.test.main()
