"""Thousands of calls of a generated agent workload, each traced by two instrumentations at once, sent over
OTLP (gRPC and HTTP) to a real collector: ``llm_calls`` holds exactly the calls the provider billed, and
their cost.

The truth is the provider stand-in's request log: every request it answered 200 is a billed call, priced
from the usage it returned; a 429 it answered is a failed attempt, which costs nothing. The workload
(tests/instrumentation/apps/workload.py) fans out identical concurrent calls, repeats identical calls in
sequence, nests sub-agents, retries refused calls, and makes calls with no span around them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from costspan.pricing import Usage, load_engine
from tests.fixtures.genai.capture import canonical_usage
from tests.instrumentation.apps.workload import COMBOS
from tests.support.collector import Collector
from tests.support.provider_server import ProviderServer

ROOT = Path(__file__).resolve().parents[2]
TRACES = 30  # per combination: about 250 calls each
PROVIDERS = {"/v1/messages": "anthropic"}


def _run_app(
    combo: str, seed: int, provider: ProviderServer, collector: Collector, protocol: str, traces: int = TRACES
) -> None:
    endpoint = f"127.0.0.1:{collector.grpc}" if protocol == "grpc" else f"http://127.0.0.1:{collector.http}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ANTHROPIC_", "OPENAI_"))}
    env["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.instrumentation.apps.workload",
            combo,
            str(seed),
            str(traces),
            provider.base_url,
            endpoint,
            protocol,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _truth(provider: ProviderServer) -> dict[str, tuple[int, Decimal, int]]:
    """service -> (billed calls, their cost, failed attempts), from the stand-in's log."""
    engine = load_engine()
    out: dict[str, tuple[int, Decimal, int]] = {}
    for request in provider.requests:
        service = request.headers.get("x-workload")
        assert service, request.headers
        calls, cost, failed = out.get(service, (0, Decimal(0), 0))
        if request.status == 429:
            out[service] = (calls, cost, failed + 1)
            continue
        assert request.status == 200 and request.usage is not None, request
        usage = Usage(**canonical_usage(request.path, request.usage))
        provider_name = PROVIDERS.get(request.path, "openai")
        priced = engine.price(request.model, usage, provider=provider_name, timestamp=datetime.now(UTC))
        assert priced.cost_usd is not None, (request.model, priced.status)
        out[service] = (calls + 1, cost + priced.cost_usd, failed)
    return out


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    with ProviderServer() as provider:
        collector = Collector(tmp_path_factory.mktemp("data")).start()
        try:
            names = sorted(COMBOS)
            with ThreadPoolExecutor(2) as pool:
                runs = [
                    pool.submit(_run_app, name, seed, provider, collector, ("grpc", "http")[seed % 2])
                    for seed, name in enumerate(names)
                ]
                for run in runs:
                    run.result()
            truth = _truth(provider)
            expected_rows = sum(calls for calls, _, _ in truth.values())
            # every span is acknowledged once the apps exit; wait until the workers have stored them all
            query = "SELECT count(*) FILTER (WHERE pricing_status <> 'failed') FROM llm_calls"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and int(collector.sql(query)[0]) < expected_rows:
                time.sleep(0.5)
            time.sleep(1)  # any over-count lands too
            rows = collector.sql(
                "SELECT service_name, count(*) FILTER (WHERE pricing_status <> 'failed'), "
                "coalesce(sum(cost_usd), 0), count(*) FILTER (WHERE pricing_status = 'failed') "
                "FROM llm_calls GROUP BY 1 ORDER BY 1"
            )
            detail = collector.sql(
                "SELECT service_name, dialect, pricing_status, duplicate_of IS NULL, count(*) "
                "FROM llm_calls_all GROUP BY ALL ORDER BY ALL"
            )
        finally:
            collector.kill()
    got = {}
    for row in rows:
        service, calls, cost, failed = row.split(",")
        got[service] = (int(calls), Decimal(cost), int(failed))
    return truth, got, detail


def test_the_workload_is_thousands_of_calls_with_retries(stored):
    truth, _, _ = stored
    assert sum(calls for calls, _, _ in truth.values()) >= 2000
    assert sum(failed for _, _, failed in truth.values()) >= 100
    assert len(truth) == len(COMBOS)


@pytest.mark.parametrize("combo", sorted(COMBOS))
def test_llm_calls_hold_exactly_the_billed_calls_and_their_cost(stored, combo):
    truth, got, detail = stored
    service = f"workload-{combo}"
    calls, cost, failed = truth[service]
    stored_calls, stored_cost, stored_failed = got.get(service, (0, Decimal(0), 0))
    rows = [d for d in detail if d.startswith(service + ",")]
    assert (stored_calls, stored_cost) == (calls, cost), rows
    # a failed attempt is a row of its own, at zero cost, where an instrumentation traced the attempt
    assert stored_failed <= failed


def test_an_agent_turn_of_concurrent_and_repeated_identical_calls_is_every_call(tmp_path):
    # costspan's instrumentation alone: 8 embeddings and 8 chat completions at once, then two identical
    # chat completions back to back, under one agent span
    with ProviderServer() as provider:
        collector = Collector(tmp_path).start()
        try:
            _run_app("costspan", 0, provider, collector, "grpc", traces=0)
            assert len(provider.requests) == 18
            collector.wait_for("SELECT count(*), count(DISTINCT span_id) FROM llm_calls", ["18,18"])
            by_operation = collector.sql("SELECT operation, count(*) FROM llm_calls GROUP BY 1 ORDER BY 1")
            assert by_operation == ["chat,10", "embeddings,8"]
            assert collector.sql("SELECT count(*) FROM llm_calls_all WHERE duplicate_of IS NOT NULL") == ["0"]
        finally:
            collector.kill()
