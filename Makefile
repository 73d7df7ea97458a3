# Two commands do all the set-up on a fresh machine:
#   make demo   installs reconciler in .venv and runs the demo on local stand-ins
#               (make demo-full adds the Superset chapter on two real Superset servers, installed once)
#   make test   installs it (with the dev tools) and runs lint, types, import contracts and tests
# make check runs the same without the slow group (the tests that need a real Superset or Dagster server, and
# the long end-to-end runs), one pytest worker per core (pytest-xdist); make test runs everything in one process.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install demo demo-full test check lint bench bench-controller constraints clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/reconcile demo

# Screenshots need chromium on PATH; without it, run `reconcile demo --with superset` alone.
demo-full: install
	$(BIN)/reconcile demo --with superset $(if $(shell command -v chromium),--screenshots .reconciler/screenshots)

lint: install
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/ruff format --check reconciler tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

check: lint
	$(BIN)/pytest -m "not slow" -n auto

bench: install
	$(BIN)/python bench/plan_airbyte.py $(BENCH_ARGS)

# The controller at rest with 1,010 managed Airbyte resources for 60 s, then a webhook's time to the applied change.
bench-controller: install
	$(BIN)/python bench/controller_idle.py $(BENCH_ARGS)

# The image's pinned runtime dependencies, from the current working set (tests/ship/test_image.py checks them).
constraints: install
	$(BIN)/python -m tests.ship.pins > constraints.txt

clean:
	rm -rf $(VENV) .cache .reconciler .pytest_cache .mypy_cache .ruff_cache
