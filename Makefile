# Two commands do all the set-up on a fresh machine:
#   make demo   installs reconciler in .venv and runs the demo on local stand-ins
#   make test   installs it (with the dev tools) and runs lint, types, import contracts and tests
# make check runs the same without the slow group (the tests that need a real Superset or Dagster server).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install demo test check lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/reconcile demo

lint: install
	$(BIN)/ruff check reconciler tests bench
	$(BIN)/ruff format --check reconciler tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

check: lint
	$(BIN)/pytest -m "not slow"

bench: install
	$(BIN)/python bench/plan_airbyte.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .reconciler .pytest_cache .mypy_cache .ruff_cache
