# make run  - set up, then run the daemon in the foreground on a demo home
# make test - set up, then run the whole test suite (make test-unit: only the fast tests/unit)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
DEMO_HOME ?= $(CURDIR)/.demo-home
# The tool that writes the lock; pinned so `make lock` is itself reproducible.
UV_VERSION := 0.13.9

.PHONY: setup test test-unit test-latest lint lock run bench soak clean fmt

# Exact versions with hashes from the lock; the package itself without its
# dependencies, so nothing outside the lock is resolved.
$(STAMP): pyproject.toml $(LOCK)
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

setup: $(STAMP)

# Workers beyond the 2 cores pay off: an e2e test mostly waits on a real daemon or child
# (make test keeps about one core busy with 4 workers); worksteal evens out the long tests.
WORKERS ?= 6
PYTEST_PAR := -n $(WORKERS) --dist worksteal

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_PAR) -m "not soak" tests

# Pure functions and in-process tests only: no CLI or daemon subprocess, no soak.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m "not soak" tests/unit

soak: $(STAMP)
	$(BIN)/python -m pytest -q -m "soak" tests

lint: $(STAMP)
	$(BIN)/ruff check bassi_schedd tests bench
	$(BIN)/ruff format --check bassi_schedd tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

fmt: $(STAMP)
	$(BIN)/ruff format bassi_schedd tests bench
	$(BIN)/ruff check --fix bassi_schedd tests bench

run: $(STAMP)
	$(BIN)/python -m bassi_schedd.ops.demo $(DEMO_HOME)
	$(BIN)/bassi-schedd --home $(DEMO_HOME) run

# Refresh the lock from pyproject's ranges (runtime + test extras, every platform).
lock:
	test -d .venv-lock || $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	.venv-lock/bin/uv pip compile pyproject.toml --extra test --universal \
		--python-version 3.11 --generate-hashes --upgrade --quiet -o $(LOCK)

# The suite against the newest versions pyproject allows, in a venv of its own,
# so an upstream release that breaks us is seen before the lock is refreshed.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --disable-pip-version-check --upgrade -e '.[test]'
	BASSI_TEST_LATEST=1 .venv-latest/bin/python -m pytest -q $(PYTEST_PAR) -m "not soak" tests

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .venv-lock .venv-latest .demo-home .pytest_cache .mypy_cache .ruff_cache
