"""Name scopes that tell post-training quantization what must stay float.

Full-int8 TFLite export (`asr_kd.export.tflite_export`) quantizes every op
with per-tensor int8 activations, except the ops created under a name scope
called `KEEP_FLOAT_SCOPE` (at any depth). Put there the few ops whose
tensors span too many decades for 256 levels: the log-mel frontend and the
masked attention logits (the -1e9 mask would take the whole int8 range);
the streaming export also builds its greedy search there unless asked for
an int8 decoder (docs/export.md, "Full int8").
"""

import contextlib
import re

import tensorflow as tf

KEEP_FLOAT_SCOPE = 'keep_float'
# TF makes repeated scopes unique: keep_float, keep_float_1, ...
_SCOPE_COMPONENT = re.compile(rf'(^|/){KEEP_FLOAT_SCOPE}(_\d+)?/')


def is_kept_float(tensor_name: str) -> bool:
  """Whether a converted tensor's name says it was made under the scope."""
  return bool(_SCOPE_COMPONENT.search(tensor_name))


def keep_float_scope(enabled: bool = True):
  """`tf.name_scope(KEEP_FLOAT_SCOPE)`, or no scope when not `enabled`."""
  if enabled:
    return tf.name_scope(KEEP_FLOAT_SCOPE)
  return contextlib.nullcontext()
