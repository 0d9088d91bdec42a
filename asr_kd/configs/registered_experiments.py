"""Imports every registered experiment, so exp_factory knows them all.

Config schemas only: reading a params.yaml or naming an experiment needs no
task (asr_kd/registry_imports.py adds the tasks, for training).
"""

# pylint: disable=unused-import
from asr_kd.configs import distillation_experiments
from asr_kd.configs import rnnt_experiments
