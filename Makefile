# Two commands on a fresh machine: `make run` (the main job) and `make test`.
# Each bootstraps a virtualenv in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format js-clients system-deps bench-pricing bench-processors bench-forward \
	bench-instrumentation bench-ingest bench-query catalog clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/costspan serve

test: $(STAMP) lint js-clients system-deps
	$(PY) -m pytest

# The OpenTelemetry JS SDK exporters that tests/collector/test_js_exporters.py runs in Node, at the
# versions package-lock.json pins. npm ci runs again only when the manifest or the lock file changes.
JS_CLIENTS := tests/collector/js
JS_STAMP := $(JS_CLIENTS)/node_modules/.installed

$(JS_STAMP): $(JS_CLIENTS)/package.json $(JS_CLIENTS)/package-lock.json
	cd $(JS_CLIENTS) && npm ci --no-audit --no-fund
	touch $(JS_STAMP)

js-clients: $(JS_STAMP)

# Prometheus, promtool and systemd-analyze from the system's packages (apt), when missing.
system-deps:
	tests/support/system-deps.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench-pricing: $(STAMP)
	$(PY) benchmarks/pricing/run.py

bench-processors: $(STAMP)
	$(PY) benchmarks/processors/run.py

bench-forward: $(STAMP)
	$(PY) benchmarks/forward/run.py

bench-instrumentation: $(STAMP)
	$(PY) benchmarks/instrumentation/run.py

# Installs Arize Phoenix into .venv-phoenix on first use (never into .venv).
bench-ingest: $(STAMP)
	$(PY) benchmarks/ingest/run.py

bench-query: $(STAMP)
	$(PY) benchmarks/query/run.py

# Rebuild the embedded catalog from the installed genai-prices package.
catalog: $(STAMP)
	$(VENV)/bin/costspan pricing import genai-prices --output pricing/data/catalog.json

clean:
	rm -rf $(VENV) .venv-phoenix costspan-data costspan-demo .pytest_cache $(JS_CLIENTS)/node_modules
