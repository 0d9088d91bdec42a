"""asr_kd: knowledge distillation of RNN-T speech recognizers."""

import os

# Model Garden and our models use the Keras 2 API through tf_keras.
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
