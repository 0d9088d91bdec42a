#!/usr/bin/env bash
# Bazel's Python interpreter: the .venv named by ASR_KD_PYTHON (set by
# tools/bazel_test.sh), so tests see the pinned TF 2.17 stack.
exec "${ASR_KD_PYTHON:?run through tools/bazel_test.sh or set ASR_KD_PYTHON}" "$@"
