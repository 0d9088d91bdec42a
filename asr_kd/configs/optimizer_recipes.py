"""Optimizer and learning-rate recipes of the experiments, and the helpers
that keep a cosine schedule ending at a run's last step."""

from typing import Optional

from official.core import config_definitions as cfg
from official.modeling import optimization

from asr_kd.optimization import optimization_config


def adam_inverse_sqrt(peak_learning_rate: float, warmup_steps: int,
                      clipnorm: Optional[float] = 5.0
                     ) -> optimization_config.AsrOptimizationConfig:
  """Adam with linear warmup then lr ~ step^-0.5 (Vaswani et al. 2017).

  After warmup the rate is peak * sqrt(warmup_steps / step); the paper
  trains with this schedule.
  """
  return optimization_config.AsrOptimizationConfig({
      'optimizer': {
          'type': 'adam',
          'adam': {'beta_1': 0.9, 'beta_2': 0.98, 'epsilon': 1e-9,
                   'global_clipnorm': clipnorm},
      },
      'learning_rate': {
          'type': 'power',
          'power': {
              'initial_learning_rate': peak_learning_rate * warmup_steps**0.5,
              'power': -0.5,
          },
      },
      'warmup': {
          'type': 'linear',
          'linear': {'warmup_steps': warmup_steps,
                     'warmup_learning_rate': 0.0},
      },
  })


def adam_warmup_cosine(peak_learning_rate: float, warmup_steps: int,
                       decay_steps: int, clipnorm: Optional[float] = 5.0
                      ) -> optimization_config.AsrOptimizationConfig:
  """Adam with linear warmup, then cosine decay to 0 at `decay_steps`.

  For runs whose length is fixed in advance (the demo's minutes on a CPU):
  ending at a learning rate of 0 gives a lower final loss for the same
  number of steps than the inverse square root schedule, which stays high.
  The train binary sets `decay_steps` to trainer.train_steps
  (`decay_over_train_steps`), so overriding the run length keeps the shape.
  """
  config = adam_inverse_sqrt(peak_learning_rate, warmup_steps, clipnorm)
  config.learning_rate = optimization.LrConfig({
      'type': 'cosine',
      'cosine': {'initial_learning_rate': peak_learning_rate,
                 'decay_steps': decay_steps, 'alpha': 0.0},
  })
  return config


def muon_warmup_cosine(peak_learning_rate: float, warmup_steps: int,
                       decay_steps: int, clipnorm: Optional[float] = 5.0
                      ) -> optimization_config.AsrOptimizationConfig:
  """`adam_warmup_cosine`'s schedule with Muon on the hidden matrices.

  Muon (asr_kd/optimization/muon.py) updates the Conformer blocks' and the
  joint network's input matrices; Adam, with the same betas, the rest.
  """
  config = adam_warmup_cosine(peak_learning_rate, warmup_steps, decay_steps,
                              clipnorm)
  # The Adam sub-config stays, so `optimizer.type: adam` restores
  # adam_warmup_cosine exactly.
  config.optimizer.override({'type': 'muon',
                             'muon': {'global_clipnorm': clipnorm}})
  return config


def decay_over_train_steps(params: cfg.ExperimentConfig) -> bool:
  """Makes a cosine schedule end at the run's last step.

  Args:
    params: the resolved experiment config; changed in place.

  Returns:
    True if `decay_steps` was changed.
  """
  learning_rate = params.trainer.optimizer_config.learning_rate
  if learning_rate.type != 'cosine':
    return False
  train_steps = params.trainer.train_steps
  if learning_rate.cosine.decay_steps == train_steps:
    return False
  params.override({'trainer': {'optimizer_config': {'learning_rate': {
      'cosine': {'decay_steps': train_steps}}}}}, is_strict=True)
  return True


def set_train_steps(config: cfg.ExperimentConfig, train_steps: int):
  """Makes `config` a run of `train_steps`: validated once, at the end, and
  with its cosine schedule ending there."""
  config.trainer.train_steps = train_steps
  config.trainer.validation_interval = train_steps
  decay_over_train_steps(config)
