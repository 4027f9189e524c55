"""Budget alerts end to end, with real servers: a real ``costspan serve`` with budgets is sent spans over
OTLP until a budget crosses its thresholds; a real Prometheus scraping its /metrics with the rules
``costspan rules`` generated fires the threshold alerts (and nothing for the budget that spent nothing); a
real Alertmanager delivers them to a webhook receiver; and the collector's own notifier posts each crossing
to the receiver, once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.alertmanager import AlertmanagerServer
from tests.support.collector import COSTSPAN, Collector
from tests.support.prometheus import PrometheusServer
from tests.support.webhook_receiver import WebhookReceiver

# claude-sonnet-4-5 at $3 / 1M input and $15 / 1M output (the embedded catalog): 2000 in + 500 out = $0.0135;
# one call is 67.5% of the $0.02 budget, two are 135%
CONFIG = """\
budgets:
  interval: 1s
  items:
    - name: payments-daily
      scope: {{team: payments}}
      amount: 0.02
      period: day
      thresholds: [50, 100]
    - name: support-daily
      scope: {{team: support}}
      amount: 100
      period: day
notifications:
  targets:
    hook:
      kind: webhook
      url: {hook}
      events: [budget_threshold]
  retry_on_failure: {{initial_interval: 100ms, max_interval: 500ms}}
