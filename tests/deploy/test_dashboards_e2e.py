"""The dashboards against a real ``costspan serve`` fed over OTLP by the OpenTelemetry SDK's exporter, with
budgets, anomalies, forecasts, a notification target and a forward exporter configured and four days of
stored history, so that every metric it exports has series:

- Grafana: a real Prometheus scrapes it, and each query of each panel, as Grafana sends it
  (tests/support/grafana.py), returns series, with every variable at "All" and with each variable's values,
  as Grafana lists them from Prometheus, picked explicitly;
- Datadog: the Agent's OpenMetrics check, run by the Agent's own code (datadog-checks-base, with its stub
  aggregator) on deploy/datadog/openmetrics.d/conf.yaml, submits every metric the configuration maps, with
  the type it names, maps every costspan metric the collector exports, and submits every metric and tag the
  Datadog dashboard reads."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from datadog_checks.base import OpenMetricsBaseCheckV2
from datadog_checks.base.stubs import aggregator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client.parser import text_string_to_metric_families

from tests.answers.history import write_hours
from tests.support.collector import Collector
from tests.support.deploy import DEPLOY, load_dashboards
from tests.support.grafana import Target, interpolate, intervals, range_seconds, targets, variable_text
from tests.support.otlp_sink import OTLPSink
from tests.support.prometheus import PrometheusServer
from tests.support.stored_calls import call
from tests.support.webhook_receiver import WebhookReceiver

DATADOG = DEPLOY / "datadog"
SCRAPE_S = 1  # PrometheusServer's scrape interval: the data source's "scrape interval" for Grafana
DEADLINE_S = 90  # the answers' first turns (a forecast loads statsmodels) take a while on a busy machine

CONFIG = """\
budgets:
  interval: 1s
  items:
    - {{name: organisation, amount: 1000, period: month}}
    - {{name: payments-daily, scope: {{team: payments}}, amount: 0.02, period: day}}
    - {{name: search-weekly, scope: {{team: search}}, amount: 50, period: week}}
anomalies:
  dimensions: [team, feature]
  min_impact_usd: 0.5
  min_calls: 5
notifications:
  targets:
    hook: {{kind: webhook, url: "{hook}"}}
exporters:
  otlp/archive:
    endpoint: {sink}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms}}
service:
  pipelines:
    traces:
      exporters: [parquet, prometheus, otlp/archive]
