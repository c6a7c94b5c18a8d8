# Watchpost — two commands: `make run` (console) and `make test` (test suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test bench lint format install clean-db

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py runconsole $(if $(DEMO),--demo,)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks at scale (not part of `make test`): builds/reuses the watchpost_bench database and
# writes docs/benchmarks.md. SCALE=1 is the full dataset; `make bench SCALE=0.01` for a quick run.
SCALE ?= 1
BENCH_DB ?= watchpost_bench
SOAK_SECONDS ?= 1800
bench: $(STAMP)
	BENCH_DB_NAME=$(BENCH_DB) SCALE=$(SCALE) $(PY) -m tests.benchmarks.run $(BENCH_ARGS)
	@# Soak (issue 9): 30 min of 1 s GPU sampling, 200 log records/s and live-widget polling on a
	@# throwaway server; writes docs/benchmarks-soak.md. SOAK_SECONDS=0 skips it.
	@if [ "$(SOAK_SECONDS)" != "0" ]; then SOAK_SECONDS=$(SOAK_SECONDS) SOAK_OUTPUT=docs/benchmarks-soak.md $(PY) -m tests.benchmarks.soak; fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
