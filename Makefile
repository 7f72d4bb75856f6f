# Saumaton: `make demo` serves a demo shop on SQLite; `make test` runs every check.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
export PORT
# The suite runs in two pytest-xdist processes, the tests of one database all in one of
# them (tests/conftest.py); every app in the tests keeps at most 4 (+4) connections, so
# both halves fit PostgreSQL's default max_connections (100). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2

.PHONY: install demo serve test lint typecheck pytest bench clean audit

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/saumaton db upgrade
	$(VENV)/bin/saumaton demo-data --skip-if-loaded
	$(VENV)/bin/saumaton serve

serve: install
	$(VENV)/bin/saumaton serve

lint: install
	$(VENV)/bin/ruff check saumaton tests $(wildcard bench)
	$(VENV)/bin/mypy saumaton

test: lint
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup)

# pip-audit over the pinned dependencies: fails on a known vulnerability; says so
# loudly when the vulnerability service cannot be reached (docs/security.md).
audit: install
	$(PY) .ci/audit.py

bench: install
	bash bench/run.sh

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
