# Two commands on a fresh machine: `make run` (the main job) and `make test`.
# Each bootstraps the virtualenv .venv on first use.

PYTHON ?= python3

# .venv: costspan as it is deployed, built with its span hot path compiled by mypyc (setup.py), installed as
# a package rather than editable, so it is installed again whenever a source file changes. The collector,
# the test suite and the benchmarks run it. COSTSPAN_COMPILE=0 builds it uncompiled (no C compiler needed).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
COSTSPAN_COMPILE ?= 1
PACKAGE_SOURCES := pyproject.toml setup.py $(wildcard instrumentation/*.py collector/*.py collector/*/*.py \
	processors/*.py exporters/*.py semconv/*.py pricing/*.py pricing/*/*.py pricing/data/*.json)
# the console's files that are package data (templates, static files)
PACKAGE_SOURCES += $(wildcard collector/console/templates/* collector/console/static/* collector/console/static/vendor/*/*)

# .venv-python: the same package, editable and plain Python, as a contributor works on it.
PVENV ?= .venv-python
PPY := $(PVENV)/bin/python
PSTAMP := $(PVENV)/.installed

.PHONY: run test lint format js-clients system-deps bench-pricing bench-processors bench-forward \
	bench-instrumentation bench-bedrock bench-ingest bench-query catalog clean fault-disk fuzz

# `make run` installs what the collector and `costspan demo` need (the `demo` extra: the collector's
# dependencies and the two SDKs the demo calls); every other target adds the `test` extra's packages
# (the instrumentation libraries, SDKs and tools the suite and the benchmarks run) on top.
RUN_STAMP := $(VENV)/.installed-run
TEST_REQUIREMENTS := $(VENV)/test-requirements.txt

