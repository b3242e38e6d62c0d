# nexus_ray: `make run` starts the example app, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test unit integration bench lint haproxy constraints clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "nexus_ray needs Python >= 3.11; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Serve's HAProxy ingress needs the haproxy binary; install Debian's package when we can.
haproxy:
	@if command -v haproxy >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's haproxy package..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null) \
	    || echo "haproxy could not be installed: the default Serve proxy will be used."; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null) \
	    || echo "haproxy could not be installed: the default Serve proxy will be used."; \
	else echo "haproxy is not on PATH and apt is not usable: the default Serve proxy will be used."; fi

run: $(STAMP) haproxy
	PATH="$(CURDIR)/$(BIN):$$PATH:/usr/sbin" $(BIN)/nexus serve examples/quickstart.py --host 127.0.0.1 --port 8000

test: $(STAMP) haproxy lint
	PATH="$(CURDIR)/$(BIN):$$PATH:/usr/sbin" $(BIN)/python -m pytest tests/unit tests/integration

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP) haproxy
	PATH="$(CURDIR)/$(BIN):$$PATH:/usr/sbin" $(BIN)/python -m pytest tests/integration

bench: $(STAMP) haproxy
	@command -v wrk >/dev/null 2>&1 || ([ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  apt-get install -y -qq wrk >/dev/null 2>&1) || echo "wrk not installed: using the httpx load generator."
	PATH="$(CURDIR)/$(BIN):$$PATH:/usr/sbin" $(BIN)/python benchmarks/bench_all.py

lint: $(STAMP)
	$(BIN)/ruff check nexus_ray tests benchmarks examples
	$(BIN)/ruff format --check nexus_ray tests benchmarks examples
	$(BIN)/mypy nexus_ray

# After `.venv/bin/pip install -U ...` and a `make test` that passes: pin what is installed
# (no $(STAMP) prerequisite: it would install the old pins again first).
constraints:
	test -x $(BIN)/python
	{ grep '^#' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .nexus .pytest_cache
