# KetaCare: `make demo` runs the app with a demo clinic; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo serve test lint format browser pango clean bench audit soak wrk

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[postgres]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

demo: $(STAMP) pango
	$(BIN)/ketacare demo --serve

serve: $(STAMP)
	$(BIN)/ketacare serve

# Browser tests drive Debian's chromium; install it when it is missing (no browser downloads).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# PDF reports are drawn by WeasyPrint, which needs Debian's Pango; install it when it is missing.
pango:
	@PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p | grep -q 'libpangoft2-1.0.so.0' || { \
	  echo "installing Debian's Pango for the PDF reports"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    $$SUDO apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; }

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ketacare knowledge docs --check
	$(BIN)/bandit -q -c pyproject.toml -r src

# Known vulnerabilities in the installed dependencies (needs the package index's JSON API).
audit: $(DEV_STAMP)
	$(BIN)/pip-audit --progress-spinner off --skip-editable

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

test: $(DEV_STAMP) browser pango lint
	$(BIN)/python -m pytest

# Every benchmark; the figures go to bench/results.md (PostgreSQL ones use 127.0.0.1:5432).
bench: $(DEV_STAMP) wrk
	$(BIN)/python bench/_all.py

# The load benchmark drives the server with Debian's wrk; install it when it is missing.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk for the load benchmark"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }

# Long runs: 150 server kills per backend and the write races 50 times over (see
# docs/operations.md); with KETACARE_TEST_POSTGRES_URL set, on PostgreSQL too. The API fuzzing
# runs 300 random cases per operation (KETACARE_FUZZ_EXAMPLES to change it).
soak: $(DEV_STAMP)
	KETACARE_SOAK=1 $(BIN)/python -m pytest -q -p no:cacheprovider \
	  tests/store/test_crash_safety.py tests/web/test_concurrency.py tests/web/test_fuzz_api.py

clean:
	rm -rf $(VENV) .pytest_cache
