# The two commands a newcomer needs (README.md): `make run` and `make test`.
# Each creates .venv with what it needs; nothing is installed system-wide
# except the database/queue services `make test` starts when they are down.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test services install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# The server with demo data on SQLite and in-process jobs (no Redis needed).
run: install
	$(BIN)/bpm-server db upgrade
	$(BIN)/bpm-server models sync
	$(BIN)/bpm-server demo seed
	$(BIN)/bpm-server run --host $(HOST) --port $(PORT)

# The whole suite against real PostgreSQL and Redis (started if they are down).
test: install services
	$(BIN)/python -m pytest

services:
	./scripts/ensure-services

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
