# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when it is
# missing and installs the project; a second run installs nothing new (the stamp file below).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test check format install clean bench cluster-demo

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelpilot demo --dir demo-project

# PostgreSQL, 3 replicas, HAProxy and Prometheus on 127.0.0.1 (docs/scale-out.md); needs the
# Debian packages postgresql, haproxy and prometheus.
cluster-demo: $(STAMP)
	$(VENV)/bin/modelpilot cluster demo

check: $(STAMP)
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports --no-cache

test: check
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/log_throughput.py

clean:
	rm -rf $(VENV) demo-project .pytest_cache .mypy_cache .ruff_cache
