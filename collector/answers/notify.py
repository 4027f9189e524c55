"""Notifications from the collector itself, for teams without Prometheus and Alertmanager: each budget
threshold crossed and each anomaly opened is posted to the configured webhooks, once per target.

    notifications:
      targets:
        finops-slack:
          kind: slack                          # Slack incoming webhook: text and blocks
          url: ${env:SLACK_WEBHOOK_URL}        # a secret: from the environment, never written anywhere
          events: [budget_threshold]           # default: every kind (budget_threshold, anomaly)
          budgets: [org, team-search]          # default: every budget (anomalies are not filtered by it)
        pager:
          kind: webhook                        # the event as generic JSON
          url: https://hooks.example.com/costspan
          headers: {authorization: "${env:HOOK_AUTH}"}
          timeout: 10s
      retry_on_failure: {initial_interval: 5s, max_interval: 5m, max_elapsed_time: 24h}
      max_attempts: 50

Delivery goes through an outbox on disk (``<data dir>/.storage/notifications/<target>/``): an event is
written there, durably, before anything is sent, one file per target, so a restart loses none; a sent
one's file is replaced by a marker of its id, so a restart or the same event raised again repeats none
(the one window left: the collector dies after the target took the event and before the marker is
written; the event's ``id``, also sent as the ``Idempotency-Key`` header, lets a receiver drop that
repeat). A target that is down or answers 408, 425, 429 or 5xx is retried with exponential backoff (or
after its ``Retry-After``); another refusal, ``max_attempts`` attempts or ``max_elapsed_time`` without
success drop the event, counted and logged. One thread sends; the budget and anomaly jobs only write the
outbox, and ingest never touches it.

``/metrics``: ``costspan_notifications_total{target, outcome}`` (``delivered``, ``failed_attempt``,
``dropped``) and ``costspan_notifications_outbox_events{target}`` (events waiting). Logs name the target,
never its URL or headers (a Slack webhook's URL is its secret).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from costspan.collector.queued_exporter import RetrySettings

from ._anomaly_series import ORG  # the organisation's scope dimension (its value is "")

log = logging.getLogger("costspan.notifications")

BUDGET_THRESHOLD = "budget_threshold"
ANOMALY = "anomaly"
EVENT_KINDS = (BUDGET_THRESHOLD, ANOMALY)
TARGET_KINDS = ("slack", "webhook")
FOLDER = "notifications"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_ATTEMPTS = 50
# a day of retries, at most five minutes apart: a target down overnight still gets the morning's events
DEFAULT_RETRY = RetrySettings(initial_interval=5.0, max_interval=300.0, max_elapsed_time=86400.0)
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
# markers of sent events are kept this long: longer than any budget period, so none is sent twice
MARKER_DAYS = 400
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][\w.-]{0,63}$")


# ---- events ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One event to tell people about. ``id`` is stable for the same event (a budget, its period and the
    threshold), so raising it again is a no-op; ``data`` is the event, JSON-ready, money as exact strings."""

    id: str
    kind: str
    time: str  # ISO 8601, UTC
    title: str
    text: str
    facts: list[tuple[str, str]] = field(default_factory=list)  # (name, value), for display
    budget: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Notification:
        return cls(**{**value, "facts": [tuple(f) for f in value.get("facts", [])]})


