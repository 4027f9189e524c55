# Two commands on a fresh machine: `make run` (the main job) and `make test`.
# Each bootstraps a virtualenv in .venv on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench-pricing bench-processors bench-query catalog clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/costspan serve

test: $(STAMP) lint
	$(PY) -m pytest

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

bench-query: $(STAMP)
	$(PY) benchmarks/query/run.py

# Rebuild the embedded catalog from the installed genai-prices package.
catalog: $(STAMP)
	$(VENV)/bin/costspan pricing import genai-prices --output pricing/data/catalog.json

clean:
	rm -rf $(VENV) costspan-data .pytest_cache