"""

# (team, feature, provider, model, input, output, cache read) tokens; acme-llm-1.5 is in no catalog, and its
# dot is a regex metacharacter when Grafana picks it as a value
LIVE_CALLS = [
    ("payments", "checkout-assistant", "anthropic", "claude-sonnet-4-5", 2000, 500, 1500),
    ("payments", "fraud-review", "openai", "gpt-4o-mini", 10000, 1000, 0),
    ("search", "chat", "openai", "gpt-4o-mini", 3000, 300, 1000),
    ("research", "eval", "acme", "acme-llm-1.5", 100, 10, 0),
]


def send_calls(collector: Collector) -> None:
    resource = Resource.create({"service.name": "checkout-api", "deployment.environment.name": "production"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces"))
    )
    tracer = provider.get_tracer("costspan.tests")
    for team, feature, provider_name, model, inp, out, cached in LIVE_CALLS:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider_name,
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            "gen_ai.usage.cache_read.input_tokens": cached,
            "costspan.team": team,
            "costspan.feature": feature,
        }
        with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
            pass
    provider.shutdown()


def history(data_dir: Path) -> None:
    """Four days of the search and ads teams' calls, with a burst of search's chat in the last complete
    hour: complete days to forecast, budgets with a rate to project, and an anomaly open."""
    now = datetime.now(UTC).replace(tzinfo=None)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)

    def burst(at: datetime) -> list[dict[str, Any]]:
        if at != hour:
            return []
        return [call(at + timedelta(minutes=i), "0.10", team="search", feature="chat") for i in range(40)]

    write_hours(data_dir, hour - timedelta(days=4), hour + timedelta(hours=1), extra=burst)


def query(prometheus: PrometheusServer, expr: str, instant: bool) -> list[dict[str, Any]]:
    """The query as Grafana sends it: instant, or over the last two minutes at a 1-second step."""
    if instant:
        return prometheus.query(expr)
    end = time.time()
    params = {"query": expr, "start": end - 120, "end": end, "step": SCRAPE_S}
    body = httpx.get(f"{prometheus.url}/api/v1/query_range", params=params, timeout=10).json()
    assert body["status"] == "success", (expr, body)
    return body["data"]["result"]


def label_values(
    prometheus: PrometheusServer, variable: Mapping[str, Any], values: Mapping[str, str]
) -> list[str]:
    """A query variable's options, as Grafana lists them: ``label_values(selector, label)`` through the
    series API over the last hour, filtered by the variable's regex."""
    found = re.fullmatch(r"label_values\((.+), (\w+)\)", interpolate(variable["query"], values))
    assert found, variable["query"]
    selector, label = found[1], found[2]
    end = time.time()
    params = {"match[]": selector, "start": end - 3600, "end": end}
    body = httpx.get(f"{prometheus.url}/api/v1/label/{label}/values", params=params, timeout=10).json()
    assert body["status"] == "success", body
    options = body["data"]
    if variable.get("regex"):
        pattern = re.compile(variable["regex"].strip("/"))
        options = [value for value in options if pattern.fullmatch(value)]
    return sorted(options)


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[tuple[Collector, PrometheusServer]]:
    tmp = tmp_path_factory.mktemp("dashboards")
    history(tmp / "data")
    receiver = WebhookReceiver().start()
    sink = OTLPSink().start()
    config = tmp / "costspan.yaml"
    config.write_text(CONFIG.format(hook=f"{receiver.url}/hook", sink=sink.endpoint))
    collector = Collector(tmp / "data").start("--config", str(config), "--workers", "1")
    server = PrometheusServer(tmp / "prometheus", targets=[f"127.0.0.1:{collector.admin}"])
    try:
        server.start()
        server.wait_for('up{job="costspan"}', lambda result: [s["value"][1] for s in result] == ["1"])
        # twice, a few scrapes apart: counters that grew between scrapes, as increase() and rate() need
        send_calls(collector)
        server.wait_for('count(costspan_llm_calls_total{environment="production"})', lambda r: r != [])
        time.sleep(3 * SCRAPE_S)
        send_calls(collector)
        server.wait_for(
            'costspan_llm_calls_total{model="acme-llm-1.5"}', lambda r: [s["value"][1] for s in r] == ["2"]
        )
        yield collector, server
    finally:
        server.stop()
        collector.kill(signal.SIGTERM)
        sink.stop()
        receiver.stop()


def empty_targets(
    prometheus: PrometheusServer, pick: Callable[[Mapping[str, Any], list[str]], list[str] | None]
) -> list[tuple[Target, str]]:
    """The targets of every dashboard that return no series, with the query sent, when each variable is
    set to ``pick(variable, its options)`` (None: "All")."""
    empty = []
    for name, dashboard in load_dashboards().items():
        values = intervals(range_seconds(dashboard["time"]["from"]), SCRAPE_S)
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "datasource":
                continue
            options = label_values(prometheus, variable, values)
            assert options, (name, variable["name"], "lists no value")
            picked = pick(variable, options) if variable.get("includeAll") else [options[0]]
            values[variable["name"]] = variable_text(variable, picked)
        for target in targets(name, dashboard):
            # Prometheus started seconds ago: what a day ago looks like is asked of the present
            expr = interpolate(target.expr, values).replace(" offset 1d", "")
            if not query(prometheus, expr, target.instant):
                empty.append((target, expr))
    return empty


def wait_until_none_empty(prometheus: PrometheusServer, pick) -> None:
    deadline = time.monotonic() + DEADLINE_S
    empty = empty_targets(prometheus, pick)
    while empty and time.monotonic() < deadline:
        time.sleep(1)
        empty = empty_targets(prometheus, pick)
    assert not empty, "\n".join(f"{t.dashboard} / {t.panel} / {t.ref_id}: {expr}" for t, expr in empty)


@pytest.fixture
def prometheus(servers) -> PrometheusServer:
    return servers[1]


def test_every_panel_shows_data_with_every_variable_at_all(prometheus):
    wait_until_none_empty(prometheus, lambda variable, options: None)


def test_every_panel_shows_data_with_each_variables_values_picked(prometheus):
    wait_until_none_empty(prometheus, lambda variable, options: options)


def test_a_picked_team_filters_the_team_panels(prometheus):
    dashboard = load_dashboards()["teams-and-features"]
    values = intervals(range_seconds(dashboard["time"]["from"]), SCRAPE_S)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    values |= {name: ".*" for name in variables if name != "datasource"} | {"job": "costspan"}
    values["team"] = variable_text(variables["team"], ["payments"])
    by_team = next(
        t for t in targets("teams-and-features", dashboard) if t.panel == "Spend by team (USD/hour)"
    )
    result = query(prometheus, interpolate(by_team.expr, values), by_team.instant)
    assert {series["metric"]["team"] for series in result} == {"payments"}


