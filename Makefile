# fba-backend: `make run` starts the service, `make test` runs the tests.
# Both work on a fresh machine: they create .venv and install what they need first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000

.PHONY: install install-dev run emulator test lint clean system-redis system-wrk bench soak

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

# $(call ensure-apt,COMMAND,PACKAGE): install Debian's PACKAGE when COMMAND is missing (as root; else say how).
ensure-apt = @command -v $(1) >/dev/null 2>&1 || { \
  if [ "$$(id -u)" -ne 0 ]; then echo "$(1) is not installed: run 'sudo apt-get install $(2)' (or this make target as root)" >&2; exit 1; fi; \
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(2); }

## system-redis: make sure redis-server is installed (tests and benchmarks start their own).
system-redis:
	$(call ensure-apt,redis-server,redis-server)

## system-wrk: make sure wrk (the HTTP load generator of `make bench`) is installed.
system-wrk:
	$(call ensure-apt,wrk,wrk)

## test: the whole suite (emulator, service, gunicorn and PM2 smoke tests) and lint.
test: install-dev node_modules/.bin/pm2 system-redis
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install-dev
	$(BIN)/ruff check .

## bench: the benchmarks (a few minutes): prints a table and writes bench/RESULTS.md.
bench: install system-redis system-wrk
	$(BIN)/python -m bench

## soak: the fault-injection suite, then 50 clients for 60 s against gunicorn (bench/soak.py); writes tests/reliability/RESULTS.md.
soak: install-dev
	$(BIN)/python -m bench.soak

## bench-jobs: issue 4 end to end (about five minutes): a 10,000-row UPC CSV uploaded with curl, gunicorn restarted halfway,
## the CSV downloaded and checked, SP-API calls counted in the emulator's log (bench/jobs.py); writes bench/JOBS.md.
.PHONY: bench-jobs
bench-jobs: install
	$(call ensure-apt,curl,curl)
	$(BIN)/python -m bench.jobs

clean:
	rm -rf $(VENV) node_modules .pytest_cache .ruff_cache
