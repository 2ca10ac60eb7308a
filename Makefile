# The two commands a user needs:  `make demo`  and  `make test`.
# The platform virtualenv lives in .venv (git-ignored); everything downloaded is cached in
# ~/.cache/lambdalake (engines, Flink virtualenv) and ~/.m2, so a second run takes seconds.

VENV ?= .venv
PYTHON ?= python3.11
BIN := $(VENV)/bin
UV_PIN := $(shell grep -o '"uv==[^"]*"' pyproject.toml | tr -d '"')

.PHONY: venv setup up down status demo test test-cluster unit sql screenshots

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(UV_PIN)
	$(BIN)/uv pip install -q --python $(BIN)/python -e '.[platform,test,bench]'
	touch $@

venv: $(BIN)/.installed

setup: venv
	$(BIN)/lambdalake setup

up: setup
	$(BIN)/lambdalake up

down: venv
	$(BIN)/lambdalake down

status: venv
	$(BIN)/lambdalake status

## Set up, start everything, and run the end-to-end demo (engines stay up: `make down`).
demo: setup
	$(BIN)/lambdalake demo

## Write every shipped view's SQL to sql/<layer>/<view>.sql (a unit test fails when one is stale).
sql: venv
	$(BIN)/lambdalake views render --write

## Write docker/'s compose files from docker/cluster.toml (a unit test fails when one is stale).
compose: venv
	$(BIN)/lambdalake compose

## Screenshots of the UIs for the README, into docs/ (the platform must be up; best after `make demo`).
screenshots: venv
	$(BIN)/python -m docs.screenshots

## Unit tests only: seconds, no engine needed.
unit: venv
	$(BIN)/pytest -m "not integration"

# The tests' engines compile with the JIT's first tier only: their data is small and their JVMs
# restart often, and the optimizing compiler (C2) took a quarter to a third of each one's CPU
# (README, Tests). Not `make test`'s Trino, which answers the tests' queries for the whole run: the
# first tier cost twice the CPU per serving query in a warm loop, though a whole run took as long
# either way. `up`, `demo` and bench/ keep the defaults.
test test-cluster: export LAMBDALAKE__JAVA__ENGINE_OPTS ?= -XX:TieredStopAtLevel=1
test-cluster: export LAMBDALAKE__JAVA__TRINO_OPTS ?= -XX:TieredStopAtLevel=1

# Airflow's schedules off: the tests trigger every DAG they check, and a scheduled run only adds
# load at a moment no test chose (the hourly iceberg_maintenance compacts every table the tests
# have open, for minutes, on both cores). batch_recompute still runs on asset events (backfills).
test test-cluster: export LAMBDALAKE__BATCH__SCHEDULE ?=
test test-cluster: export LAMBDALAKE__MAINTENANCE__SCHEDULE ?=
test test-cluster: export LAMBDALAKE__SERVING__HEALTH_SCHEDULE ?=

## Set up, start everything, run every test on the real engines, stop everything; then the same
## for the cluster profile (lambdalake.cluster.toml) and its focused tests. The tests that are not
## `serial` run first, in two lanes at once (tests/conftest.py); then the `serial` ones, alone.
test: setup
	$(BIN)/lambdalake up && $(BIN)/pytest -n 2 --dist loadgroup -m "not serial" && $(BIN)/pytest -m serial; \
	  status=$$?; $(BIN)/lambdalake down; [ $$status -eq 0 ] || exit $$status; $(MAKE) --no-print-directory test-cluster

## The cluster profile only: every engine in its cluster shape on this host, and tests/cluster.
test-cluster: setup
	$(BIN)/lambdalake --profile cluster up && LAMBDALAKE_CONFIG=lambdalake.cluster.toml $(BIN)/pytest tests/cluster; \
	  status=$$?; $(BIN)/lambdalake --profile cluster down; exit $$status
