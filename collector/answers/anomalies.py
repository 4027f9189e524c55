"""Unusual spend, explained: anomalies of the organisation's and each scope's spend, hourly and daily.

:func:`scan` reads the stored calls (through :mod:`.spend`, by way of :mod:`._anomaly_series`), finds the
episodes that depart from a seasonal robust baseline (:mod:`._anomaly_detect`) and explains each
(:mod:`._anomaly_explain`). :class:`AnomalyJob` keeps the ``anomalies`` answer table current in a running
collector: an anomaly keeps its id while it lasts and across runs and restarts, is ``open`` while it persists
and ``closed`` (with its end) when it stops; each newly opened one is handed to a ``notify`` callable as an
:class:`AnomalyEvent`. ``costspan anomalies`` prints a scan of the stored calls.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from prometheus_client.core import GaugeMetricFamily, Metric

from ._anomaly_detect import (
    COST_FAMILY,
    CUT_SHORT_FAMILY,
    DAILY,
    HOURLY,
    KINDS,
    NOT_ENOUGH_DATA,
    UNPRICED_FAMILY,
    AnomalySettings,
    Episode,
    detect,
)
from ._anomaly_explain import Explanation, change_usd, explain, onset, render
from ._anomaly_series import (
    BILLED,
    COST,
    CUT_SHORT,
    ORG,
    UNPRICED,
    SeriesCache,
    dollars,
    hour_index,
    hour_start,
)

__all__ = ["KINDS", "Anomaly", "AnomalyEvent", "AnomalyJob", "AnomalySettings", "ScanResult", "scan"]

log = logging.getLogger("costspan.answers")
TABLE = "anomalies"
RETENTION = timedelta(days=90)  # closed anomalies are kept this long in the table
# an anomaly found again this soon after it closed continues it (same id, not notified again)
REOPEN = {"hourly": timedelta(hours=12), "daily": timedelta(days=2)}
LASTING_KINDS = ("level_shift", "new_model", "new_customer", "new_value")
MAX_EXPLAINED = 50  # anomalies whose contributors a run may look up (the largest first)
DEFAULT_SETTINGS = AnomalySettings()
_FAMILY = {"unpriced_surge": UNPRICED_FAMILY, "billed_failures": CUT_SHORT_FAMILY}


@dataclass(frozen=True)
class Anomaly:
    """One row of the ``anomalies`` table (see its schema in costspan.exporters.answer_tables)."""

    id: str
    kind: str
    grain: str
    dimension: str
    value: str
    start: datetime
    end: datetime | None
    last_seen: datetime  # the end of its last anomalous step
    status: str  # open, closed
    expected_usd: Decimal
    observed_usd: Decimal
    impact_usd: (
        Decimal  # observed - expected; for unpriced and cut-short calls, their excess at the cost per call
    )
    expected_calls: float
    observed_calls: int
    score: float
    baseline: str
    explanation: str
    volume_usd: Decimal | None = None
    tokens_per_call_usd: Decimal | None = None
    cache_usd: Decimal | None = None
    price_usd: Decimal | None = None
    split_method: str | None = None
    contributors: list[dict[str, Any]] = field(default_factory=list)
    first_seen: list[dict[str, Any]] = field(default_factory=list)
    detected_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def family(self) -> str:
        return _FAMILY.get(self.kind, COST_FAMILY)

    @property
    def scope(self) -> str:
        return "org" if self.dimension == ORG else f"{self.dimension}={self.value}"


@dataclass(frozen=True)
class AnomalyEvent:
    """A newly opened anomaly, as a notification carries it."""

    id: str
    kind: str
    grain: str
    dimension: str
    value: str
    start: datetime
    expected_usd: Decimal
    observed_usd: Decimal
    impact_usd: Decimal
    score: float
    explanation: str

    @classmethod
    def of(cls, anomaly: Anomaly) -> AnomalyEvent:
        return cls(**{name: getattr(anomaly, name) for name in cls.__dataclass_fields__})


@dataclass
class ScanResult:
    anomalies: list[Anomaly]
    enough_data: bool  # False: no scope had a baseline ("not enough data")
    history_hours: int  # hours from the first stored call to now


def anomaly_id(grain: str, family: str, dimension: str, value: str, start: datetime) -> str:
    """The same anomaly gets the same id in every run."""
    key = f"{grain}|{family}|{dimension}|{value}|{start.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def scan(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    settings: AnomalySettings = DEFAULT_SETTINGS,
    cache: SeriesCache | None = None,
    scan_hours: int = HOURLY.scan,
    explanations: dict[tuple[str, int], Explanation] | None = None,
    explain_calls: bool = True,
    explain_by: tuple[str, ...] | None = None,
    explain_top: int = MAX_EXPLAINED,
) -> ScanResult:
    """The anomalies of the last ``scan_hours`` complete hours (and days) before ``now``. ``cache`` keeps the
    series between runs; ``explanations`` keeps the contributors of anomalies already explained. The
    contributors (a read of the calls each) are looked up for the ``explain_top`` largest anomalies; the
    others are explained by their own figures alone."""
    now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    now_hour = hour_index(now)
    lookback = settings.baseline_weeks * 168 + max(scan_hours, 7 * 24) + 24
    if cache is None:
        cache = new_cache(settings, lookback)
    series = cache.refresh(con, now_hour, scan_hours)
    org = series.get((ORG, ""))
    history_start = org.first_active() if org is not None else None
    if history_start is None:
        return ScanResult([], False, 0)
    hourly = replace(HOURLY, scan=scan_hours)
    daily = replace(DAILY, scan=max(1, -(-scan_hours // 24)))
    first_day = -(-history_start // 24)  # the first whole day
    episodes: list[Episode] = []
    enough = False
    for scope, hours in series.items():
        found, based = detect(scope, hours, hourly, now_hour - 1, history_start, settings)
        days_found, days_based = detect(scope, hours.daily(), daily, now_hour // 24 - 1, first_day, settings)
        episodes += found + days_found
        enough = enough or based or days_based
    episodes.sort(key=_impact, reverse=True)
    anomalies = []
    for rank, episode in enumerate(episodes):
        key = (_id(episode), onset(episode)[1])  # the onset's explanation holds once the onset is over
        looked_up = explanations.get(key) if explanations is not None else None
        con_for = con if explain_calls and rank < explain_top and looked_up is None else None
        children = explain_by or settings.dimensions
        explanation = explain(con_for, episode, children, history_start, settings.baseline_weeks)
        if looked_up is not None:  # contributors and first-seen facts of the onset, as found before
            explanation = replace(
                explanation, contributors=looked_up.contributors, first_seen=looked_up.first_seen
            )
            explanation = replace(explanation, text=render(episode, explanation))
        elif con_for is not None and explanations is not None:
            explanations[key] = explanation
        anomalies.append(_anomaly(episode, explanation, now))
    return ScanResult(anomalies, enough, now_hour - history_start)


def new_cache(settings: AnomalySettings, lookback_hours: int) -> SeriesCache:
    return SeriesCache(
        dimensions=settings.dimensions,
        lookback_hours=lookback_hours,
        min_cost_usd=settings.min_impact_usd / 4,
        min_calls=max(1, settings.min_calls // 2),
        max_scopes_per_dimension=settings.max_scopes_per_dimension,
    )


def _impact(episode: Episode) -> float:
    observed = episode.observed.sum(axis=1)
    expected = episode.expected.sum(axis=1)
    if episode.family == COST_FAMILY:
        return float(observed[COST] - expected[COST])
    measure = UNPRICED if episode.family == UNPRICED_FAMILY else CUT_SHORT
    per_call = observed[COST] / observed[BILLED] if observed[BILLED] > 0 else 0.0
    return float((observed[measure] - expected[measure]) * per_call)


def _id(episode: Episode) -> str:
    dimension, value = episode.scope
    return anomaly_id(episode.grain.name, episode.family, dimension, value, _time(episode, episode.start))


def _time(episode: Episode, step: int) -> datetime:
    return hour_start(step * episode.grain.hours)


def _anomaly(episode: Episode, explanation: Explanation, now: datetime) -> Anomaly:
    observed = episode.observed.sum(axis=1)
    expected = episode.expected.sum(axis=1)
    dimension, value = episode.scope
    if episode.family == COST_FAMILY:
        impact = change_usd(observed, expected)
        calls = (float(expected[BILLED]), int(observed[BILLED]))
    else:
        impact = dollars(round(_impact(episode)))
        measure = UNPRICED if episode.family == UNPRICED_FAMILY else CUT_SHORT
        calls = (float(expected[measure]), int(observed[measure]))
    parts = explanation.parts
    last_seen = _time(episode, episode.last + 1)
    return Anomaly(
        id=_id(episode),
        kind=episode.kind,
        grain=episode.grain.name,
        dimension=dimension,
        value=value,
        start=_time(episode, episode.start),
        end=None if episode.open else last_seen,
        last_seen=last_seen,
        status="open" if episode.open else "closed",
        expected_usd=dollars(float(expected[COST])),
        observed_usd=dollars(int(observed[COST])),
        impact_usd=impact,
        expected_calls=calls[0],
        observed_calls=calls[1],
        score=round(float(np.clip(episode.score, -1e6, 1e6)), 2),
        baseline=episode.basis,
        explanation=explanation.text,
        volume_usd=parts.volume if parts else None,
        tokens_per_call_usd=parts.tokens_per_call if parts else None,
        cache_usd=parts.cache if parts else None,
        price_usd=parts.price if parts else None,
        split_method=parts.method if parts else None,
        contributors=[asdict(c) for c in explanation.contributors],
        first_seen=[asdict(f) for f in explanation.first_seen],
        detected_at=now,
        updated_at=now,
    )


def merge(
    previous: list[Anomaly], found: list[Anomaly], now: datetime
) -> tuple[list[Anomaly], list[Anomaly]]:
    """The table's rows after a run, and the anomalies opened by it. A found anomaly continues a stored one
    (or one found earlier in the run) of the same grain, kind of measure and scope that is open, or that ended
    less than ``REOPEN`` before it began: it keeps that one's id, start and detection time, and is not opened
    again (a level that dips at night and comes back in the morning is one anomaly, notified once); its
    figures are its own. A stored open one that was not found again has closed."""
    pool: list[tuple[Anomaly, bool]] = [(p, False) for p in previous]  # (row, found in this run)
    known = {p.id for p in previous}
    for anomaly in sorted(found, key=lambda a: a.start):
        key = (anomaly.grain, anomaly.family, anomaly.dimension, anomaly.value)
        at = next(
            (
                i
                for i, (p, _) in enumerate(pool)
                if (p.grain, p.family, p.dimension, p.value) == key
                and (
                    p.status == "open"
                    or p.start == anomaly.start
                    or (p.end is not None and p.end >= anomaly.start - REOPEN[anomaly.grain])
                )
            ),
            None,
        )
        if at is None:
            pool.append((anomaly, True))
            continue
        match = pool[at][0]
        start = min(match.start, anomaly.start)
        # what it was found to be stays: a level that shifted, or a newcomer, is that still when it comes back
        kind = match.kind if match.kind in LASTING_KINDS else anomaly.kind
        continued = replace(anomaly, id=match.id, kind=kind, start=start, detected_at=match.detected_at)
        pool[at] = (continued, True)
    rows: list[Anomaly] = []
    for p, touched in pool:
        if touched:
            rows.append(p)
        elif p.status == "open":
            rows.append(replace(p, status="closed", end=p.last_seen, updated_at=now))
        elif (p.end or p.last_seen) >= now - RETENTION:
            rows.append(p)
    opened = [row for row in rows if row.status == "open" and row.id not in known]
    rows.sort(key=lambda a: (a.start, a.grain, a.dimension, a.value, a.kind))
    return rows, opened


def to_table(anomalies: list[Anomaly]) -> pa.Table:
    from costspan.exporters.answer_tables import SCHEMAS

    rows = [asdict(a) for a in anomalies]
    return pa.Table.from_pylist(rows, schema=SCHEMAS[TABLE])


def from_table(table: pa.Table) -> list[Anomaly]:
    return [Anomaly(**row) for row in table.to_pylist()]


class AnomalyJob:
    """The collector's anomaly job: every run scans the recent hours (against the series it keeps), writes
    the ``anomalies`` table, keeps the gauges, and calls ``notify`` once per newly opened anomaly (a failing
    ``notify`` is logged; the anomaly is still stored)."""

    def __init__(
        self,
        data_dir: str | Path,
        settings: AnomalySettings = DEFAULT_SETTINGS,
        notify: Callable[[AnomalyEvent], None] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.notify = notify
        lookback = settings.baseline_weeks * 168 + 8 * 24
        self.cache = new_cache(settings, lookback)
        self.explanations: dict[tuple[str, int], Explanation] = {}
        self.rows: list[Anomaly] | None = None
        self.enough_data = False

    def run(self, con: duckdb.DuckDBPyConnection, now: datetime) -> None:
        from costspan.exporters import answer_tables

        if self.rows is None:  # what earlier runs (before a restart too) stored
            self.rows = from_table(answer_tables.read(self.data_dir, TABLE))
        result = scan(con, now, self.settings, self.cache, HOURLY.scan, self.explanations)
        self.enough_data = result.enough_data
        naive_now = now.astimezone(UTC).replace(tzinfo=None)
        rows, opened = merge(self.rows, result.anomalies, naive_now)
        answer_tables.write(self.data_dir, TABLE, to_table(rows))
        self.rows = rows
        live = {a.id for a in result.anomalies}
        self.explanations = {k: v for k, v in self.explanations.items() if k[0] in live}
        for anomaly in opened:
            if self.notify is None:
                break
            try:
                self.notify(AnomalyEvent.of(anomaly))
            except Exception:
                log.exception("answers: the notification of anomaly %s failed", anomaly.id)

    def metrics(self) -> Iterable[Metric]:
        level = GaugeMetricFamily(
            "costspan_anomaly_open",
            "Each open anomaly's impact in USD: observed minus expected spend since it began",
            labels=["kind", "grain", "scope", "value"],
        )
        count = GaugeMetricFamily("costspan_anomalies_open", "Open anomalies, by kind", labels=["kind"])
        counts = dict.fromkeys(KINDS, 0)
        for a in self.rows or ():
            if a.status == "open":
                level.add_metric(
                    [a.kind, a.grain, "org" if a.dimension == ORG else a.dimension, a.value],
                    float(a.impact_usd),
                )
                counts[a.kind] = counts.get(a.kind, 0) + 1
        for kind, n in counts.items():
            count.add_metric([kind], n)
        yield level
        yield count


def anomaly_job(config: Any, notify: Callable[[AnomalyEvent], None] | None = None) -> Any:
    """The runner's job for a collector configuration, or None when anomalies are turned off."""
    from costspan.pricing import data_dir

    from .runner import Job

    settings: AnomalySettings = getattr(config, "anomalies", None) or AnomalySettings()
    if not settings.enabled:
        return None
    job = AnomalyJob(data_dir(config.data_dir), settings, notify)
    return Job("anomalies", settings.interval_s, job.run, job.metrics)


