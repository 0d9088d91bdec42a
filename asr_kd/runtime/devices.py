"""The host's accelerators, and CPU replicas for hosts without one."""

import os

import tensorflow as tf


def accelerator_present() -> bool:
  """True when TensorFlow sees a GPU or a TPU."""
  return bool(tf.config.list_physical_devices('GPU') or
              tf.config.list_physical_devices('TPU'))


def cpu_replica_strategy(replicas: int) -> tf.distribute.Strategy:
  """MirroredStrategy over `replicas` logical devices of the host CPU.

  Each replica runs its ops on cores / replicas threads. On 2 cores, two
  single-threaded replicas of the demo teacher train faster than one device
  that splits every (small) op over both cores (docs/benchmarks.md). Must run
  before TensorFlow initializes its devices.

  Args:
    replicas: Number of replicas, >= 2.

  Returns:
    The strategy.

  Raises:
    ValueError: with an accelerator present or replicas < 2.
  """
  if replicas < 2:
    raise ValueError(f'--cpu_replicas must be >= 2 to split the CPU, got '
                     f'{replicas}.')
  if accelerator_present():
    raise ValueError('--cpu_replicas is for hosts without accelerators; use '
                     'runtime.distribution_strategy instead.')
  cpu = tf.config.list_physical_devices('CPU')[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
  tf.config.threading.set_intra_op_parallelism_threads(
      max(1, (os.cpu_count() or 1) // replicas))
  return tf.distribute.MirroredStrategy(
      [f'/cpu:{index}' for index in range(replicas)])
