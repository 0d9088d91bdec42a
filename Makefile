# Set-up is part of every target: .venv is (re)built from requirements.txt and
# constraints.txt whenever it is missing or older than them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo_run
# Seeds of each row of `make experiments` (e.g. SEEDS=0 for one pass).
SEEDS ?= 0,1,2
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo experiments experiments-report test bazel-test venv clean-demo synthesizers

venv: $(STAMP)

# Debian's flite and festival, the other synthesizers (docs/demo_corpus.md):
# installed where apt-get runs as root; elsewhere their tests skip.
SYNTHESIZER_PACKAGES = flite festival festvox-kdlpc16k festvox-kallpc16k
synthesizers:
	@{ command -v flite && command -v text2wave \
	   && [ -d /usr/share/festival/voices/english/ked_diphone ] \
	   && [ -d /usr/share/festival/voices/english/kal_diphone ]; } >/dev/null \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && apt-get install -y -qq $(SYNTHESIZER_PACKAGES) >/dev/null; } \
	  || echo "make: apt-get install $(SYNTHESIZER_PACKAGES) failed; their tests skip" >&2

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	touch $(STAMP)

test: $(STAMP) synthesizers
	$(PY) -m pytest -q --durations=15 tests

demo: $(STAMP)
	$(PY) -m asr_kd.bin.demo --work_dir=$(DEMO_DIR)

# The soft- vs hard-target comparison (docs/distillation.md), on the demo's
# data (made first, without the demo's models, where it is missing).
# Resumable; writes docs/experiments.json, docs/experiments.md and docs/experiments.png.
experiments: $(STAMP)
	test -f $(DEMO_DIR)/tokenizer/spm.model || \
	  $(PY) -m asr_kd.bin.demo --work_dir=$(DEMO_DIR) --data_only
	$(PY) -m asr_kd.bin.experiments --work_dir=$(DEMO_DIR) --seeds=$(SEEDS)

# Redraws docs/experiments.md and docs/experiments.png from docs/experiments.json.
experiments-report: $(STAMP)
	$(PY) -m asr_kd.bin.experiments_report

bazel-test: $(STAMP)
	./tools/bazel_test.sh

clean-demo:
	rm -rf $(DEMO_DIR)
