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
  """Runs step() once; returns (peak minus starting bytes, its result).

  The peak is None where the device's allocator keeps no counters: the CPU
  without oneDNN, which TensorFlow leaves off by default on CPUs without
  AVX-512 (TF_ENABLE_ONEDNN_OPTS=1 turns it on).
  """
  device = measured_device()
  try:
    tf.config.experimental.reset_memory_stats(device)
  except ValueError:  # 'Cannot reset memory stats for device'.
    return None, step()
  before = tf.config.experimental.get_memory_info(device)['current']
  result = step()
  return tf.config.experimental.get_memory_info(device)['peak'] - before, (
      result)


def format_growth(growth_bytes, reference_bytes, width=7) -> str:
  """'12.3 MiB = 1.50 x logits', or 'n/a' without counters."""
  if growth_bytes is None:
    return 'n/a (no allocator counters on this device)'
  return (f'{growth_bytes / 2**20:{width}.1f} MiB = '
          f'{growth_bytes / reference_bytes:5.2f} x logits')
