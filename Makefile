# The two commands of the README: `make run` and `make test`. Both set up .venv on first use.
VENV ?= .venv
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 5000
# The shared test backends of this workplace; skipped when absent (tests then need TEST_*_URL,
# or a Docker daemon for testcontainers).
SERVICES_SH ?= ../shared/services.sh
STAMP := $(VENV)/.installed

.PHONY: run test lint install bench bench-failover

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	touch $@

install: $(STAMP)

run: $(STAMP)
	SCHEDULER_CONFIG_FILE=$${SCHEDULER_CONFIG_FILE:-config/development.toml} \
		$(VENV)/bin/scheduler-service run --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

test: lint
	@if [ -f "$(SERVICES_SH)" ]; then \
		out=$$(bash "$(SERVICES_SH)" up) || exit 1; eval "$$out"; \
	fi; \
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/run.py

# Leader failover per coordination backend (bench/failover.py); flags: FAILOVER_ARGS="--rounds 1".
bench-failover: $(STAMP)
	@if [ -f "$(SERVICES_SH)" ]; then \
		out=$$(bash "$(SERVICES_SH)" up postgres redis zookeeper) || exit 1; eval "$$out"; \
	fi; \
	$(VENV)/bin/python bench/failover.py $(FAILOVER_ARGS)