def _plain(value: Any) -> Any:
    """``value`` as JSON: money and other Decimals as exact strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _dollars(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"${Decimal(value).quantize(Decimal('0.01')):,}"


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def from_budget_event(event: Any) -> Notification:
    """A budget's threshold crossing (the budget job's ``BudgetEvent``) as a notification."""
    budget = getattr(event.budget, "name", event.budget)
    threshold = format(Decimal(event.threshold).normalize(), "f")
    scope = dict(event.scope or {})
    scope_text = ", ".join(f"{k}={v}" for k, v in scope.items()) or "whole organisation"
    title = f"Budget {budget} crossed {threshold}%"
    text = (
        f"{_dollars(event.spent_usd)} of {_dollars(event.limit_usd)} spent ({scope_text}); "
        f"projected {_dollars(event.projected_usd)} by {event.period_end:%Y-%m-%d %H:%M}."
    )
    data = {
        "budget": budget,
        "scope": scope,
        "period_start": event.period_start,
        "period_end": event.period_end,
        "threshold": Decimal(event.threshold),
        "crossed_at": event.crossed_at,
        "spent_usd": event.spent_usd,
        "limit_usd": event.limit_usd,
        "projected_usd": event.projected_usd,
    }
    return Notification(
        id=f"budget:{budget}:{_utc(event.period_start)}:{threshold}",
        kind=BUDGET_THRESHOLD,
        time=_utc(event.crossed_at),
        title=title,
        text=text,
        facts=[
            ("Spent", _dollars(event.spent_usd)),
            ("Limit", _dollars(event.limit_usd)),
            ("Projected", _dollars(event.projected_usd)),
            ("Scope", scope_text),
            ("Period", f"{event.period_start:%Y-%m-%d %H:%M} to {event.period_end:%Y-%m-%d %H:%M}"),
        ],
        budget=budget,
        data=_plain(data),
    )


def from_anomaly_event(event: Any) -> Notification:
    """A newly opened anomaly (the anomaly job's ``AnomalyEvent``: ``id``, ``kind``, ``grain``,
    ``dimension``, ``value``, ``start``, ``expected_usd``, ``observed_usd``, ``impact_usd``, ``score``,
    ``explanation``) as a notification; every field also goes out as data."""
    fields = asdict(event) if hasattr(event, "__dataclass_fields__") else dict(vars(event))
    dimension, value = fields.get("dimension"), fields.get("value")
    scope = f"{dimension}={value}" if dimension and dimension != ORG else "whole organisation"
    kind = str(fields.get("kind") or "spend").replace("_", " ")
    start = fields.get("start")
    when = _utc(start) if isinstance(start, datetime) else str(start or "")
    impact = fields.get("impact_usd")
    title = f"Anomaly: {kind} ({scope})"
    if impact is not None:
        title += f", {_dollars(impact)}"
    facts = [("Scope", scope), ("Since", when)]
    for name, key in (("Expected", "expected_usd"), ("Observed", "observed_usd"), ("Impact", "impact_usd")):
        if fields.get(key) is not None:
            facts.append((name, _dollars(fields[key])))
    if fields.get("grain"):
        facts.append(("Grain", str(fields["grain"])))
    ident = (
        fields.get("id") or hashlib.sha256(json.dumps(_plain(fields), sort_keys=True).encode()).hexdigest()
    )
    return Notification(
        id=f"anomaly:{ident}",
        kind=ANOMALY,
        time=when,
        title=title,
        text=str(fields.get("explanation") or ""),
        facts=facts,
        data=_plain(fields),
    )


# ---- targets and their bodies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # slack or webhook
    url: str = field(repr=False)  # may hold a secret (a Slack webhook's URL is one)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    events: frozenset[str] | None = None  # None: every kind
    budgets: frozenset[str] | None = None  # None: every budget
    timeout_s: float = DEFAULT_TIMEOUT_S

    def wants(self, notification: Notification) -> bool:
        if self.events is not None and notification.kind not in self.events:
            return False
        return not (
            self.budgets is not None
            and notification.budget is not None
            and notification.budget not in self.budgets
        )

    def body(self, notification: Notification) -> dict[str, Any]:
        return slack_body(notification) if self.kind == "slack" else webhook_body(notification)


def webhook_body(notification: Notification) -> dict[str, Any]:
    """The generic JSON body: the event's own fields, with a title and text for people."""
    return {
        "id": notification.id,
        "kind": notification.kind,
        "time": notification.time,
        "title": notification.title,
        "text": notification.text,
        "event": notification.data,
    }


def _mrkdwn(text: str) -> str:
    # Slack reads &, < and > as markup (<!channel> notifies everyone): escaped as its formatting guide says
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(notification: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the fallback shown in notifications) and Block Kit
    ``blocks``, within Slack's limits (a header's plain text 150 characters, a section's text 3000, at most
    10 fields of 2000)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": notification.title[:150]}},
    ]
    if notification.text:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(notification.text)[:3000]}}
        )
    if notification.facts:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_mrkdwn(name)}*\n{_mrkdwn(value)}"[:2000]}
                    for name, value in notification.facts[:10]
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"costspan · {_mrkdwn(notification.id)}"}],
        }
    )
    return {"text": _mrkdwn(f"{notification.title}: {notification.text}".rstrip(": ")), "blocks": blocks}


# ---- configuration --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationSettings:
    targets: tuple[Target, ...] = ()
    retry: RetrySettings = field(default_factory=lambda: DEFAULT_RETRY)
    max_attempts: int = DEFAULT_MAX_ATTEMPTS