$(RUN_STAMP): $(PACKAGE_SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	COSTSPAN_COMPILE=0 $(PY) -m pip install --quiet '.[demo]'
	COSTSPAN_COMPILE=$(COSTSPAN_COMPILE) $(PY) -m pip install --quiet --force-reinstall --no-deps .
	touch $(RUN_STAMP)

# The test extra's requirements but costspan's own (installed above, compiled): `pip install '.[test]'`
# would build and install the package again, uncompiled.
$(STAMP): $(RUN_STAMP) pyproject.toml
	$(PY) -c "import tomllib; extra = tomllib.load(open('pyproject.toml', 'rb'))['project']\
	['optional-dependencies']['test']; print(*(r for r in extra if not r.startswith('costspan')), sep='\n')" \
		> $(TEST_REQUIREMENTS)
	$(PY) -m pip install --quiet -r $(TEST_REQUIREMENTS)
	touch $(STAMP)

$(PSTAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(PVENV)
	$(PPY) -m pip install --quiet --upgrade pip
	COSTSPAN_COMPILE=0 $(PPY) -m pip install --quiet -e '.[test]'
	touch $(PSTAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/costspan serve

# The wheel, into dist/, for installing costspan elsewhere without this checkout (there is no release on PyPI):
# the application side `pip install dist/costspan-*.whl`, the collector side `.whl[collector]` (README.md,
# "Install"). It is built as .venv is, its hot path compiled for this Python and platform;
# `make wheel COSTSPAN_COMPILE=0` builds the plain-Python wheel that installs anywhere (py3-none-any).
BUILD_VENV ?= .venv-build
.PHONY: wheel
wheel:
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet --upgrade pip
	COSTSPAN_COMPILE=$(COSTSPAN_COMPILE) $(BUILD_VENV)/bin/python -m pip wheel --quiet --no-deps \
		--wheel-dir dist .
	ls dist/costspan-*.whl

# The whole suite on the deployed build (the tests import the installed package: the repository has no
# costspan folder); then the tests of the modules the build compiles, on plain Python.
test: $(STAMP) $(PSTAMP) lint js-clients system-deps
	$(PY) -m pytest
	$(PPY) -m pytest -p no:cacheprovider tests/processors tests/semconv tests/pricing tests/exporters

# The OpenTelemetry JS SDK exporters that tests/collector/test_js_exporters.py runs in Node, at the
# versions package-lock.json pins. npm ci runs again only when the manifest or the lock file changes.
JS_CLIENTS := tests/collector/js
JS_STAMP := $(JS_CLIENTS)/node_modules/.installed

$(JS_STAMP): $(JS_CLIENTS)/package.json $(JS_CLIENTS)/package-lock.json
	cd $(JS_CLIENTS) && npm ci --no-audit --no-fund
	touch $(JS_STAMP)

js-clients: $(JS_STAMP)

# Prometheus, promtool, Alertmanager and systemd-analyze from the system's packages (apt), when missing; their
# services are neither started nor enabled.
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

bench-processors: $(STAMP) $(PSTAMP)
	$(PY) benchmarks/processors/run.py --builds python=$(PPY),compiled=$(PY)

bench-forward: $(STAMP)
	$(PY) benchmarks/forward/run.py

bench-instrumentation: $(STAMP)
	$(PY) benchmarks/instrumentation/run.py

bench-bedrock: $(STAMP)
	$(PY) benchmarks/instrumentation/bedrock.py

# Installs Arize Phoenix into .venv-phoenix on first use (never into .venv).
bench-ingest: $(STAMP)
	$(PY) benchmarks/ingest/run.py

bench-query: $(STAMP)
	$(PY) benchmarks/query/run.py

# Month-end error (MAPE) of each forecast method and of the automatic choice against run-rate, interval
# coverage and time per series, on generated histories of known shape (a few minutes on 2 cores).
.PHONY: bench-forecast
bench-forecast: $(STAMP)
	$(PY) benchmarks/answers/forecast_accuracy.py

# 100 budgets over 10 million generated calls: CPU per evaluation and per minute (BUDGETS_ARGS="--calls 1000000")
BUDGETS_ARGS ?=
.PHONY: bench-budgets
bench-budgets: $(STAMP)
	$(PY) benchmarks/answers/budgets.py $(BUDGETS_ARGS)

# Anomaly detection on generated histories with injected anomalies (and a control run): precision, recall and
# delay per kind over seeds; then the scan's CPU over 1M stored calls. BENCH_ANOMALIES_ARGS passes options on,
# e.g. BENCH_ANOMALIES_ARGS="--seeds 5 --cpu-calls 10000000".
BENCH_ANOMALIES_ARGS ?=
.PHONY: bench-anomalies
bench-anomalies: $(STAMP)
	$(PY) benchmarks/answers/anomalies.py $(BENCH_ANOMALIES_ARGS)

# The answer jobs together, as a collector runs them: 100 budgets, the anomaly scan and the forecasts over
# 10 million stored calls, in CPU seconds per minute of wall time (BENCH_ANSWERS_ARGS="--calls 1000000" ...).
.PHONY: bench-answers
bench-answers: $(STAMP)
	$(PY) benchmarks/answers/jobs.py $(BENCH_ANSWERS_ARGS)

# A million hostile requests to a real collector over OTLP/HTTP and gRPC (tests/fuzz/run.py); it prints the
# answers by code, crashes, worker restarts, peak RSS and whether valid calls sent afterwards were stored.
# FUZZ_ARGS passes options on, e.g. FUZZ_ARGS="--inputs 100000 --senders 4" or "--max-seconds 3600".
FUZZ_ARGS ?=
fuzz: $(STAMP)
	$(PY) -m tests.fuzz.run $(FUZZ_ARGS)

# A full disk under load, 20 rounds: spans acknowledged, stored, lost and doubled per round (root: it mounts a
# small tmpfs for each round).
fault-disk: $(STAMP)
	$(PY) benchmarks/faults/full_disk.py --rounds 20

# A real collector stopped under load from gRPC and HTTP exporters, 20 rounds each: per round the spans
# acknowledged, stored, lost and doubled (benchmarks/faults/sigterm.py --help for the options).
.PHONY: fault-sigterm fault-kill9
fault-sigterm: $(STAMP)
	$(PY) benchmarks/faults/sigterm.py --signals term,kill

fault-kill9: $(STAMP)
	$(PY) benchmarks/faults/sigterm.py --signals kill

# Regenerate the Grafana and Datadog dashboards' JSON from their generators (commit the result).
.PHONY: dashboards
dashboards: $(PSTAMP)
	$(PPY) deploy/grafana/generate.py
	$(PPY) deploy/datadog/generate.py

# Rebuild the embedded catalog from the installed genai-prices package.
catalog: $(STAMP)
	$(VENV)/bin/costspan pricing import genai-prices --output pricing/data/catalog.json

clean:
	rm -rf $(VENV) $(PVENV) $(BUILD_VENV) dist .venv-phoenix costspan-data costspan-demo .pytest_cache $(JS_CLIENTS)/node_modules

# The console's pages photographed in a real headless Chromium (tests/console/test_browser.py), into docs/img/
# (the README shows some). SCREENSHOT_DATA=<data dir> photographs that data (e.g. costspan-demo, after
# `costspan demo`) instead of the test's calls.
SCREENSHOT_DATA ?=
.PHONY: screenshots
screenshots: $(STAMP) system-deps
	COSTSPAN_SCREENSHOTS=docs/img COSTSPAN_SCREENSHOT_DATA=$(SCREENSHOT_DATA) \
		$(PY) -m pytest -q -p no:cacheprovider tests/console/test_browser.py -k photographed
