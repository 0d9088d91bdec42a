#!/usr/bin/env bash
# `make bazel-test`: installs Debian's Bazel packages when missing, then runs
# every suite offline through Bazel with the project's .venv as interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v bazel >/dev/null || [ ! -d /usr/share/bazel/rules/java ] \
    || [ ! -d /usr/share/bazel/tools/platforms ]; then
  echo "Installing Debian packages bazel-bootstrap bazel-rules-java bazel-platforms" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    bazel-bootstrap bazel-rules-java bazel-platforms
fi
exec bazel test --test_env=ASR_KD_PYTHON="$PWD/.venv/bin/python" \
  --action_env=ASR_KD_PYTHON="$PWD/.venv/bin/python" "$@" //tests/...