def read_settings(reader: Any, doc: Any) -> NotificationSettings | None:
    """The ``notifications`` section, read by the configuration's reader (``reader.error`` gives
    file:line errors, ``reader.expand`` resolves ``${env:NAME}``, ``reader.duration`` reads a duration)."""
    node = reader.mapping(doc, "notifications", {"targets", "retry_on_failure", "max_attempts"})
    if node is None:
        return None
    targets_node = node.get("targets")
    if targets_node is None or not isinstance(targets_node, Mapping) or not targets_node:
        raise reader.error(node, "targets", "notifications.targets: a mapping of target name to its settings")
    targets = []
    for name in targets_node:
        where = f"notifications.targets.{name}"
        if not _TARGET_NAME.match(str(name)):
            raise reader.error(
                targets_node, name, f"{where}: a name of letters, digits, '_', '.' and '-' (up to 64)"
            )
        targets.append(_read_target(reader, targets_node, str(name), where))
    retry = RetrySettings(**asdict(DEFAULT_RETRY))
    retry_node = reader.mapping(
        node, "retry_on_failure", {"initial_interval", "max_interval", "max_elapsed_time"}
    )
    if retry_node is not None:
        for key in ("initial_interval", "max_interval", "max_elapsed_time"):
            if key in retry_node:
                value = reader.duration(retry_node, key, "notifications.retry_on_failure")
                if value <= 0:
                    raise reader.error(
                        retry_node, key, f"notifications.retry_on_failure.{key}: a positive duration"
                    )
                setattr(retry, key, value)
    attempts = node.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise reader.error(node, "max_attempts", "notifications.max_attempts: a whole number, at least 1")
    return NotificationSettings(tuple(targets), retry, attempts)


def _read_target(reader: Any, parent: Any, name: str, where: str) -> Target:
    node = reader.mapping(parent, name, {"kind", "url", "headers", "events", "budgets", "timeout"})
    if node is None:
        raise reader.error(parent, name, f"{where}: a mapping with kind and url")
    kind = node.get("kind")
    if kind not in TARGET_KINDS:
        raise reader.error(node, "kind" if "kind" in node else None, f"{where}.kind: one of slack, webhook")
    if node.get("url") is None:
        raise reader.error(parent, name, f"{where}.url: required")
    url = reader.expand(node, "url", str(node["url"]), where)
    if not re.match(r"^https?://[^/\s]+", url):
        # the message never shows the value: it may be a secret
        raise reader.error(node, "url", f"{where}.url: an http:// or https:// URL")
    headers = node.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, (str, int)) for v in headers.values()):
        raise reader.error(node, "headers", f"{where}.headers: a mapping of header name to value")
    events = _names(reader, node, "events", where, EVENT_KINDS)
    budgets = _names(reader, node, "budgets", where, None)
    timeout = reader.duration(node, "timeout", where) if "timeout" in node else DEFAULT_TIMEOUT_S
    if timeout <= 0:
        raise reader.error(node, "timeout", f"{where}.timeout: a positive duration")
    return Target(
        name=name,
        kind=str(kind),
        url=url,
        headers={str(k): reader.expand(node, "headers", str(v), where) for k, v in headers.items()},
        events=events,
        budgets=budgets,
        timeout_s=timeout,
    )


def _names(
    reader: Any, node: Any, key: str, where: str, allowed: tuple[str, ...] | None
) -> frozenset[str] | None:
    value = node.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise reader.error(node, key, f"{where}.{key}: a list of names")
    for item in value:
        if allowed is not None and item not in allowed:
            raise reader.error(node, key, f"{where}.{key}: {item!r} is not one of {', '.join(allowed)}")
    return frozenset(value)


def check_budget_names(
    reader: Any, doc: Any, settings: NotificationSettings | None, budgets: Iterable[str]
) -> None:
    """A target's ``budgets`` filter names only configured budgets (a typo would silence it)."""
    if settings is None:
        return
    known = set(budgets)
    for target in settings.targets:
        for name in sorted(target.budgets or ()):
            if name not in known:
                node = doc["notifications"]["targets"][target.name]
                raise reader.error(
                    node, "budgets", f"notifications.targets.{target.name}.budgets: no budget named {name!r}"
                )


# ---- the outbox ---------------------------------------------------------------------------------------


@dataclass
class Pending:
    """An event waiting for one target, as its outbox file holds it."""

    path: Path
    notification: Notification
    attempts: int
    first_at: float  # unix time it entered the outbox
    next_at: float  # unix time of its next attempt


def _key(notification_id: str) -> str:
    return hashlib.sha256(notification_id.encode()).hexdigest()[:40]


def _write_durably(path: Path, data: bytes) -> None:
    from costspan.exporters.files import fsync_path

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    fsync_path(tmp)
    os.replace(tmp, path)
    fsync_path(path.parent)  # the rename survives a crash


class Outbox:
    """One target's events under ``folder``: ``<key>.json`` waiting, ``<key>.sent`` / ``<key>.dropped`` the
    markers of events done with (the key is a hash of the event's id)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._prune()

    def put(self, notification: Notification, now: float) -> bool:
        """Add ``notification`` unless it was ever added; True if it was added."""
        key = _key(notification.id)
        if any((self.folder / f"{key}{suffix}").exists() for suffix in (".json", ".sent", ".dropped")):
            return False
        record = {"notification": notification.to_json(), "attempts": 0, "first_at": now, "next_at": now}
        _write_durably(self.folder / f"{key}.json", json.dumps(record).encode())
        return True

    def pending(self) -> list[Pending]:
        found = []
        for path in self.folder.glob("*.json"):
            try:
                record = json.loads(path.read_bytes())
                found.append(
                    Pending(
                        path,
                        Notification.from_json(record["notification"]),
                        int(record["attempts"]),
                        float(record["first_at"]),
                        float(record["next_at"]),
                    )
                )
            except (OSError, ValueError, KeyError, TypeError):
                log.error("notifications: unreadable outbox file %s left aside", path.name)
                os.replace(path, path.with_suffix(".unreadable"))
        return sorted(found, key=lambda p: p.first_at)

    def reschedule(self, item: Pending) -> None:
        record = {
            "notification": item.notification.to_json(),
            "attempts": item.attempts,
            "first_at": item.first_at,
            "next_at": item.next_at,
        }
        _write_durably(item.path, json.dumps(record).encode())

    def done(self, item: Pending, outcome: str) -> None:
        """Replace the waiting file by the marker of ``outcome`` (``sent`` or ``dropped``)."""
        _write_durably(item.path.with_suffix(f".{outcome}"), item.notification.id.encode())
        item.path.unlink(missing_ok=True)

    def _prune(self) -> None:
        cutoff = time.time() - MARKER_DAYS * 86400
        for path in [*self.folder.glob("*.sent"), *self.folder.glob("*.dropped")]:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                pass


# ---- delivery -----------------------------------------------------------------------------------------


class DeliveryError(Exception):
    def __init__(self, reason: str, retryable: bool, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after_s = retry_after_s


def post(target: Target, notification: Notification) -> None:
    """POST ``notification`` to ``target``; DeliveryError says whether a retry can help. The error's text
    never holds the URL (requests' own messages do)."""
    import requests

    from costspan.exporters.otlp_forward import _retry_after

    body = json.dumps(target.body(notification)).encode()
    headers = {
        "content-type": "application/json",
        "user-agent": "costspan-notifications",
        "idempotency-key": notification.id,
        **target.headers,
    }
    try:
        response = requests.post(target.url, data=body, headers=headers, timeout=target.timeout_s)
    except requests.Timeout:
        raise DeliveryError("timed out", retryable=True) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"not reachable ({type(exc).__name__})", retryable=True) from None
    if 200 <= response.status_code < 300:
        return
    retry_after = _retry_after(response.headers.get("Retry-After"))
    raise DeliveryError(f"HTTP {response.status_code}", response.status_code in RETRYABLE_HTTP, retry_after)


class Notifier(Collector):
    """Takes events (:meth:`budget_event`, :meth:`anomaly_event`, :meth:`notify`), keeps them in each
    target's outbox and delivers them on its own thread. As a prometheus-client collector it gives
    ``costspan_notifications_total{target, outcome}`` and ``costspan_notifications_outbox_events{target}``.
    """

    def __init__(
        self,
        data_dir: str | Path,
        settings: NotificationSettings,
        send: Callable[[Target, Notification], None] = post,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from costspan.exporters.layout import INTERNAL

        self.settings = settings
        self.root = Path(data_dir) / INTERNAL / FOLDER
        self.outboxes = {t.name: Outbox(self.root / t.name) for t in settings.targets}
        self._send = send
        self._clock = clock
        self.counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()  # the outbox files: the jobs add, the thread sends
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="costspan-notifications", daemon=True)
        orphans = [p.name for p in self.root.iterdir() if p.is_dir() and p.name not in self.outboxes]
        for name in orphans:
            waiting = len(list((self.root / name).glob("*.json")))
            if waiting:
                log.warning(
                    "notifications: %d events wait for target %s, which is no longer configured",
                    waiting,
                    name,
                )

    # the jobs' hooks: cheap, never raise into the job

    def budget_event(self, event: Any) -> None:
        self._take(lambda: from_budget_event(event))

    def anomaly_event(self, event: Any) -> None:
        self._take(lambda: from_anomaly_event(event))

    def _take(self, build: Callable[[], Notification]) -> None:
        try:
            self.notify(build())
        except Exception:
            log.exception("notifications: an event could not be queued")

    def notify(self, notification: Notification) -> None:
        now = self._clock()
        added = False
        with self._lock:
            for target in self.settings.targets:
                if target.wants(notification):
                    added |= self.outboxes[target.name].put(notification, now)
        if added:
            self._wake.set()

    def start(self) -> None:
        if self.settings.targets:
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the look: an event added during it wakes the next wait
            try:
                wait = self.deliver_due()
            except Exception:
                log.exception("notifications: delivery failed unexpectedly; trying again")
                wait = 5.0
            self._wake.wait(max(0.05, min(wait, 60.0)))

    def deliver_due(self) -> float:
        """Attempt every event whose turn it is; the seconds until the next one's turn."""
        next_wait = 60.0
        for target in self.settings.targets:
            outbox = self.outboxes[target.name]
            with self._lock:
                items = outbox.pending()
            for item in items:
                if self._stop.is_set():
                    return 0.0
                now = self._clock()
                if item.next_at > now:
                    next_wait = min(next_wait, item.next_at - now)
                    continue
                delay = self._attempt(target, outbox, item)
                if delay is not None:
                    next_wait = min(next_wait, delay)
        return next_wait

    def _attempt(self, target: Target, outbox: Outbox, item: Pending) -> float | None:
        """One delivery attempt; the delay before the next one, or None when it is done with."""
        try:
            self._send(target, item.notification)
        except DeliveryError as exc:
            item.attempts += 1
            self.counts[(target.name, "failed_attempt")] += 1
            retry = self.settings.retry
            age = self._clock() - item.first_at
            if (
                not exc.retryable
                or item.attempts >= self.settings.max_attempts
                or age >= retry.max_elapsed_time
            ):
                why = "refused" if not exc.retryable else f"{item.attempts} attempts over {age:.0f}s"
                log.error(
                    "notifications: target %s: event %s dropped (%s; %s)",
                    target.name,
                    item.notification.id,
                    exc.reason,
                    why,
                )
                with self._lock:
                    outbox.done(item, "dropped")
                self.counts[(target.name, "dropped")] += 1
                return None
            delay = self._backoff(item.attempts)
            if exc.retry_after_s is not None:
                delay = min(max(delay, exc.retry_after_s), retry.max_interval)
            item.next_at = self._clock() + delay
            log.warning(
                "notifications: target %s: %s; attempt %d, retrying in %.1fs",
                target.name,
                exc.reason,
                item.attempts,
                delay,
            )
            with self._lock:
                outbox.reschedule(item)
            return delay
        with self._lock:
            outbox.done(item, "sent")
        self.counts[(target.name, "delivered")] += 1
        log.info("notifications: target %s: event %s delivered", target.name, item.notification.id)
        return None

    def _backoff(self, attempts: int) -> float:
        """The OpenTelemetry Collector's exponential backoff (RetrySettings), by the attempts made so far."""
        retry = self.settings.retry
        interval = min(retry.initial_interval * retry.multiplier ** (attempts - 1), retry.max_interval)
        spread = interval * retry.randomization_factor
        return random.uniform(interval - spread, interval + spread)

    def collect(self) -> Iterable[Metric]:
        total = CounterMetricFamily(
            "costspan_notifications",
            "Notification delivery attempts by target and outcome (delivered, failed_attempt, dropped).",
            labels=["target", "outcome"],
        )
        waiting = GaugeMetricFamily(
            "costspan_notifications_outbox_events",
            "Events in a target's outbox, waiting to be delivered.",
            labels=["target"],
        )
        for target in self.settings.targets:
            for outcome in ("delivered", "failed_attempt", "dropped"):
                total.add_metric([target.name, outcome], self.counts[(target.name, outcome)])
            waiting.add_metric([target.name], len(list(self.outboxes[target.name].folder.glob("*.json"))))
        yield total
        yield waiting
