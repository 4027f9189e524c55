"""A real Prometheus server scrapes a real ``costspan serve``: PromQL over the scraped counters gives the
exact cost, and deploy/prometheus/costspan-rules.yml records spend and fires on an unpriced model."""

from __future__ import annotations

import signal
from decimal import Decimal

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.collector import Collector
from tests.support.deploy import RULES, concrete, expressions, load_dashboard, panels
from tests.support.prometheus import PrometheusServer

# (team, feature, model, input tokens, output tokens); costs from the embedded catalog (genai-prices 0.2.3):
# gpt-4o at $2.50 / 1M input and $10 / 1M output: 1000 in + 100 out = $0.0035
# gpt-4o-mini at $0.15 / 1M input and $0.60 / 1M output: 10000 in + 1000 out = $0.0021
# claude-sonnet-4-5 at $3 / 1M input and $15 / 1M output: 2000 in + 500 out = $0.0135
CALLS = [
    ("payments", "checkout-assistant", "openai", "gpt-4o", 1000, 100),
    ("payments", "fraud-review", "openai", "gpt-4o-mini", 10000, 1000),
    ("support", "ticket-triage", "anthropic", "claude-sonnet-4-5", 2000, 500),
    ("research", "eval", "openai", "costspan-test-unreleased-model", 100, 10),  # not in the catalog
]
EXPECTED_BY_TEAM = {"payments": Decimal("0.0056"), "support": Decimal("0.0135")}


@pytest.fixture
def servers(tmp_path):
    collector = Collector(tmp_path / "data").start()
    prometheus = None
    try:
        prometheus = PrometheusServer(
            tmp_path / "prometheus",
            targets=[f"127.0.0.1:{collector.admin}"],
            rule_files=[RULES / "costspan-rules.yml"],
        ).start()
        yield collector, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        collector.kill(signal.SIGTERM)


def send_calls(collector: Collector, calls: list[tuple]) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces"))
    )
    tracer = provider.get_tracer("costspan.tests")
    for team, feature, provider_name, model, inp, out in calls:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_name,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            "costspan.team": team,
            "costspan.feature": feature,
        }
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
            pass
    provider.shutdown()


def by_team(result: list[dict]) -> dict[str, Decimal]:
    # Prometheus holds float64: 12 decimal places are far below a cent and far above float noise here.
    return {
        sample["metric"]["team"]: Decimal(sample["value"][1]).quantize(Decimal("1e-12")).normalize()
        for sample in result
    }


def test_prometheus_scrapes_the_exact_cost_and_evaluates_the_rules(servers):
    collector, prometheus = servers
    prometheus.wait_for('up{job="costspan"}', lambda result: [s["value"][1] for s in result] == ["1"])
    send_calls(collector, CALLS)
    collector.wait_for("SELECT count(*) FROM llm_calls", ["4"])

    result = prometheus.wait_for(
        'sum by (team) (costspan_cost_usd_total{team=~"payments|support"})',
        lambda result: by_team(result) == EXPECTED_BY_TEAM,
    )
    assert by_team(result) == EXPECTED_BY_TEAM
    tokens = prometheus.query('sum by (type) (costspan_tokens_total{team="support"})')
    assert {s["metric"]["type"]: s["value"][1] for s in tokens} == {"input": "2000", "output": "500"}

    # the rules file, loaded by the same server: spend is recorded (a rate needs the counter to grow
    # between scrapes, so support calls again), and the unknown model alerts
    send_calls(collector, CALLS[2:3])
    prometheus.wait_for(
        'sum by (team) (costspan_cost_usd_total{team="support"})',
        lambda result: by_team(result) == {"support": 2 * EXPECTED_BY_TEAM["support"]},
    )
    prometheus.wait_for(
        'team_feature:costspan_cost_usd:rate5m{team="support",feature="ticket-triage"} > 0',
        lambda result: len(result) == 1,
    )
    firing = prometheus.wait_for(
        'ALERTS{alertname="CostspanUnpricedCalls",alertstate="firing"}', lambda result: len(result) == 1
    )
    assert firing[0]["metric"]["model"] == "costspan-test-unreleased-model"
    assert prometheus.query('ALERTS{alertname="CostspanCollectorDown"}') == []

    # every expression of the Grafana dashboard runs on this server; its spend panels see the spend
    dashboard = load_dashboard()
    for expr in expressions(dashboard):
        prometheus.query(concrete(expr))
    panel = {p["title"]: p["targets"][0]["expr"] for p in panels(dashboard) if p["type"] != "row"}
    spend_by_team = prometheus.query(concrete(panel["Spend by team (USD/hour)"]))
    assert {s["metric"]["team"] for s in spend_by_team} == {"payments", "support"}  # research: unpriced
    assert float(prometheus.query(concrete(panel["Spend in range"]))[0]["value"][1]) > 0
