# make run  - set up, then run the daemon in the foreground on a demo home
# make test - set up, then run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_HOME ?= $(CURDIR)/.demo-home

.PHONY: setup test lint run bench soak clean fmt

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not soak" tests

soak: $(STAMP)
	$(BIN)/python -m pytest -q -m "soak" tests

lint: $(STAMP)
	$(BIN)/ruff check bassi_schedd tests bench
	$(BIN)/ruff format --check bassi_schedd tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format bassi_schedd tests bench
	$(BIN)/ruff check --fix bassi_schedd tests bench

run: $(STAMP)
	$(BIN)/python -m bassi_schedd.demo $(DEMO_HOME)
	$(BIN)/bassi-schedd --home $(DEMO_HOME) run

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .demo-home .pytest_cache .mypy_cache .ruff_cache
