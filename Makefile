# kobako: `make demo` shows a container, `make test` runs the tests. Both set everything up first.
SHELL := /bin/bash
# A real interpreter path, never a version-manager shim (a shim costs ~130 ms a start).
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.13 /usr/bin/python3.12 /usr/bin/python3.11))
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The launchers' start-up caches (kobako.startupcache) hold compiled sources: rebuilt when one changes.
STARTUP := $(VENV)/share/kobako/.built
SOURCES := $(shell find src/kobako -name '*.py')

.PHONY: install apt demo test test-fast bench lint format clean

install: apt $(STAMP) $(STARTUP)

apt:
	@missing=$$(grep -v '^#' scripts/apt-packages.txt | xargs dpkg-query -W -f='$${db:Status-Abbrev} $${Package}\n' 2>/dev/null \
	  | awk '$$1=="ii"{print $$2}' | sort | comm -13 - <(grep -v '^#' scripts/apt-packages.txt | sort)); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python scripts/write_launchers.py
	$(BIN)/python -m compileall -q src
	@touch $@

$(STARTUP): $(STAMP) $(SOURCES) scripts/write_launchers.py
	$(BIN)/python scripts/write_launchers.py
	@touch $@

demo: install
	$(BIN)/python scripts/demo.py

test: install
	$(BIN)/python -m pytest -q tests

test-fast: install
	$(BIN)/python -m pytest -q tests/unit

bench: install
	$(BIN)/python benchmarks/run.py

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info
