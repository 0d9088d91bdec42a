"""asr_kd: knowledge distillation of RNN-T speech recognizers."""

import os

# Model Garden and our models use the Keras 2 API through tf_keras.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
# oneDNN's kernels on every CPU: TensorFlow 2.17 turns them on by default only
# with AVX-512, and without them training ran up to 1.5x slower and the CPU
# allocator kept no memory counters (docs/benchmarks.md). Read when TensorFlow
# loads, so it must be set before TensorFlow is imported.
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
