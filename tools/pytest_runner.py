"""Runs one test file under pytest, so Bazel's py_test and `make test` agree."""

import sys

import pytest

if __name__ == '__main__':
  sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider'] + sys.argv[1:]))
