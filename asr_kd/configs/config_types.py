"""Checks a resolved config's values against its dataclass field types.

Model Garden's overrides (`--params_override`, YAML files) assign whatever
YAML parsed: `trainer.train_steps=abc` stores the string 'abc' in an int
field, and the run fails much later inside TensorFlow ("Cast string to float
is not supported") with a long traceback. Checking the types once, after the
overrides, turns that into one line naming the key.
"""

import collections.abc
import dataclasses
import typing
from typing import Any, Iterator, Tuple

from official.modeling.hyperparams import base_config

# Annotations checked; any other (Any, callables, ...) is not.
_SCALARS = (bool, int, float, str)
_SEQUENCES = (list, tuple, collections.abc.Sequence)


def _matches(value: Any, annotation: Any) -> bool:
  """Whether `value` may stand in a field annotated `annotation`."""
  if annotation is Any:
    return True
  origin = typing.get_origin(annotation)
  if origin is typing.Union:
    return any(_matches(value, member)
               for member in typing.get_args(annotation))
  if annotation is type(None):
    return value is None
  if annotation in _SCALARS:
    if isinstance(value, bool):  # bool is an int; an int is no bool.
      return annotation is bool
    if annotation is float:
      return isinstance(value, (int, float))
    return isinstance(value, annotation)
  if origin in _SEQUENCES:
    if not isinstance(value, (list, tuple)):
      return False
    element_types = [arg for arg in typing.get_args(annotation)
                     if arg is not Ellipsis]
    if len(element_types) != 1:
      return True  # Fixed-shape tuples: not used in configs, not checked.
    return all(_matches(element, element_types[0]) for element in value)
  if isinstance(annotation, type) and issubclass(annotation,
                                                 base_config.Config):
    return isinstance(value, base_config.Config)
  return True


def _type_name(annotation: Any) -> str:
  return getattr(annotation, '__name__', None) or str(annotation).replace(
      'typing.', '')


def type_errors(config: base_config.Config,
                path: str = '') -> Iterator[Tuple[str, Any, Any]]:
  """Yields (dotted key, value, annotation) for each ill-typed leaf.

  Args:
    config: a config dataclass (e.g. an ExperimentConfig).
    path: prefix of the yielded keys.
  """
  hints = typing.get_type_hints(type(config))
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    key = f'{path}{field.name}'
    if isinstance(value, base_config.Config):
      yield from type_errors(value, key + '.')
    elif field.name in hints and not _matches(value, hints[field.name]):
      yield key, value, hints[field.name]


def check_value_types(config: base_config.Config) -> None:
  """Raises ValueError naming the first value of the wrong type.

  Args:
    config: a config dataclass after its overrides.

  Raises:
    ValueError: e.g. "trainer.train_steps must be int, not 'abc' (str)".
  """
  for key, value, annotation in type_errors(config):
    raise ValueError(f'{key} must be {_type_name(annotation)}, not '
                     f'{value!r} ({type(value).__name__})')
