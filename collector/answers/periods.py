"""Budget periods: when a budget's current period began and when it ends, in its own time zone.

A calendar period (``day``, ``week``, ``month``) begins at local midnight in the budget's time zone: a day
at 00:00, a week on Monday at 00:00 (ISO 8601), a month on its ``reset_day`` at 00:00. The bounds are
computed on the local calendar and then turned into instants, so a day in Europe/Berlin lasts 23 hours when
the clocks go forward and 25 when they go back, and a month resetting on the 15th runs from the 15th to the
15th. A midnight that does not exist (a zone whose clocks jump at 00:00) begins the day at the first
instant that does. A ``rolling`` period is the window ending now.

Bounds are returned in UTC (aware): differences of instants in one ``ZoneInfo`` are wall-clock differences
in Python, which would make every day 24 hours long.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from .budgets import Budget

PeriodKind = Literal["day", "week", "month", "rolling"]
PERIOD_KINDS: tuple[str, ...] = ("day", "week", "month", "rolling")
CALENDAR_KINDS: tuple[str, ...] = ("day", "week", "month")
MAX_RESET_DAY = 28  # every month has it
_WINDOW = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_window(text: str) -> timedelta:
    """A rolling window such as ``24h``, ``7d``, ``90m`` or ``1d12h``; ValueError if it is not one."""
    compact = str(text).replace(" ", "")
    if not compact or _WINDOW.sub("", compact) != "":
        raise ValueError(f"a duration such as 24h, 7d, 90m or 1d12h; got {text!r}")
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in _WINDOW.findall(compact)))


def describe_window(window: timedelta) -> str:
    """``window`` as the shortest text :func:`parse_window` reads back (``1d12h``)."""
    seconds = int(window.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC."""
    # fold=0: a midnight that happens twice is its first occurrence; one that does not happen (the clocks
    # jump over it) maps, with the offset in force before the jump, to the instant of the jump itself.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def period_bounds(budget: Budget, now: datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of ``budget``'s period that contains ``now`` (aware), as aware UTC datetimes;
    ``start <= now < end``. A rolling period is ``(now - window, now)``."""
    return bounds(budget.period, now, budget.timezone, budget.reset_day, budget.window)


def bounds(
    kind: str, now: datetime, timezone: str = "UTC", reset_day: int = 1, window: timedelta | None = None
) -> tuple[datetime, datetime]:
    """:func:`period_bounds` for a period given by its parts."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    if kind == "rolling":
        if window is None:
            raise ValueError("a rolling period has a window")
        return now - window, now
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    if kind == "day":
        first, after = today, today + timedelta(days=1)
    elif kind == "week":
        first = today - timedelta(days=today.weekday())  # ISO weeks begin on Monday
        after = first + timedelta(days=7)
    elif kind == "month":
        first = today.replace(day=reset_day)
        if today.day < reset_day:
            first = _add_months(first, -1)
        after = _add_months(first, 1)
    else:
        raise ValueError(f"unknown period {kind!r}")
    start, end = local_midnight(first, zone), local_midnight(after, zone)
    # a midnight skipped by a jump can land after ``now`` only within the jump itself: not reachable
    return start, end


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return day.replace(year=index // 12, month=index % 12 + 1)  # day <= 28: exists in every month


def length(budget: Budget, now: datetime) -> timedelta:
    """How long the period containing ``now`` lasts (a rolling period: its window)."""
    start, end = period_bounds(budget, now)
    return end - start
