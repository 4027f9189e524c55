"""Each budget's status at an instant, from the stored calls: spent, remaining, percent used, burn rates,
the projected spend at the period's end and when the amount will be crossed.

One query reads them all (:func:`costspan.collector.answers.spend.hourly_by_scope`): the spend of every
budget's scope, and the organisation's, from the earliest instant any figure needs (the earliest period
start, seven days back for the burn rates) to now, per UTC hour; per minute over the last one to two hours
and in each hour where a window begins between hours (a period of a half-hour time zone such as
Asia/Kolkata, a rolling window, a burn window ending now). Every sum is then exact to the minute: a window
begins at the start of the minute it begins in. The rest is arithmetic in ``Decimal``.

The figures, for a period ``[start, end)`` and the evaluation instant ``now``:

- *spent*: the cost of the scope's calls since ``start``; *unpriced calls* beside it (calls that could not
  be priced cost something the spend does not show);
- *burn rate* over a window (5m, 30m, 1h, 6h, 24h, 3d, 7d): the spend in the last window per hour, and its
  ratio to the rate the budget allows (amount / period length; a rolling budget: amount / window). While
  the stored history is shorter than a window, the window is the history (none under a minute); the
  history begins with the bucket (hour, or minute) of the first call stored;
- *projected*: spent + the last 24 hours' spend per hour x the hours left in the period (a rolling budget:
  that rate x its window). With less than an hour of history there is no projection: "not enough data";
- *crossing at*: when the spend reached the amount, if it has (the bucket it happened in); else, at the
  projection's rate, when it will, if that is before the period ends (else none).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb

from .budgets import Budget
from .periods import describe_window, period_bounds
from .spend import HourlySpend, hourly_by_scope

BURN_WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
PROJECTION_WINDOW = timedelta(hours=24)
MIN_HISTORY = timedelta(hours=1)  # for a projection
NOT_ENOUGH_DATA = "not enough data"
CENT_OF_PERCENT = Decimal("0.01")
MONEY = Decimal("1E-12")  # DECIMAL(38, 12), as cost_usd
RATIO = Decimal("0.0001")
_HOUR = Decimal(3600)
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Figures:
    """The calls of a scope over a span of time."""

    calls: int = 0
    unpriced_calls: int = 0
    spent: Decimal = Decimal(0)


class Series:
    """One scope's buckets (hours, or minutes where they were asked for) with sums from every bucket to the
    end: the figures since any instant in O(log n)."""

    def __init__(self, rows: Sequence[HourlySpend]) -> None:
        self.starts = [r.hour for r in rows]  # naive UTC, as stored: compared with naive UTC moments
        self.costs = [r.cost_usd for r in rows]
        self._calls = [0] * (len(rows) + 1)
        self._unpriced = [0] * (len(rows) + 1)
        self._spent = [Decimal(0)] * (len(rows) + 1)
        for i in range(len(rows) - 1, -1, -1):
            self._calls[i] = self._calls[i + 1] + rows[i].calls
            self._unpriced[i] = self._unpriced[i + 1] + rows[i].unpriced_calls
            self._spent[i] = self._spent[i + 1] + rows[i].cost_usd

    @property
    def first(self) -> datetime | None:
        return self.starts[0].replace(tzinfo=UTC) if self.starts else None

    def _index(self, moment: datetime) -> int:
        minute = moment.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
        return bisect.bisect_left(self.starts, minute)

    def between(self, start: datetime, end: datetime | None = None) -> Figures:
        """The calls from the minute of ``start`` to that of ``end`` (or to the last one stored)."""
        i = self._index(start)
        j = self._index(end) if end is not None else len(self.starts)
        j = max(i, j)
        return Figures(
            self._calls[i] - self._calls[j],
            self._unpriced[i] - self._unpriced[j],
            self._spent[i] - self._spent[j],
        )

    def reached(self, start: datetime, amount: Decimal) -> datetime | None:
        """The start of the bucket in which the spend since ``start`` reached ``amount``."""
        total = Decimal(0)
        for i in range(self._index(start), len(self.starts)):
            total += self.costs[i]
            if total >= amount:
                return self.starts[i].replace(tzinfo=UTC)
        return None


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    evaluated_at: datetime  # aware UTC, as all times here
    period_start: datetime
    period_end: datetime  # when it resets (a rolling budget: now)
    calls: int
    unpriced_calls: int
    spent: Decimal
    remaining: Decimal  # negative: spent past the amount
    used_percent: Decimal
    allowed_per_hour: Decimal  # the rate that spends the amount in exactly the period
    burn_per_hour: dict[str, Decimal | None]  # window -> USD per hour; None: no history
    burn_ratio: dict[str, Decimal | None]  # window -> burn / allowed
    projected: Decimal | None  # None: not enough data
    projection: str  # how it was projected, or "not enough data"
    crossing_at: datetime | None


@dataclass
class SpendIndex:
    """The series of every scope asked for, from one query, and how far back the stored calls go."""

    series: dict[tuple[tuple[str, str], ...], Series]
    since: datetime
    first_call: datetime | None  # the organisation's first bucket since ``since``

    def of(self, scope: Mapping[str, str]) -> Series:
        return self.series[scope_key(scope)]

    @classmethod
    def load(
        cls,
        con: duckdb.DuckDBPyConnection,
        scopes: Iterable[Mapping[str, str]],
        now: datetime,
        boundaries: Iterable[datetime],
    ) -> SpendIndex:
        """The spend of ``scopes`` (and the organisation's) from the earliest of ``boundaries`` to now, exact
        at each boundary."""
        keys = list(dict.fromkeys([(), *(scope_key(s) for s in scopes)]))
        marks = [b.astimezone(UTC) for b in boundaries]
        since = _hour(min([*marks, now]))
        minutes_since = _hour(now) - timedelta(hours=1)  # the 5m, 30m and 1h windows, exact
        between_hours = [_hour(b) for b in marks if b != _hour(b) and _hour(b) < minutes_since]
        rows = hourly_by_scope(
            con, [dict(k) for k in keys], since, minutes_since=minutes_since, minute_hours=between_hours
        )
        series = {k: Series(r) for k, r in zip(keys, rows, strict=True)}
        return cls(series, since, series[()].first)


def boundaries(budget: Budget, now: datetime) -> list[datetime]:
    """The instants where the sums of ``budget``'s status begin."""
    start, _ = period_bounds(budget, now)
    return [start, *(now - w for w in BURN_WINDOWS.values()), now - PROJECTION_WINDOW]


def status(budget: Budget, index: SpendIndex, now: datetime) -> BudgetStatus:
    """``budget``'s status at ``now`` (aware) from ``index`` (loaded with :func:`boundaries`)."""
    now = now.astimezone(UTC)
    start, end = period_bounds(budget, now)
    series = index.of(budget.scope)
    rolling = budget.period == "rolling"
    # a call stamped past the period's end (a clock ahead) is the next period's
    figures = series.between(start) if rolling else series.between(start, end)
    length = budget.window if rolling and budget.window is not None else end - start
    allowed = budget.amount / _hours(length)
    history = now - index.first_call if index.first_call is not None else timedelta(0)
    burn: dict[str, Decimal | None] = {}
    ratio: dict[str, Decimal | None] = {}
    for name, window in BURN_WINDOWS.items():
        rate = _rate(series, now, window, history)
        burn[name] = rate.quantize(MONEY) if rate is not None else None
        ratio[name] = (rate / allowed).quantize(RATIO) if rate is not None else None
    projected: Decimal | None = None
    projection = NOT_ENOUGH_DATA
    crossing: datetime | None = None
    rate = _rate(series, now, PROJECTION_WINDOW, history) if history >= MIN_HISTORY else None
    basis = "24h" if history >= PROJECTION_WINDOW else describe_window(history // _MINUTE * _MINUTE)
    if rate is not None and rolling:
        projected = (rate * _hours(length)).quantize(MONEY)
        projection = f"the last {basis}' spend per hour x the window"
    elif rate is not None:
        projected = (figures.spent + rate * _hours(end - now)).quantize(MONEY)
        projection = f"spent + the last {basis}' spend per hour x the time left"
    if figures.spent >= budget.amount and not rolling:
        crossing = series.reached(start, budget.amount)
    elif rate is not None and rate > 0 and not rolling:
        when = now + timedelta(seconds=float((budget.amount - figures.spent) / rate * _HOUR))
        crossing = when if when < end else None
    return BudgetStatus(
        budget=budget,
        evaluated_at=now,
        period_start=start,
        period_end=end,
        calls=figures.calls,
        unpriced_calls=figures.unpriced_calls,
        spent=figures.spent.quantize(MONEY),
        remaining=(budget.amount - figures.spent).quantize(MONEY),
        used_percent=(figures.spent * 100 / budget.amount).quantize(CENT_OF_PERCENT),
        allowed_per_hour=allowed.quantize(MONEY),
        burn_per_hour=burn,
        burn_ratio=ratio,
        projected=projected,
        projection=projection,
        crossing_at=crossing,
    )


def evaluate(con: duckdb.DuckDBPyConnection, budgets: Sequence[Budget], now: datetime) -> list[BudgetStatus]:
    """Every budget's status at ``now``, from one query."""
    index = SpendIndex.load(
        con, [b.scope for b in budgets], now, [t for b in budgets for t in boundaries(b, now)]
    )
    return [status(b, index, now) for b in budgets]


def _rate(series: Series, now: datetime, window: timedelta, history: timedelta) -> Decimal | None:
    """USD per hour over the last ``window``, or over the history if that is shorter (none under a
    minute)."""
    span = min(window, history)
    if span < timedelta(minutes=1):
        return None
    return series.between(now - span).spent / _hours(span)


def _hours(span: timedelta) -> Decimal:
    return Decimal(int(span.total_seconds() * 1_000_000)) / 1_000_000 / _HOUR


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def scope_key(scope: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(scope.items()))
