# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := $(wildcard plugins/*/pyproject.toml)
# Debian packages the test suite drives as real peers, as PACKAGE:COMMAND (a command name or
# an absolute path: the project's .venv has a kamcli of its own; "-": a package with no
# command, looked up with dpkg). The kamailio package has every module the suite loads
# (jsonrpcs, kex, corex, sl, tm, tmx, htable, dispatcher, pv, textops, rr, maxfwd, siputils,
# sanity, dialplan, mtree) but db_sqlite, in kamailio-sqlite-modules. With CI=true a test
# that skips for a missing peer fails (tests/support/ci_skips.py), so a run cannot be green
# without them.
TEST_DEBS := sip-tester:sipp curl:curl redis-server:redis-server redis-tools:redis-cli \
             kamailio:/usr/sbin/kamailio kamailio-sqlite-modules:- kamcli:/usr/bin/kamcli \
             tmux:tmux openssl:openssl stunnel4:stunnel4

.PHONY: run test install install-test test-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/pip install -q -e '.[test,bench]' $(foreach p,$(PLUGINS),-e $(dir $(p)))
	touch $@

install: $(VENV)/.installed

# `make run ARGS="-c etc/dispatcher.toml"` runs one of the example configs instead.
run: install
	$(BIN)/kamrouter $(ARGS)

test-deps:
	@missing=""; for pair in $(TEST_DEBS); do \
	  pkg=$${pair%%:*}; cmd=$${pair##*:}; \
	  if [ "$$cmd" = "-" ]; then dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed"; \
	  else command -v $$cmd >/dev/null 2>&1; fi || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	    || { echo "cannot install$$missing (run make test as root, or install them)"; exit 1; }; \
	fi

# Linters and the type checker first (rules and strict modules: pyproject.toml), then pytest.
test: install test-deps
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python benchmarks/parse.py
	$(BIN)/python benchmarks/cps.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
