"""Peak memory one step adds, from TensorFlow's own allocator counters.

TensorFlow's allocators (which XLA's executables also allocate their
temporaries and outputs from) keep freed blocks, so process RSS says
nothing about one step; their counters do. The counted device is the one
the step's ops run on by default: the first GPU when there is one, else the
CPU.
"""

import tensorflow as tf


def measured_device() -> str:
  """'GPU:0' when TensorFlow sees a GPU, else 'CPU:0'."""
  return 'GPU:0' if tf.config.list_physical_devices('GPU') else 'CPU:0'


def peak_growth_bytes(step):
  """Runs step() once; returns (peak minus starting bytes, its result)."""
  device = measured_device()
  tf.config.experimental.reset_memory_stats(device)
  before = tf.config.experimental.get_memory_info(device)['current']
  result = step()
  return tf.config.experimental.get_memory_info(device)['peak'] - before, (
      result)
