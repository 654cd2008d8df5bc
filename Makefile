# fba-backend: `make run` starts the service, `make test` runs the tests.
# Both work on a fresh machine: they create .venv and install what they need first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000

.PHONY: install install-dev run emulator test lint clean

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.installed

# PM2 (for the PM2 smoke test) from the npm registry into ./node_modules.
node_modules/.bin/pm2: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## run: gunicorn on PORT (default 5000); with no SP-API credentials it starts the bundled emulator.
run: install
	$(BIN)/gunicorn -c gunicorn.conf.py 'app:create_app()'

## emulator: the SP-API emulator alone, on port 8001.
emulator: install
	$(BIN)/python -m emulator --port 8001

## test: the whole suite (emulator, service, gunicorn and PM2 smoke tests) and lint.
test: install-dev node_modules/.bin/pm2
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