# ---- costspan anomalies


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "anomalies",
        help="unusual spend in the stored calls, explained (hourly and daily, by scope)",
        description=(
            "Scan the stored calls for anomalies of spend, unpriced and cut-short calls, hourly and daily, "
            "for the organisation and each value of the dimensions, against the same hour of the week in the "
            "past weeks; each with its explanation."
        ),
    )
    parser.add_argument("--since", default="7d", help="how far back to look: 48h, 7d, 2w (default 7d)")
    parser.add_argument(
        "--by", metavar="DIM", help="only this dimension's scopes (team, feature, model, tag.<key> ...)"
    )
    parser.add_argument(
        "--until",
        help="scan as of this UTC time, e.g. 2026-03-17T13:00 (default: now), to look back at a past day",
    )
    parser.add_argument(
        "--min-impact",
        metavar="USD",
        default=str(DEFAULT_SETTINGS.min_impact_usd),
        help="the smallest anomaly reported, in USD over expected (default %(default)s)",
    )
    parser.add_argument(
        "--min-calls",
        type=int,
        default=DEFAULT_SETTINGS.min_calls,
        help="the fewest calls an anomaly has (default %(default)s)",
    )
    parser.add_argument("--data-dir", help="data directory (default: $COSTSPAN_DATA_DIR or ./costspan-data)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.set_defaults(handler=run_command)


_COLUMNS = [
    "kind",
    "grain",
    "scope",
    "start",
    "end",
    "status",
    "expected_usd",
    "observed_usd",
    "impact_usd",
    "score",
    "explanation",
    "id",
]


def parse_since(text: str) -> int:
    """Hours in ``48h``, ``7d`` or ``2w``; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"a positive number of hours, days or weeks (48h, 7d, 2w); got {text!r}")
    return int(match.group(1)) * {"h": 1, "d": 24, "w": 168}[match.group(2)]


def run_command(args: argparse.Namespace) -> int:
    from costspan.exporters.duckdb_views import read_views
    from costspan.pricing import data_dir

    from ..sql import print_rows
    from .spend import UnknownDimension, dimension_sql

    try:
        hours = parse_since(args.since)
    except ValueError as exc:
        return _usage(f"--since: {exc}")
    try:
        if args.by:
            dimension_sql(args.by)
    except UnknownDimension as exc:
        return _usage(f"--by: {exc}")
    try:
        until = datetime.fromisoformat(args.until) if args.until else datetime.now(UTC)
    except ValueError:
        return _usage(f"--until: a time such as 2026-03-17T13:00; got {args.until!r}")
    try:
        min_impact = Decimal(args.min_impact)
        if not min_impact.is_finite() or min_impact < 0:
            raise ValueError
    except (ArithmeticError, ValueError):
        return _usage(f"--min-impact: an amount of USD, 0 or more; got {args.min_impact!r}")
    if args.min_calls < 1:
        return _usage("--min-calls: at least 1")
    directory = data_dir(args.data_dir)
    if not directory.is_dir():
        print(
            f"costspan anomalies: no data directory at {directory.resolve()} (give --data-dir)",
            file=sys.stderr,
        )
        return 2
    settings = replace(DEFAULT_SETTINGS, min_impact_usd=min_impact, min_calls=args.min_calls)
    if args.by:
        settings = replace(settings, dimensions=(args.by,))
    children = tuple(dict.fromkeys((*DEFAULT_SETTINGS.dimensions, *settings.dimensions)))
    result = read_views(
        directory, lambda con: scan(con, until, settings, scan_hours=hours, explain_by=children)
    )
    shown = [a for a in result.anomalies if not args.by or a.dimension == args.by]
    shown.sort(key=lambda a: (a.start, -a.impact_usd), reverse=True)
    if not result.enough_data:
        print(
            f"costspan anomalies: {NOT_ENOUGH_DATA}: {result.history_hours} hours of stored calls; "
            "a baseline needs 3 days (the same hour of the day) or 2 weeks (the same hour of the week)",
            file=sys.stderr,
        )
    rows = [tuple(a.scope if c == "scope" else getattr(a, c) for c in _COLUMNS) for a in shown]
    print_rows(_COLUMNS, rows, args.format)
    return 0


def _usage(message: str) -> int:
    print(f"costspan anomalies: {message}", file=sys.stderr)
    return 2
