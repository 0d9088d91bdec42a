#!/usr/bin/env bash
# The accelerator check: loss benchmarks, the demo teacher's whole-step XLA
# train step in float32 and mixed_bfloat16, and the KD step, each printed in
# the format docs/benchmarks.md records (docs/benchmarks.md, "Accelerator
# check"). One command for a lent GPU (under 8 minutes):
#
#   bash benchmarks/device_check.sh
#
# `--tiny` runs every stage on tiny shapes (how CI keeps it from rotting).
# PYTHON picks the interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export TF_USE_LEGACY_KERAS=1 TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [[ "${1:-}" == "--tiny" ]]; then
  RNNT_FLAGS=(--standard=2x20x10x64 --fused=2x20x10x64 --repeats=1)
  KD_FLAGS=(--batch_size=2 --frames=10 --labels=4 --vocab=16 --repeats=1)
  TRAIN_FLAGS=(--steps=4 --warmup_steps=1 --batch_size=2 --audio_seconds=0.5
               --num_tokens=4 --num_buckets=2 --distinct_batches=4
               --every_row_override=task.model.encoder.num_layers=1)
  STAGE_SECONDS=600
elif [[ $# -gt 0 ]]; then
  echo "usage: bash benchmarks/device_check.sh [--tiny]" >&2
  exit 2
else
  # The shapes of issue 30 and docs/benchmarks.md; one bucket keeps the
  # XLA compilations of the train step to one per row.
  RNNT_FLAGS=(--standard=8x200x50x1024,16x250x100x256 --fused=4x400x100x4096)
  KD_FLAGS=(--batch_size=8 --frames=200 --labels=50 --vocab=1024)
  TRAIN_FLAGS=(--steps=20 --warmup_steps=2 --num_buckets=1
               --distinct_batches=4)
  STAGE_SECONDS=180
fi

FAILED=0
stage() {  # stage TITLE COMMAND...: one section, cut off after STAGE_SECONDS.
  local title=$1
  shift
  echo "== $title"
  local start=$SECONDS status=0
  timeout "$STAGE_SECONDS" "$@" 2>/dev/null || status=$?
  if [[ $status -ne 0 ]]; then
    echo "(stage failed or timed out: exit $status)"
    FAILED=1
  fi
  echo "   ($((SECONDS - start)) s)"
}

stage "device" "$PY" -c "
import tensorflow as tf
gpus = tf.config.list_physical_devices('GPU')
names = [tf.config.experimental.get_device_details(g).get('device_name', g.name) for g in gpus]
print('device:', ', '.join(names) if names else 'CPU only', '| TensorFlow', tf.__version__)"
stage "RNN-T loss, forward + backward (standard and fused), ragged lengths" \
  "$PY" -m benchmarks.rnnt_loss "${RNNT_FLAGS[@]}"
stage "RNN-T loss, every length full" \
  "$PY" -m benchmarks.rnnt_loss "${RNNT_FLAGS[@]}" --layout=full --fused=
stage "soft-target KL and KD step (unfused KL, fused RNN-T + KL)" \
  "$PY" -m benchmarks.distillation_loss "${KD_FLAGS[@]}" --modes=unfused,fused_kd
stage "whole-step XLA train step: float32 rows, then the teacher in mixed_bfloat16" \
  "$PY" -m benchmarks.train_throughput "${TRAIN_FLAGS[@]}" --jit_compile=true \
  --teacher_variant=runtime.mixed_precision_dtype=mixed_bfloat16
exit "$FAILED"
