# The two commands of the README, `make run` and `make test`, set up .venv on first use:
# `run` installs the service with its runtime dependencies only; `test` and `lint` add every
# store driver and the dev tools (.[all,dev]). Each install is redone when pyproject.toml changes.
VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 5000
PIP := $(VENV)/bin/pip --disable-pip-version-check
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# The test backends (PostgreSQL, MariaDB, Redis, ZooKeeper, the MongoDB and RethinkDB emulators):
# started by the repository's own script; `make test NO_SERVICES=1` leaves them out (the tests
# that need one then read TEST_*_URL, use testcontainers, or skip).
SERVICES := bash scripts/services.sh
# Bring the backends up and export their TEST_* variables for the command that follows.
WITH_SERVICES = if [ -z "$(NO_SERVICES)" ]; then out=$$($(SERVICES) up) || exit 1; eval "$$out"; fi;
BACKENDS ?=
# Chromium for the browser tests (tests/ui/test_browser.py, marked slow, so only test-all needs
# it): Debian's package, installed by the repository's own script when missing; NO_BROWSER=1
# leaves it out (those tests then skip, or fail under REQUIRE_SERVICES=1).
BROWSER := bash scripts/browser.sh
WITH_BROWSER = if [ -z "$(NO_BROWSER)" ]; then $(BROWSER) || exit 1; fi;

.PHONY: run test test-all lint install services services-status services-down bench bench-failover bench-ui

$(VENV)/bin/python:
	@echo "creating $(VENV) with $(PYTHON), and upgrading its pip"
	$(PYTHON) -m venv $(VENV)
	@$(PIP) install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "installing the service and its runtime dependencies into $(VENV) (about 15 s the first time)..."
	$(PIP) install --progress-bar on -e .
	@touch $@

# Everything `run` needs is in .[all,dev]: one install serves both stamps.
$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "installing the service, every store driver and the dev tools, .[all,dev], into $(VENV) (up to about 100 s the first time)..."
	$(PIP) install --progress-bar on -e '.[all,dev]'
	@touch $(RUN_STAMP) $@

# The full development install (CI and other docs use this name).
install: $(DEV_STAMP)

run: $(RUN_STAMP)
	SCHEDULER_CONFIG_FILE=$${SCHEDULER_CONFIG_FILE:-config/development.toml} \
		$(VENV)/bin/scheduler-service run --host $(HOST) --port $(PORT)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

# The fast run (under 4 minutes on 2 cores): every test but those marked slow (real servers,
# several processes, failover, crashes, fuzzing). `make test-all` runs every test, as CI does.
# PYTEST_ARGS="tests/api -x" runs part of the suite.
test: lint
	@$(WITH_SERVICES) $(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

test-all: lint
	@$(WITH_SERVICES) $(WITH_BROWSER) $(VENV)/bin/pytest $(PYTEST_ARGS)

# Start the test backends (all, or BACKENDS="postgres redis") and print their TEST_* exports.
services:
	@out=$$($(SERVICES) up $(BACKENDS)) || exit 1; \
	echo "$$out"; \
	echo "# the tests read these variables; to set them in your shell:"; \
	echo '#   eval "$$(bash scripts/services.sh $(strip up $(BACKENDS)))"'; \
	echo "# (make test does this itself; make services-status, make services-down)"

services-status:
	@$(SERVICES) status $(BACKENDS)

# Stops only what scripts/services.sh started, never a server that was already running.
services-down:
	@$(SERVICES) down $(BACKENDS)

bench: $(DEV_STAMP)
	$(VENV)/bin/python bench/run.py

# Leader failover per coordination backend (bench/failover.py); flags: FAILOVER_ARGS="--rounds 1".
bench-failover: $(DEV_STAMP)
	@out=$$($(SERVICES) up postgres redis zookeeper) || exit 1; eval "$$out"; \
	$(VENV)/bin/python bench/failover.py $(FAILOVER_ARGS)

# The dashboard's jobs page over 10,000 jobs, page by page (bench/ui.py; flags: UI_BENCH_ARGS).
bench-ui: $(DEV_STAMP)
	$(VENV)/bin/python bench/ui.py $(UI_BENCH_ARGS)
