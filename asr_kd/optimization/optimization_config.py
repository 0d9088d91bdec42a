"""Model Garden's optimization config, plus the `muon` optimizer type.

`official.modeling.optimization` picks the optimizer class by
`optimizer.type` and builds it from the matching sub-config; a new type
needs both a registered class and a field here. Experiments use
`AsrOptimizationConfig` so that YAMLs can set `optimizer.type: muon`.
"""

import dataclasses

from official.modeling.optimization import optimizer_factory
from official.modeling.optimization.configs import optimization_config
from official.modeling.optimization.configs import optimizer_config

from asr_kd.optimization import muon


@dataclasses.dataclass
class MuonConfig(optimizer_config.BaseOptimizerConfig):
  """Arguments of `muon.MuonWithAdam` (the learning rate comes apart).

  Attributes:
    name: optimizer name (prefix of its slot variables).
    momentum: Muon's momentum coefficient.
    nesterov: Nesterov momentum for the Muon group.
    ns_steps: Newton-Schulz iterations per update.
    muon_variables_regex: variables (by name, rank >= 2) updated by Muon.
    beta_1: Adam group, first-moment decay.
    beta_2: Adam group, second-moment decay.
    epsilon: Adam group, denominator offset.
  """
  name: str = 'MuonWithAdam'
  momentum: float = 0.95
  nesterov: bool = True
  ns_steps: int = 5
  muon_variables_regex: str = muon.DEFAULT_MUON_VARIABLES_REGEX
  beta_1: float = 0.9
  beta_2: float = 0.98
  epsilon: float = 1e-9


@dataclasses.dataclass
class AsrOptimizerConfig(optimization_config.OptimizerConfig):
  muon: MuonConfig = dataclasses.field(default_factory=MuonConfig)


@dataclasses.dataclass
class AsrOptimizationConfig(optimization_config.OptimizationConfig):
  optimizer: AsrOptimizerConfig = dataclasses.field(
      default_factory=AsrOptimizerConfig)


if 'muon' not in optimizer_factory.LEGACY_OPTIMIZERS_CLS:
  optimizer_factory.register_optimizer_cls('muon', muon.MuonWithAdam)
