"""The project's layers, and the check that imports only point down.

Each first-party package sits in one layer; a module may import packages of
lower layers only (never its own layer's other packages, never a higher
one), and only those its BUILD target lists in `deps`.

  python3 tools/import_layers.py              # the whole repository
  python3 tools/import_layers.py --package=asr_kd/modeling \
      --deps=//asr_kd/configs,//asr_kd/dataloaders FILE.py ...

Bazel runs the second form for every package (tools/layering.bzl), so
`bazel build //...` fails on an upward or undeclared import;
tests/import_layers_test.py runs the first for `make test`. Standard library
only: Bazel runs it with the host's python3.
"""

import argparse
import ast
import os
import re
import sys
from typing import Dict, Iterable, List, Set

# Bottom first. `asr_kd` is the root package (its __init__ and
# registry_imports.py, which fills the experiment and task registries).
LAYERS = (
    ('asr_kd/losses', 'asr_kd/optimization', 'asr_kd/runtime', 'asr_kd/text'),
    ('asr_kd/configs',),
    ('asr_kd/dataloaders', 'asr_kd/decoding'),
    ('asr_kd/corpus_io', 'asr_kd/modeling'),
    ('asr_kd/experiments', 'asr_kd/inference'),
    ('asr_kd/export', 'asr_kd/pseudo_labeling', 'asr_kd/tasks'),
    ('asr_kd', 'asr_kd/noisy_student'),
    ('asr_kd/bin', 'benchmarks', 'tfrecords_tools'),
)
FIRST_PARTY = ('asr_kd', 'benchmarks', 'tfrecords_tools')
# The root package's face; it imports nothing of the project.
ROOT_INIT = 'asr_kd/__init__.py'
# Packages of binaries: their modules import the library, not each other.
BINARY_PACKAGES = ('asr_kd/bin',)


def layer_of(package: str) -> int:
  for index, layer in enumerate(LAYERS):
    if package in layer:
      return index
  raise KeyError(f'{package} is in no layer of tools/import_layers.py')


def package_of_module(module: str) -> str:
  """'asr_kd.modeling.conformer' -> 'asr_kd/modeling'.

  From LAYERS, not the file system: Bazel's sandbox holds only the checked
  package's files.
  """
  parts = module.split('.')
  if parts[0] == 'asr_kd' and len(parts) > 1:
    subpackage = f'asr_kd/{parts[1]}'
    if any(subpackage in layer for layer in LAYERS):
      return subpackage
  return parts[0]


def package_of_file(path: str) -> str:
  """'asr_kd/modeling/conformer.py' -> 'asr_kd/modeling'."""
  parts = os.path.normpath(path).split(os.sep)
  if parts[0] == 'asr_kd' and len(parts) > 2:
    return f'asr_kd/{parts[1]}'
  return parts[0]


def imported_packages(path: str, root: str) -> Dict[str, int]:
  """{first-party package: first line importing it} of one module."""
  with open(os.path.join(root, path)) as source:
    tree = ast.parse(source.read(), path)
  found = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      modules = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      modules = [f'{node.module}.{alias.name}' for alias in node.names]
    else:
      continue
    for module in modules:
      if module.split('.')[0] in FIRST_PARTY:
        found.setdefault(package_of_module(module), node.lineno)
  return found


def check_files(package: str, files: Iterable[str], deps: Set[str],
                root: str) -> List[str]:
  """Errors of `package`'s files: upward, same-layer or undeclared imports.

  Args:
    package: e.g. 'asr_kd/modeling'.
    files: its modules, relative to root.
    deps: the packages its BUILD target depends on.
    root: the repository root.

  Returns:
    One line per offending import.
  """
  errors = []
  own_layer = layer_of(package)
  for path in sorted(files):
    for imported, line in sorted(imported_packages(path, root).items()):
      where = f'{path}:{line}: imports {imported}'
      if imported == package:
        if package in BINARY_PACKAGES:
          errors.append(f'{where}: a binary imports the library only')
        continue
      if layer_of(imported) >= own_layer:
        errors.append(f'{where}, which is not below {package} '
                      '(tools/import_layers.py LAYERS)')
      elif imported not in deps:
        errors.append(f'{where}, which is not in the deps of //{package}')
  return errors


def _build_deps(build_path: str) -> Dict[str, Set[str]]:
  """{target name: packages in its deps} of the asr_kd_library calls."""
  with open(build_path) as build_file:
    text = build_file.read()
  targets = {}
  for call in re.finditer(r'asr_kd_library\((.*?)\n\)', text, re.S):
    body = call.group(1)
    name = re.search(r'name\s*=\s*"([^"]+)"', body).group(1)
    deps_match = re.search(r'deps\s*=\s*\[(.*?)\]', body, re.S)
    labels = re.findall(r'"//([^":]+)(?::[^"]*)?"',
                        deps_match.group(1)) if deps_match else []
    targets[name] = set(labels)
  return targets


def check_repository(root: str) -> List[str]:
  """Every first-party module against its package's BUILD deps and layer."""
  errors = []
  files_by_package: Dict[str, List[str]] = {}
  for top in FIRST_PARTY:
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
      dirnames[:] = [name for name in dirnames if name != '__pycache__']
      for filename in filenames:
        if filename.endswith('.py'):
          path = os.path.relpath(os.path.join(dirpath, filename), root)
          if path != ROOT_INIT:
            files_by_package.setdefault(package_of_file(path), []).append(
                path)
  for package, files in sorted(files_by_package.items()):
    build_path = os.path.join(root, package, 'BUILD')
    if not os.path.exists(build_path):
      errors.append(f'{package} has no BUILD file')
      continue
    deps = set().union(*_build_deps(build_path).values())
    errors += check_files(package, files, deps, root)
  return errors


def main(argv: List[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--package', help='The package of FILES.')
  parser.add_argument('--deps', default='',
                      help='Comma-separated Bazel labels of its deps.')
  parser.add_argument('--root', default='.', help='The repository root.')
  parser.add_argument('files', nargs='*')
  args = parser.parse_args(argv)
  if args.package:
    deps = {re.sub(r'^//|:.*$', '', label)
            for label in args.deps.split(',') if label}
    errors = check_files(args.package, args.files, deps, args.root)
  else:
    errors = check_repository(args.root)
  for error in errors:
    print(error, file=sys.stderr)
  return 1 if errors else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