# --- Datadog ---------------------------------------------------------------------------------------------

DATADOG_QUERY = re.compile(r"\b(?:sum|max|min|avg):([\w.]+)\{([^}]*)\}(?: by \{([^}]*)\})?")


def datadog_instance(collector: Collector) -> dict[str, Any]:
    conf = yaml.safe_load((DATADOG / "openmetrics.d" / "conf.yaml").read_text())
    return conf["instances"][0] | {"openmetrics_endpoint": f"{collector.admin_url}/metrics"}


def expected_submissions(instance: Mapping[str, Any]) -> dict[str, int]:
    """What the Agent submits for each mapped metric, by the OpenMetrics V2 check's rules: a counter as
    ``<namespace>.<name>.count``, a monotonic count; a gauge as ``<namespace>.<name>``."""
    expected = {}
    for entry in instance["metrics"]:
        [(_, mapping)] = entry.items()
        name = f"{instance['namespace']}.{mapping['name']}"
        if mapping["type"] == "counter":
            expected[f"{name}.count"] = aggregator.MONOTONIC_COUNT
        else:
            assert mapping["type"] == "gauge", mapping
            expected[name] = aggregator.GAUGE
    return expected


def run_the_agents_check(instance: Mapping[str, Any]) -> dict[str, tuple[set[int], set[str]]]:
    """Each metric the check submitted: its types and its tag keys. Run twice, as the Agent does every 15
    seconds: a monotonic count is the increase between two scrapes."""
    aggregator.reset()
    check = OpenMetricsBaseCheckV2("openmetrics", {}, [dict(instance)])
    for _ in range(2):
        error = check.run()
        assert not error, error
    submitted = {}
    for name in aggregator.metric_names:
        samples = aggregator.metrics(name)
        keys = {tag.split(":", 1)[0] for sample in samples for tag in sample.tags}
        submitted[name] = ({sample.type for sample in samples}, keys)
    return submitted


def test_the_agents_check_submits_every_metric_it_maps_with_its_type(servers):
    collector, _ = servers
    instance = datadog_instance(collector)
    expected = expected_submissions(instance)
    deadline = time.monotonic() + DEADLINE_S  # the answers' gauges appear after their jobs' first turns
    submitted = run_the_agents_check(instance)
    while set(expected) - set(submitted) and time.monotonic() < deadline:
        time.sleep(1)
        submitted = run_the_agents_check(instance)
    assert {name: types for name, (types, _) in submitted.items()} == {
        name: {kind} for name, kind in expected.items()
    }
    # every cost label is a tag; service is service_name, apart from the Agent's own unified service tags
    _, keys = submitted["costspan.cost_usd.count"]
    assert {"environment", "service_name", "team", "feature", "provider", "model"} <= keys
    assert "service" not in keys
    assert "answer_job" in submitted["costspan.collector.answer_runs.count"][1]


def test_every_costspan_metric_the_collector_exports_is_mapped(servers):
    collector, _ = servers
    instance = datadog_instance(collector)
    mapped = {name for entry in instance["metrics"] for name in entry}
    # parsed as the Agent parses the text format (prometheus_client's parser: a counter without _total)
    text = httpx.get(f"{collector.admin_url}/metrics", timeout=10).text
    exported = {
        family.name
        for family in text_string_to_metric_families(text)
        if family.name.startswith("costspan_") and not family.name.endswith("_created")
    }
    assert exported - mapped == set()
    assert mapped - exported == set()


def test_every_metric_and_tag_the_datadog_dashboard_reads_is_submitted(servers):
    collector, _ = servers
    instance = datadog_instance(collector)
    deadline = time.monotonic() + DEADLINE_S
    submitted = run_the_agents_check(instance)
    while set(expected_submissions(instance)) - set(submitted) and time.monotonic() < deadline:
        time.sleep(1)
        submitted = run_the_agents_check(instance)
    text = (DATADOG / "costspan-dashboard.json").read_text()
    queries = DATADOG_QUERY.findall(text)
    assert len(queries) >= 40
    for metric, scope, by in queries:
        assert metric in submitted, metric
        tags = {part.strip().lstrip("$").split(":", 1)[0] for part in scope.split(",") if part.strip() != "*"}
        tags |= {part.strip() for part in by.split(",") if part.strip()}
        assert tags <= submitted[metric][1], (metric, tags - submitted[metric][1])
