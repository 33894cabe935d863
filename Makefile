# The two commands a newcomer needs (README.md): `make run` and `make test`.
# Each creates .venv with what it needs; nothing is installed system-wide
# except the database/queue services `make test` starts when they are down.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test check services install clean translations browser frontend

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

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

# The whole suite against real PostgreSQL and Redis (started if they are down).
test: check install services browser
	$(BIN)/python -m pytest

services:
	./scripts/ensure-services

# Debian's Chromium for the browser tests (tests/browser).
browser:
	./scripts/ensure-browser

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
