"""A real `costspan serve --config` with budgets: spans over OTLP/HTTP become spend in the budgets view, the
budget gauges on /metrics, and a threshold crossed in budget_periods."""

from __future__ import annotations

import signal
import time

import httpx2 as httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.collector import Collector

CONFIG = """\
budgets:
  interval: 1s
  items:
    - {name: org, amount: 100, period: month}
    - {name: payments, scope: {team: payments}, amount: 0.005, period: day, thresholds: [50, 100]}
"""


@pytest.fixture
def collector(tmp_path):
    config = tmp_path / "costspan.yaml"
    config.write_text(CONFIG)
    running = Collector(tmp_path / "data").start("--config", str(config))
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


def test_spans_over_otlp_become_budget_spend_gauges_and_a_crossing(collector):
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(
        SimpleSpanProcessor(HttpExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces"))
    )
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        "costspan.team": "payments",
    }
    with provider.get_tracer("app").start_as_current_span("chat gpt-4o", attributes=attributes):
        pass  # $0.0035 at gpt-4o's list price: 70% of the payments budget
    provider.shutdown()
    collector.wait_for(
        "SELECT budget, spent_usd, calls, unpriced_calls FROM budgets ORDER BY budget",
        ["org,0.0035,1,0", "payments,0.0035,1,0"],
    )
    collector.wait_for(
        "SELECT budget, c.threshold_percent FROM budget_periods, unnest(crossings) AS u(c)",
        ["payments,50"],
    )
    deadline = time.monotonic() + 30
    metrics = ""
    while (
        time.monotonic() < deadline and 'costspan_budget_spent_usd{budget="payments"} 0.0035' not in metrics
    ):
        metrics = httpx.get(f"{collector.admin_url}/metrics").text
        time.sleep(0.2)
    for line in (
        'costspan_budget_spent_usd{budget="payments"} 0.0035',
        'costspan_budget_limit_usd{budget="payments"} 0.005',
        'costspan_budget_used_ratio{budget="payments"} 0.7',
        'costspan_budget_unpriced_calls{budget="payments"} 0.0',
        'costspan_budget_period_end_timestamp_seconds{budget="org"}',
        'costspan_collector_answer_runs_total{answer_job="budgets",outcome="ok"}',
    ):
        assert line in metrics, line
    # a minute of history: no projection and no burn rate yet, rather than a made-up number
    assert 'costspan_budget_projected_usd{budget="payments"}' not in metrics
