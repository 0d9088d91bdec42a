"""Imports every experiment config and task so the registries are filled."""

# pylint: disable=unused-import
from asr_kd.configs import registered_experiments
from asr_kd.tasks import distillation_task
from asr_kd.tasks import rnnt_task
