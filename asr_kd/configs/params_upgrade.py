"""Reads the params.yaml of runs trained before the model owned its frontend.

Those configs held the log-mel config and the statistics file on each data
config (task.train_data.features and .feature_stats_file, the same on
validation_data), SpecAugment's mask_value and keep_unaugmented_features.
`upgrade` moves train_data's frontend to task.model and drops the rest, so
such model_dirs load as they are: their checkpoints hold the same weights,
and the model computes the same outputs from them.
"""

import copy
from typing import Any, Dict

_DATA_KEYS = ('train_data', 'validation_data')


def upgrade(params: Dict[str, Any]) -> Dict[str, Any]:
  """The params dict in today's layout (a copy; today's pass unchanged).

  Args:
    params: a params.yaml read as a dict.

  Returns:
    The upgraded dict.

  Raises:
    ValueError: a SpecAugment mask_value other than 0 (masked cells are now
      always the normalized mean).
  """
  params = copy.deepcopy(params)
  task = params.get('task') or {}
  model = task.setdefault('model', {}) if task else {}
  for data_key in _DATA_KEYS:
    data = task.get(data_key) or {}
    features = data.pop('features', None)
    stats_file = data.pop('feature_stats_file', None)
    data.pop('keep_unaugmented_features', None)
    mask_value = (data.get('spec_augment') or {}).pop('mask_value', 0.0)
    if mask_value:
      raise ValueError(f'task.{data_key}.spec_augment.mask_value='
                       f'{mask_value} is no longer supported: masked cells '
                       'are 0, the normalized mean.')
    if data_key == 'train_data':
      if features is not None:
        model.setdefault('features', features)
      if stats_file:
        model.setdefault('feature_stats_file', stats_file)
  return params
