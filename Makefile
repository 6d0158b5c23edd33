# Set-up from nothing: `make test` and `make demo` create .venv, install, and run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test bench demo clean

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch from this machine's disk first, so nothing pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test,all]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python -m pytest -q benchmarks --benchmark-only

# Fit a small model on the shipped example set, backmap its held-out frames, evaluate:
# runs/demo/report.md with its plots beside it.
demo: $(STAMP)
	$(BIN)/gdbm demo -o runs/demo --force

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks
