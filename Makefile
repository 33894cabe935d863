# The two commands a newcomer needs (README.md): `make run` and `make test`.
# Each creates .venv with what it needs; nothing is installed system-wide
# except the database/queue services `make test` starts when they are down.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check services install clean translations browser frontend lock mutation

# The versions CI tested: requirements-dev.txt locks every package (with hashes) of the
# app, its tests and the developers' tools; requirements.txt the app alone (Dockerfile).
# The project itself goes in editable, without dependencies, built with the locked
# setuptools; `pip check` then catches a pyproject.toml dependency the lock lacks.
$(BIN)/.installed: requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check >/dev/null || { $(BIN)/pip check; echo "requirements-dev.txt does not match pyproject.toml: run make lock" >&2; exit 1; }
	touch $@

# Upgrade the locked versions on purpose, then review the diff, run `make test` and commit
# both files. One package only: make lock UPGRADE='--upgrade-package chinesecalendar'
UPGRADE    ?= --upgrade
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(BIN)/.installed
	$(BIN)/pip-compile $(LOCK_FLAGS) $(UPGRADE) -o requirements.txt pyproject.toml
	$(BIN)/pip-compile $(LOCK_FLAGS) $(UPGRADE) --extra test --extra dev -c requirements.txt \
		-o requirements-dev.txt pyproject.toml

# The web UI's message catalogues, compiled from their .po files (no .mo is committed).
translations: $(BIN)/.installed
	$(BIN)/pybabel compile --use-fuzzy -D messages -d bpm_server/translations
	@if [ -d bpm_server/web/translations ]; then $(BIN)/pybabel compile --use-fuzzy -D pages -d bpm_server/web/translations; fi

# bpmn-js for the modeler and instance pages, from npm (node_modules is never committed).
FRONTEND := bpm_server/web/frontend
$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js (apt-get install nodejs npm)" >&2; exit 1; }
	cd $(FRONTEND) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

frontend: $(FRONTEND)/node_modules/.package-lock.json

install: $(BIN)/.installed translations frontend

# The server with demo data on SQLite and in-process jobs (no Redis needed).
run: install
	$(BIN)/bpm-server db upgrade
	$(BIN)/bpm-server models sync
	$(BIN)/bpm-server demo seed
	$(BIN)/bpm-server run --host $(HOST) --port $(PORT)

# Lint, import order and types (configured in pyproject.toml); `make test` runs it first.
check: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

# The whole suite against real PostgreSQL and Redis (started if they are down), in
# TEST_WORKERS pytest-xdist processes; each has its own database and Redis db
# (tests/conftest.py) and every server a test starts listens on a free port.
# TEST_WORKERS=0 runs serially; timings in README, Development.
TEST_WORKERS ?= 3
test: check install services browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Mutation testing (mutmut), not part of `make test`: each module of scripts/mutation.py
# against its own test files, in var/mutation/<name>/; scores and survivors in
# docs/mutation.md. One module: make mutation MODULE=sla/breaches.py
# SURVIVORS=1 lists the last run's survivors with their diffs (runs nothing); REST=1 resumes
# an interrupted run.
MODULE ?=
SURVIVORS ?=
REST ?=
mutation: install services
	nice -n 19 $(BIN)/python scripts/mutation.py $(MODULE) $(if $(SURVIVORS),--score --show) $(if $(REST),--rest)

services:
	./scripts/ensure-services

# Debian's Chromium for the browser tests (tests/browser).
browser:
	./scripts/ensure-browser

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
