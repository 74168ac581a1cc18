# Two entry points for a fresh machine: `make demo` and `make test`. Each installs what it
# needs: a virtualenv with the project (torch pinned to the CPU build), and, when run as root,
# Debian packages through scripts/install-system-deps.sh; `make test` also starts dockerd for
# the container image tests.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps docker-daemon lint typecheck test demo bench-serving bench-router bench-shadow bench-decisions bench-gpu bench-capacity bench-models gpu-check example-diabetes example-tabular example-torch clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

docker-daemon: system-deps
	bash scripts/docker/start-dockerd.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

test: install lint typecheck docker-daemon
	$(PY) -m pytest

demo: install system-deps
	$(VENV)/bin/mlcanary demo

bench-serving: install system-deps
	$(PY) -m benchmarks.serving_throughput

bench-router: install system-deps
	$(PY) -m benchmarks.router_overhead

bench-shadow: install system-deps
	$(PY) -m benchmarks.shadow_latency

bench-decisions: install
	$(PY) -m benchmarks.decision_quality

bench-gpu: install
	$(PY) -m benchmarks.gpu_batch

bench-capacity: install
	$(PY) -m benchmarks.capacity_digits

bench-models: install
	$(PY) -m benchmarks.model_formats

# Everything that needs an NVIDIA GPU, in one go, on a machine that has one (docs/gpu-check.md).
gpu-check:
	bash scripts/gpu-check.sh

# Users' models, one command each (examples/README.md).
example-diabetes: install system-deps
	$(PY) examples/diabetes/run.py

example-tabular: install
	$(PY) examples/tabular/run.py

example-torch: install
	$(PY) examples/torch_net/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports
