# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when it is
# missing and installs the project; a second run installs nothing new (the stamp file below).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# The device runner (edge/) is tested in a virtualenv of its own holding only its dependencies
# (NumPy, PyNaCl) and pytest: no scikit-learn, no Starlette, nothing of modelpilot.
EDGE_VENV := edge/.venv
EDGE_PY := $(EDGE_VENV)/bin/python
EDGE_STAMP := $(EDGE_VENV)/.installed-stamp

.PHONY: demo test test-edge check format install clean bench cluster-demo

# modelpilot depends on modelpilot-edge, which lives in this repository: install it first.
$(STAMP): pyproject.toml edge/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./edge -e '.[dev]'
	touch $(STAMP)

$(EDGE_STAMP): edge/pyproject.toml
	test -x $(EDGE_PY) || $(PYTHON) -m venv $(EDGE_VENV)
	$(EDGE_PY) -m pip install --quiet --upgrade pip
	$(EDGE_PY) -m pip install --quiet -e './edge[test]'
	touch $(EDGE_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/modelpilot demo --dir demo-project

# PostgreSQL, 3 replicas, HAProxy and Prometheus on 127.0.0.1 (docs/scale-out.md); needs the
# Debian packages postgresql, haproxy and prometheus.
cluster-demo: $(STAMP)
	$(VENV)/bin/modelpilot cluster demo

check: $(STAMP)
	$(VENV)/bin/ruff format --check src tests benchmarks edge/src edge/tests
	$(VENV)/bin/ruff check src tests benchmarks edge/src edge/tests
	$(VENV)/bin/mypy src
	cd edge && ../$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports --no-cache

# Python may write bytecode (__pycache__/, ignored by git) even where the shell says not to
# (PYTHONDONTWRITEBYTECODE): otherwise each xdist worker and each `modelpilot serve` of a test
# compiles every module, and pytest rewrites every test module's asserts, on every run
# (~9 s of CPU for each worker's collection alone).
WRITE_BYTECODE := env -u PYTHONDONTWRITEBYTECODE

test-edge: $(EDGE_STAMP)
	cd edge && $(WRITE_BYTECODE) .venv/bin/python -m pytest -q -p no:cacheprovider

# --dist worksteal: each worker starts on one contiguous half of the tests (a module's, a
# folder's shared server and trained models are made once, not on both workers) and takes half
# of the other's queue when its own runs out. The default (load) hands out chunks in order and
# left one worker idle for the last ~5 minutes of a run (the per-test durations of one run
# replayed: 930 s vs 1,230 s of work; worksteal 1,048 vs 1,101).
test: check test-edge
	$(WRITE_BYTECODE) $(PY) -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks edge/src edge/tests
	$(VENV)/bin/ruff check --fix src tests benchmarks edge/src edge/tests

bench: $(STAMP)
	$(PY) benchmarks/log_throughput.py

clean:
	rm -rf $(VENV) $(EDGE_VENV) demo-project .pytest_cache .mypy_cache .ruff_cache