"""


def send_call(collector: Collector, team: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces"))
    )
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 2000,
        "gen_ai.usage.output_tokens": 500,
        "costspan.team": team,
    }
    with provider.get_tracer("costspan.tests").start_as_current_span("chat", attributes=attributes):
        pass
    provider.shutdown()


def budget_alerts(prometheus: PrometheusServer, state: str = "firing") -> set[tuple[str, str, str]]:
    return {
        (a["labels"]["alertname"], a["labels"]["budget"], a["labels"].get("threshold", ""))
        for a in prometheus.alerts()
        if a["labels"]["alertname"].startswith("CostspanBudget") and a["state"] == state
    }


def wait(condition, what: str, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"never: {what}")


@pytest.fixture
def servers(tmp_path: Path):
    receiver = WebhookReceiver().start()
    config = tmp_path / "costspan.yaml"
    config.write_text(CONFIG.format(hook=f"{receiver.url}/collector"))
    rules = tmp_path / "budget-rules.yml"
    generated = subprocess.run(
        [str(COSTSPAN), "rules", "--config", str(config), "--output", str(rules), "--interval", "1s"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    started: list = []
    try:
        alertmanager = AlertmanagerServer(tmp_path / "alertmanager", f"{receiver.url}/alertmanager").start()
        started.append(alertmanager)
        collector = Collector(tmp_path / "data").start("--config", str(config), "--workers", "1")
        started.append(collector)
        prometheus = PrometheusServer(
            tmp_path / "prometheus",
            targets=[f"127.0.0.1:{collector.admin}"],
            rule_files=[rules],
            alertmanagers=[alertmanager.address],
        ).start()
        started.append(prometheus)
        yield collector, prometheus, alertmanager, receiver
    finally:
        for server in reversed(started):
            if isinstance(server, Collector):
                server.kill(signal.SIGTERM)
            else:
                server.stop()
        receiver.stop()


def test_a_budget_crossing_fires_in_prometheus_reaches_alertmanager_and_the_collectors_webhook(servers):
    collector, prometheus, _alertmanager, receiver = servers
    # the budgets' gauges are scraped before any spend: no budget alert
    prometheus.wait_for(
        'costspan_budget_limit_usd{budget="payments-daily"}',
        lambda result: [s["value"][1] for s in result] == ["0.02"],
    )
    assert budget_alerts(prometheus, "firing") | budget_alerts(prometheus, "pending") == set()

    send_call(collector, "payments")  # 67.5%
    wait(
        lambda: ("CostspanBudgetThreshold", "payments-daily", "50") in budget_alerts(prometheus), "50% fires"
    )
    firing = budget_alerts(prometheus)
    assert ("CostspanBudgetThreshold", "payments-daily", "100") not in firing

    send_call(collector, "payments")  # 135%
    wait(
        lambda: ("CostspanBudgetThreshold", "payments-daily", "100") in budget_alerts(prometheus),
        "100% fires",
    )
    # the budget that spent nothing fires nothing (the burn-rate alerts, whose gauges need a minute of
    # history, are proven by the generated promtool suite)
    firing = budget_alerts(prometheus)
    assert not any(budget == "support-daily" for _, budget, _ in firing)
    over = next(
        a
        for a in prometheus.alerts()
        if a["labels"].get("threshold") == "100" and a["labels"]["alertname"] == "CostspanBudgetThreshold"
    )
    assert over["labels"]["team"] == "payments" and over["labels"]["severity"] == "critical"
    assert over["annotations"]["summary"] == (
        "Budget payments-daily: 100% of the budget crossed; $0.03 of $0.02 spent (135%)"
    )

    # Alertmanager delivers it to the webhook receiver
    def delivered_by_alertmanager(seen) -> bool:
        return any(
            a["labels"].get("threshold") == "100" and a["status"] == "firing"
            for r in seen
            if r.path == "/alertmanager"
            for a in r.body["alerts"]
        )

    seen = receiver.wait_for(delivered_by_alertmanager, timeout=30)
    message = next(r.body for r in seen if r.path == "/alertmanager" and delivered_by_alertmanager([r]))
    assert message["receiver"] == "webhook" and message["groupLabels"]["budget"] == "payments-daily"

    # the collector posted each crossing once; more turns of its budget job post nothing more
    receiver.wait_for(lambda seen: len([r for r in seen if r.path == "/collector"]) >= 2)
    time.sleep(2)
    posted = [r.body for r in receiver.received if r.path == "/collector"]
    assert sorted(b["event"]["threshold"] for b in posted) == ["100", "50"]
    assert {b["event"]["budget"] for b in posted} == {"payments-daily"}
    metrics = httpx.get(f"{collector.admin_url}/metrics", timeout=10).text
    assert 'costspan_notifications_total{outcome="delivered",target="hook"} 2.0' in metrics
    assert 'costspan_notifications_outbox_events{target="hook"} 0.0' in metrics


def test_the_collectors_webhook_down_then_up_across_a_restart_gets_each_crossing_once(tmp_path):
    receiver = WebhookReceiver()  # not listening yet: the target is down
    config = tmp_path / "costspan.yaml"
    config.write_text(CONFIG.format(hook=f"{receiver.url}/collector"))
    collector = Collector(tmp_path / "data").start("--config", str(config), "--workers", "1")
    try:
        send_call(collector, "payments")  # 67.5%: the 50% threshold is crossed

        def failed_attempts() -> float:
            text = httpx.get(f"{collector.admin_url}/metrics", timeout=10).text
            line = 'costspan_notifications_total{outcome="failed_attempt",target="hook"} '
            found = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
            return found[0] if found else 0.0

        wait(lambda: failed_attempts() >= 2, "attempts on the target that is down")
    finally:
        collector.kill(signal.SIGTERM)
    outbox = list((tmp_path / "data" / ".storage" / "notifications" / "hook").glob("*.json"))
    assert len(outbox) == 1  # kept for the next start

    receiver.start()
    collector = Collector(tmp_path / "data").start("--config", str(config), "--workers", "1")
    try:
        receiver.wait_for(lambda seen: len(seen) >= 1)
        send_call(collector, "payments")  # 135%: the 100% threshold
        receiver.wait_for(lambda seen: len(seen) >= 2)
        time.sleep(2)  # more turns of the budget job: nothing more is posted
    finally:
        collector.kill(signal.SIGTERM)
        receiver.stop()
    assert sorted(r.body["event"]["threshold"] for r in receiver.received) == ["100", "50"]
