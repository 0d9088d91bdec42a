"""Test-wide settings: Keras 2 API, quiet TF logs, CPU-sized thread pools."""

import os

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')  # as asr_kd/__init__.py
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
