"""Small constructed histories of stored calls for the anomaly tests: two teams' hourly calls over two weeks
and more, with a daily rhythm and a deterministic wobble, and whatever a test adds at the hours it names."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from costspan.collector.answers.anomalies import AnomalySettings
from costspan.exporters.compaction import compact
from tests.support.stored_calls import call, write_calls

START = datetime(2026, 3, 2)  # a Monday
DAYS = 15  # two weeks of history and a day: the same hour of the week has two samples
SETTINGS = AnomalySettings(
    dimensions=("team", "feature", "model", "customer_id"), min_impact_usd=Decimal("0.5"), min_calls=5
)

Extra = Callable[[datetime], Iterable[dict[str, Any]]]


def at(day: int, hour: int) -> datetime:
    return START + timedelta(days=day, hours=hour)


def usual(hour: datetime) -> list[dict[str, Any]]:
    """An hour's usual calls: search 8 (+-1) calls of $0.10, ads 6 (+-1), fewer at night."""
    h = int((hour - START) / timedelta(hours=1))
    night = hour.hour < 6
    rows = []
    for team, calls, customer in (("search", 8, "cus_1"), ("ads", 6, "cus_2")):
        n = (calls // 2 if night else calls) + (h * 7 + len(team)) % 3 - 1
        for i in range(n):
            rows.append(
                call(
                    hour + timedelta(minutes=2 * i + 1),
                    "0.10",
                    team=team,
                    feature="summaries" if i % 2 else "chat",
                    customer_id=customer,
                    prompt_key="answer",
                    prompt_version="v6",
                )
            )
    return rows


def write_hours(
    data_dir: Path,
    first: datetime,
    until: datetime,
    extra: Extra = lambda hour: (),
    replace: Callable[[datetime, dict[str, Any]], dict[str, Any]] = lambda hour, row: row,
) -> None:
    """The usual calls of the hours from ``first`` to ``until`` (each changed by ``replace``), and
    ``extra``'s."""
    rows: list[dict[str, Any]] = []
    hour = first
    while hour < until:
        rows += [replace(hour, row) for row in usual(hour)]
        rows += list(extra(hour))
        hour += timedelta(hours=1)
    write_calls(data_dir, rows)


def write_history(data_dir: Path, until: datetime) -> None:
    """The usual calls from START to ``until``, compacted as a running collector leaves past days."""
    write_hours(data_dir, START, until)
    compact(data_dir, now=until.replace(tzinfo=UTC))


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)
