"""Each budget's forecast spend at the end of its period, with 80% and 95% prediction intervals.

A budget's ``projected`` figure is a run-rate (the last 24 hours' spend per hour for the time left): quick to
react, blind to the week's rhythm. Its forecast is what :mod:`.forecast` gives any scope: the spend so far
(exact, the budget's own figure) plus the forecast of the rest of the period from the scope's daily series,
by the method its backtest picks (run-rate, linear, or weekly exponential smoothing), with intervals.

The daily series of every budget's scope come from one pass over the stored calls
(:func:`.spend.hourly_by_scope`) over the :data:`.forecast.HISTORY_DAYS` UTC days before today, read once a
UTC day (complete days do not change, and calls stored late into them wait for the next day); the fits are
kept by :func:`.forecast.forecast_series` for as long as a series and its horizon stay the same, so the
budget job's runs in between only weigh the days left. A rolling budget has no end to forecast: none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

import duckdb

from .budget_status import BudgetStatus, scope_key
from .budgets import Budget
from .forecast import HISTORY_DAYS, Estimate, day_weights, filled, forecast_series, utc_day_start
from .spend import hourly_by_scope, naive_utc

Key = tuple[tuple[str, str], ...]


class BudgetForecasts:
    """The daily series of the budgets' scopes, read once a UTC day, and each budget's forecast from them."""

    def __init__(self, history_days: int = HISTORY_DAYS) -> None:
        self.history_days = history_days
        self.series: dict[Key, list[tuple[date, Decimal]]] = {}
        self.read_for: tuple[date, tuple[Key, ...]] | None = None  # the day and scopes the series are of
        self.reads = 0  # passes over the stored calls, for the record

    def refresh(self, con: duckdb.DuckDBPyConnection, budgets: Sequence[Budget], now: datetime) -> None:
        """Read the series again when the UTC day or the budgets' scopes changed since the last read."""
        today = utc_day_start(now)
        keys = tuple(dict.fromkeys(scope_key(b.scope) for b in budgets if b.period != "rolling"))
        if self.read_for == (today.date(), keys):
            return
        since = today - timedelta(days=self.history_days)
        hours = hourly_by_scope(con, [dict(k) for k in keys], since=since, until=today) if keys else []
        self.reads += 1
        last = today.date() - timedelta(days=1)
        self.series = {}
        for key, rows in zip(keys, hours, strict=True):
            days: dict[date, Decimal] = {}
            for row in rows:
                day = row.hour.date()
                days[day] = days.get(day, Decimal(0)) + row.cost_usd
            self.series[key] = filled(days, last)
        self.read_for = (today.date(), keys)

    def estimate(self, status: BudgetStatus, now: datetime) -> tuple[Estimate | None, str | None]:
        """The budget's spend at its period's end (spent so far plus the forecast rest) and the method, or
        ``(None, None)``: a rolling budget, or a scope without a complete day of spend yet."""
        if status.budget.period == "rolling":
            return None, None
        series = self.series.get(scope_key(status.budget.scope), [])
        end = naive_utc(status.period_end)
        weights = day_weights(naive_utc(now), naive_utc(status.period_start), end)
        forecast = forecast_series(series, max(1, len(weights)))
        rest = forecast.total(weights) if weights else None
        if forecast.fit is None:
            return None, None
        if rest is None:  # the period ends before today does: nothing left to forecast
            return Estimate(*(status.spent,) * 5), forecast.method
        return rest.plus(status.spent), forecast.method
