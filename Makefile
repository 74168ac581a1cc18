# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it
# needs: a virtualenv with the project (torch pinned to the CPU build), and Debian packages
# through scripts/install-system-deps.sh when run as root.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps lint typecheck unit test demo bench-serving bench-decisions clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

test: install lint typecheck
	$(PY) -m pytest

demo: install system-deps
	$(VENV)/bin/mlcanary demo

bench-serving: install system-deps
	$(PY) -m benchmarks.serving_throughput

bench-decisions: install
	$(PY) -m benchmarks.decision_quality

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports
