"""Notifications from the collector: each event reaches each target once, through an outbox that survives
a restart, retried while the target is down; Slack's shape; secrets from the environment stay out of files
and logs; configuration mistakes name the file and line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from costspan.collector.answers.budgets import BudgetEvent
from costspan.collector.answers.notify import (
    ANOMALY,
    Notification,
    NotificationSettings,
    Notifier,
    Target,
    from_anomaly_event,
    from_budget_event,
)
from costspan.collector.config import ConfigFileError, load_config
from costspan.collector.queued_exporter import RetrySettings
from tests.support.webhook_receiver import WebhookReceiver

FAST_RETRY = RetrySettings(
    initial_interval=0.05, max_interval=0.2, max_elapsed_time=60, randomization_factor=0
)


def crossing(threshold: str = "90", budget: str = "search") -> BudgetEvent:
    return BudgetEvent(
        budget=budget,
        scope={"team": "search"},
        period_start=datetime(2026, 3, 1, tzinfo=UTC),
        period_end=datetime(2026, 4, 1, tzinfo=UTC),
        threshold=Decimal(threshold),
        crossed_at=datetime(2026, 3, 20, 14, 2, tzinfo=UTC),
        spent_usd=Decimal("225.450000000000"),
        limit_usd=Decimal("250.50"),
        projected_usd=Decimal("361.2"),
    )


def notifier(data_dir: Path, *targets: Target, max_attempts: int = 1000) -> Notifier:
    return Notifier(data_dir, NotificationSettings(tuple(targets), FAST_RETRY, max_attempts))


def metrics(n: Notifier) -> str:
    registry = CollectorRegistry()
    registry.register(n)
    return generate_latest(registry).decode()


def wait_until(condition, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_target_down_then_up_across_a_restart_gets_the_event_exactly_once(tmp_path):
    receiver = WebhookReceiver()  # not started: the port refuses connections
    target = Target("hook", "webhook", f"{receiver.url}/costspan")
    first = notifier(tmp_path, target)
    first.start()
    try:
        first.budget_event(crossing())
        wait_until(lambda: first.counts[("hook", "failed_attempt")] >= 3)
    finally:
        first.stop()
    text = metrics(first)
    assert 'costspan_notifications_outbox_events{target="hook"} 1.0' in text
    assert 'costspan_notifications_total{outcome="delivered",target="hook"} 0.0' in text

    # a restart: a new notifier over the same data directory finds the event in its outbox
    receiver.start()
    second = notifier(tmp_path, target)
    second.start()
    try:
        received = receiver.wait_for(lambda seen: len(seen) >= 1)
        second.budget_event(crossing())  # the same crossing raised again (a job's restart): not sent again
        wait_until(lambda: second.counts[("hook", "delivered")] == 1)
        second.notify(Notification("other", ANOMALY, "2026-03-20T14:00:00+00:00", "t", "x"))
        received = receiver.wait_for(lambda seen: len(seen) >= 2)
    finally:
        second.stop()
        receiver.stop()
    assert [r.body["id"] for r in received] == ["budget:search:2026-03-01T00:00:00+00:00:90", "other"]
    body = received[0].body
    assert received[0].path == "/costspan"
    assert received[0].headers["idempotency-key"] == body["id"]
    assert body["kind"] == "budget_threshold" and body["title"] == "Budget search crossed 90%"
    assert body["event"] == {
        "budget": "search",
        "scope": {"team": "search"},
        "period_start": "2026-03-01T00:00:00+00:00",
        "period_end": "2026-04-01T00:00:00+00:00",
        "threshold": "90",
        "crossed_at": "2026-03-20T14:02:00+00:00",
        "spent_usd": "225.450000000000",  # exact, as stored
        "limit_usd": "250.50",
        "projected_usd": "361.2",
    }
    text = metrics(second)
    assert 'costspan_notifications_total{outcome="delivered",target="hook"} 2.0' in text
    assert 'costspan_notifications_outbox_events{target="hook"} 0.0' in text
    # a third start finds nothing left to send
    third = notifier(tmp_path, target)
    assert third.deliver_due() == 60.0 and len(receiver.received) == 2


def test_slack_gets_text_and_blocks(tmp_path):
    receiver = WebhookReceiver().start()
    n = notifier(tmp_path, Target("slack", "slack", f"{receiver.url}/services/T0/B0/x"))
    n.start()
    try:
        event = crossing()
        n.budget_event(BudgetEvent(**{**event.__dict__, "scope": {"team": "<search & co>"}}))
        body = receiver.wait_for(lambda seen: len(seen) == 1)[0].body
    finally:
        n.stop()
        receiver.stop()
    assert set(body) == {"text", "blocks"}
    assert body["text"] == (
        "Budget search crossed 90%: $225.45 of $250.50 spent (team=&lt;search &amp; co&gt;); "
        "projected $361.20 by 2026-04-01 00:00."
    )
    header, section, facts, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "Budget search crossed 90%"}}
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert facts["fields"][:3] == [
        {"type": "mrkdwn", "text": "*Spent*\n$225.45"},
        {"type": "mrkdwn", "text": "*Limit*\n$250.50"},
        {"type": "mrkdwn", "text": "*Projected*\n$361.20"},
    ]
    assert context["type"] == "context"


def test_refused_and_exhausted_events_are_dropped_and_counted(tmp_path, caplog):
    receiver = WebhookReceiver().start()
    receiver.status = 400  # a refusal a retry cannot cure
    refused = notifier(tmp_path / "a", Target("hook", "webhook", receiver.url))
    with caplog.at_level(logging.ERROR):
        refused.budget_event(crossing())
        refused.deliver_due()
    assert refused.counts[("hook", "dropped")] == 1 and len(receiver.received) == 1
    assert "dropped (HTTP 400; refused)" in caplog.text
    receiver.status = 503  # retryable, but only three attempts allowed
    exhausted = notifier(tmp_path / "b", Target("hook", "webhook", receiver.url), max_attempts=3)
    exhausted.start()
    try:
        exhausted.budget_event(crossing())
        wait_until(lambda: exhausted.counts[("hook", "dropped")] == 1)
    finally:
        exhausted.stop()
        receiver.stop()
    assert exhausted.counts[("hook", "failed_attempt")] == 3
    assert 'costspan_notifications_total{outcome="dropped",target="hook"} 1.0' in metrics(exhausted)
    # dropped is final: raised again, it is not sent again
    exhausted.budget_event(crossing())
    assert exhausted.deliver_due() == 60.0


def test_filters_by_event_kind_and_budget(tmp_path):
    receiver = WebhookReceiver().start()
    only_search = Target("a", "webhook", receiver.url + "/a", budgets=frozenset({"search"}))
    only_anomalies = Target("b", "webhook", receiver.url + "/b", events=frozenset({ANOMALY}))
    n = notifier(tmp_path, only_search, only_anomalies)
    n.budget_event(crossing(budget="search"))
    n.budget_event(crossing(budget="org"))
    n.notify(Notification("anomaly:1", ANOMALY, "2026-03-20T14:00:00+00:00", "Anomaly", "x"))
    n.deliver_due()
    receiver.stop()
    sent = sorted((r.path, r.body["id"]) for r in receiver.received)
    assert sent == [
        ("/a", "anomaly:1"),
        ("/a", "budget:search:2026-03-01T00:00:00+00:00:90"),
        ("/b", "anomaly:1"),
    ]


def test_secrets_come_from_the_environment_and_stay_out_of_files_and_logs(tmp_path, monkeypatch, caplog):
    receiver = WebhookReceiver()
    secret_path, token = "/services/T000/B000/s3cr3tPathXYZ", "Bearer tok-9f8e7d6c"
    monkeypatch.setenv("TEST_SLACK_URL", receiver.url + secret_path)
    monkeypatch.setenv("TEST_HOOK_AUTH", token)
    config = tmp_path / "costspan.yaml"
    config.write_text(
        "notifications:\n"
        "  targets:\n"
        "    slack:\n"
        "      kind: slack\n"
        "      url: ${env:TEST_SLACK_URL}\n"
        "      headers: {authorization: '${env:TEST_HOOK_AUTH}'}\n"
        "  retry_on_failure: {initial_interval: 50ms, max_interval: 200ms}\n"
    )
    settings = load_config(config).notifications
    assert settings.targets[0].url == receiver.url + secret_path
    assert "s3cr3t" not in repr(settings)
    data = tmp_path / "data"
    n = Notifier(data, settings)
    n.start()
    try:
        # the collector logs at INFO (urllib3's DEBUG lines show request paths, as any HTTP client's do)
        with caplog.at_level(logging.INFO):
            n.budget_event(crossing())
            wait_until(lambda: n.counts[("slack", "failed_attempt")] >= 2)  # down: logged, with no URL
            receiver.start()
            received = receiver.wait_for(lambda seen: len(seen) == 1)
    finally:
        n.stop()
        receiver.stop()
    assert received[0].path == secret_path and received[0].headers["authorization"] == token
    assert "retrying in" in caplog.text and "not reachable" in caplog.text
    assert "s3cr3t" not in caplog.text and "tok-9f8e7d6c" not in caplog.text
    for path in data.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"s3cr3t" not in content and b"tok-9f8e7d6c" not in content, path


@pytest.mark.parametrize(
    ("section", "line", "message"),
    [
        (
            "  targets:\n    a: {kind: email, url: 'http://x'}\n",
            3,
            "notifications.targets.a.kind: one of slack",
        ),
        ("  targets:\n    a:\n      kind: slack\n", 3, "notifications.targets.a.url: required"),
        (
            "  targets:\n    a:\n      kind: slack\n      url: ftp://x\n",
            5,
            "a.url: an http:// or https:// URL",
        ),
        (
            "  targets:\n    a:\n      kind: webhook\n      url: ${env:COSTSPAN_TEST_UNSET}\n",
            5,
            "environment variable COSTSPAN_TEST_UNSET is not set",
        ),
        (
            "  targets:\n    a:\n      kind: webhook\n      url: http://x\n      events: [budget]\n",
            6,
            "'budget' is not one of budget_threshold, anomaly",
        ),
        ("  targets: {}\n", 2, "notifications.targets: a mapping"),
        ("  targets:\n    a: {kind: slack, url: 'http://x'}\n  max_attempts: 0\n", 4, "max_attempts"),
        ("  targets:\n    a: {kind: slack, url: 'http://x', retries: 3}\n", 3, "retries: unknown key"),
        (
            "  targets:\n    a:\n      kind: slack\n      url: http://x\n      budgets: [serach]\n",
            6,
            "notifications.targets.a.budgets: no budget named 'serach'",
        ),
    ],
)
def test_configuration_mistakes_name_the_file_and_line(tmp_path, section, line, message):
    config = tmp_path / "costspan.yaml"
    config.write_text("budgets: [{name: search, amount: 10, period: day}]\nnotifications:\n" + section)
    with pytest.raises(ConfigFileError) as caught:
        load_config(config)
    assert str(caught.value).startswith(f"{config}:{line + 1}:"), caught.value
    assert message in str(caught.value)


def test_the_event_id_is_the_budget_its_period_and_the_threshold():
    a, b = from_budget_event(crossing("90")), from_budget_event(crossing("100"))
    assert a.id != b.id and a.id == from_budget_event(crossing("90")).id
    assert from_budget_event(BudgetEvent(**{**crossing().__dict__, "projected_usd": None})).facts[2] == (
        "Projected",
        "n/a",
    )


def test_an_anomaly_becomes_a_notification_with_its_explanation():
    from costspan.collector.answers.anomalies import AnomalyEvent

    event = AnomalyEvent(
        "a1b2",
        "level_shift",
        "hourly",
        "feature",
        "summaries",
        datetime(2026, 3, 20, 14, tzinfo=UTC),
        Decimal("60.5"),
        Decimal("472.5"),
        Decimal("412"),
        9.5,
        "feature=summaries +$412 (87%); prompt_version v7, first seen 14:02",
    )
    n = from_anomaly_event(event)
    assert n.id == "anomaly:a1b2" and n.kind == ANOMALY
    assert n.title == "Anomaly: level shift (feature=summaries), $412.00"
    assert n.text.startswith("feature=summaries +$412")
    assert ("Expected", "$60.50") in n.facts and ("Observed", "$472.50") in n.facts
    assert n.data["impact_usd"] == "412" and n.data["start"] == "2026-03-20T14:00:00+00:00"
    org = from_anomaly_event(AnomalyEvent(**{**event.__dict__, "dimension": "org", "value": ""}))
    assert org.title == "Anomaly: level shift (whole organisation), $412.00"
