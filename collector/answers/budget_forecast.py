"""Each budget's forecast spend at the end of its period, with 80% and 95% prediction intervals.

A budget's ``projected`` figure is a run-rate (the last 24 hours' spend per hour for the time left): quick to
react, blind to the week's rhythm. Its forecast is what :mod:`.forecast` gives any scope: the spend so far
(exact, the budget's own figure) plus the forecast of the rest of the period from the scope's daily series,
by the method its backtest picks (run-rate, linear, or weekly exponential smoothing), with intervals.

The daily series of every budget's scope come from one pass over the stored calls
(:func:`.spend.hourly_by_scope`) over the :data:`.forecast.HISTORY_DAYS` UTC days before today, read once a
UTC day, and again when the number of calls stored in those days changed (calls stored late: a backfill, a
replay; counted every ``check_every``: a quarter of an hour, or 15 runs of a job that runs more often); the
fits are
kept by :func:`.forecast.forecast_series` for as long as a series and its horizon stay the same. The forecast
of a period's rest (a simulation of future paths for the seasonal method) is made again every
:data:`REST_EVERY`, not at each run of the job: the rest shrinks by minutes between two, while the spent so
far, added to it, is the budget's figure of the run. A rolling budget has no end to forecast: none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb

from .budget_status import BudgetStatus, scope_key
from .budgets import Budget
from .forecast import HISTORY_DAYS, Estimate, day_weights, filled, forecast_series, utc_day_start
from .spend import StoredCount, cost_by_day, hourly_by_scope, naive_utc

Key = tuple[tuple[str, str], ...]
REST_EVERY = timedelta(minutes=15)


class BudgetForecasts:
    """The daily series of the budgets' scopes, read once a UTC day, and each budget's forecast from them."""

    def __init__(self, history_days: int = HISTORY_DAYS, check_every: timedelta = REST_EVERY) -> None:
        self.history_days = history_days
        self.check_every = check_every
        self.series: dict[Key, list[tuple[date, Decimal]]] = {}
        self.read_for: tuple[date, tuple[Key, ...]] | None = None  # the day and scopes the series are of
        self.reads = 0  # passes over the stored calls, for the record
        self.stored = StoredCount()  # the calls in the days the series were read from
        self.checked_at: datetime | None = None  # when they were last counted
        # budget -> (when made, the period and series day it is of, the rest's estimate, the method)
        self.rests: dict[str, tuple[datetime, tuple[object, ...], Estimate | None, str | None]] = {}

    def refresh(self, con: duckdb.DuckDBPyConnection, budgets: Sequence[Budget], now: datetime) -> None:
        """Read the series again when the UTC day, the budgets' scopes or the number of calls stored in the
        days read changed since the last read."""
        today = utc_day_start(now)
        keys = tuple(dict.fromkeys(scope_key(b.scope) for b in budgets if b.period != "rolling"))
        since = today - timedelta(days=self.history_days)
        same = self.read_for == (today.date(), keys)
        if same and self.checked_at is not None and now - self.checked_at < self.check_every:
            return
        self.checked_at = now
        if not self.stored.changed(con, since, today) and same:
            return
        self.rests.clear()  # made from the series being replaced
        hours = hourly_by_scope(con, [dict(k) for k in keys], since=since, until=today) if keys else []
        self.reads += 1
        last = today.date() - timedelta(days=1)
        self.series = {}
        for key, rows in zip(keys, hours, strict=True):
            self.series[key] = filled(cost_by_day(rows).get((), {}), last)
        self.read_for = (today.date(), keys)

    def estimate(self, status: BudgetStatus, now: datetime) -> tuple[Estimate | None, str | None]:
        """The budget's spend at its period's end (spent so far plus the forecast rest) and the method, or
        ``(None, None)``: a rolling budget, or a scope without a complete day of spend yet."""
        if status.budget.period == "rolling":
            return None, None
        of = (status.period_start, status.period_end, self.read_for)
        kept = self.rests.get(status.budget.name)
        if kept is not None and kept[1] == of and now - kept[0] < REST_EVERY:
            _, _, rest, method = kept
        else:
            rest, method = self._rest(status, now)
            self.rests[status.budget.name] = (now, of, rest, method)
        if method is None:
            return None, None
        if rest is None:  # the period ends before today does: nothing left to forecast
            return Estimate(*(status.spent,) * 5), method
        return rest.plus(status.spent), method

    def _rest(self, status: BudgetStatus, now: datetime) -> tuple[Estimate | None, str | None]:
        series = self.series.get(scope_key(status.budget.scope), [])
        end = naive_utc(status.period_end)
        weights = day_weights(naive_utc(now), naive_utc(status.period_start), end)
        forecast = forecast_series(series, max(1, len(weights)))
        if forecast.fit is None:
            return None, None
        return (forecast.total(weights) if weights else None), forecast.method
