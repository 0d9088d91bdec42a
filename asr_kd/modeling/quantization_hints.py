"""Name scopes that tell post-training quantization what must stay float.

Full-int8 TFLite export (`asr_kd.export.tflite_export`) quantizes every op
with per-tensor int8 activations, except the ops created under a name scope
called `KEEP_FLOAT_SCOPE` (at any depth). Put there the few ops whose
tensors span too many decades for 256 levels: the log-mel frontend and the
masked attention logits (the -1e9 mask would take the whole int8 range).
"""

import re

KEEP_FLOAT_SCOPE = 'keep_float'
# TF makes repeated scopes unique: keep_float, keep_float_1, ...
_SCOPE_COMPONENT = re.compile(rf'(^|/){KEEP_FLOAT_SCOPE}(_\d+)?/')


def is_kept_float(tensor_name: str) -> bool:
  """Whether a converted tensor's name says it was made under the scope."""
  return bool(_SCOPE_COMPONENT.search(tensor_name))
