"""The collector's budget job: every ``budgets.interval`` (default 60 s) it evaluates every budget from the
stored calls, closes the periods that ended, records the thresholds crossed (once each), writes the answer
tables ``budgets`` and ``budget_periods``, tells the notification hooks of each new crossing, and keeps
the budgets' Prometheus gauges.

A hook is any callable taking a :class:`BudgetEvent`; it runs on the answers' thread after the crossing
is stored, so a hook that fails or a collector that stops before it returns does not make the crossing
fire again (a hook that must not lose an event keeps its own queue). A hook's error is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from prometheus_client.core import GaugeMetricFamily, Metric

from costspan.exporters import answer_tables

from .budget_forecast import REST_EVERY, BudgetForecasts
from .budget_ledger import Crossing, Ledger, PeriodRow
from .budget_status import BURN_WINDOWS, BudgetStatus, boundaries, status
from .budgets import Budget, BudgetEvent
from .forecast import BOUNDS as FORECAST_BOUNDS
from .forecast import Estimate
from .runner import Job
from .spend_cache import SpendCache

log = logging.getLogger("costspan.answers")
STATUS_TABLE = "budgets"
Hook = Callable[[BudgetEvent], None]


class BudgetJob:
    def __init__(
        self,
        data_dir: str | Path,
        budgets: Sequence[Budget],
        hooks: Sequence[Hook] = (),
        interval_s: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.budgets = list(budgets)
        self.hooks = list(hooks)
        self.ledger: Ledger | None = None  # read at the first run: what fired before this process
        self.statuses: list[BudgetStatus] = []
        self.forecasts: dict[str, tuple[Estimate | None, str | None]] = {}  # budget -> estimate, method
        self.cache = SpendCache()
        # the stored days counted again every 15 runs, at most every quarter of an hour
        self.forecaster = BudgetForecasts(check_every=min(REST_EVERY, timedelta(seconds=15 * interval_s)))

    def run(self, con: duckdb.DuckDBPyConnection, now: datetime) -> list[BudgetEvent]:
        if self.ledger is None:
            self.ledger = Ledger.load(self.data_dir)
        ledger = self.ledger
        by_name = {b.name: b for b in self.budgets}
        ended = ledger.ended(now)
        closing: list[tuple[PeriodRow, Budget | None]] = []
        for row in ended:
            budget = by_name.get(row.budget)
            same = budget is not None and (budget.describe_period(), budget.describe_scope()) == (
                row.period,
                row.scope,
            )
            closing.append((row, budget if same else None))
        marks = [t for b in self.budgets for t in boundaries(b, now)]
        marks += [t for row, b in closing if b is not None for t in (row.start, row.end)]
        scopes = [b.scope for b in self.budgets]
        index = self.cache.index(con, scopes, now, marks)
        events: list[BudgetEvent] = []
        for row in ledger.rows:  # a rolling budget no longer declared: its window ends here
            if row.rolling and not row.closed and row.budget not in by_name:
                ledger.close(row, None, None, now)
        for row, budget in closing:
            figures = index.of(budget.scope).between(row.start, row.end) if budget is not None else None
            for crossing in ledger.close(row, figures, budget, now):
                assert budget is not None
                events.append(_event(budget, row, crossing, row.spent))
        statuses = [status(b, index, now) for b in self.budgets]
        self.forecaster.refresh(con, self.budgets, now)
        forecasts = {s.budget.name: self.forecaster.estimate(s, now) for s in statuses}
        for s in statuses:
            row, crossings = ledger.record(s)
            events += [_event(s.budget, row, c, s.projected) for c in crossings]
        # the crossings are stored before anyone is told of them: none is told twice
        try:
            ledger.write(self.data_dir)
            answer_tables.write(self.data_dir, STATUS_TABLE, status_table(statuses, ledger, forecasts))
        except BaseException:
            self.ledger = None  # not stored: read again next time, and these crossings found again
            raise
        self.statuses, self.forecasts = statuses, forecasts
        for event in events:
            for hook in self.hooks:
                try:
                    hook(event)
                except Exception:
                    log.exception(
                        "budgets: a notification hook failed on %s at %s%%", event.budget, event.threshold
                    )
        return events

    def metrics(self) -> Iterable[Metric]:
        return gauges(self.statuses, self.forecasts)


def budget_job(config: Any, hooks: Sequence[Hook] = ()) -> Job:
    """The job of a :class:`costspan.collector.config.CollectorConfig` with budgets."""
    from costspan.pricing import data_dir

    from .budgets import hierarchy_warnings

    for warning in hierarchy_warnings(config.budgets):
        log.warning("budgets: %s", warning)
    job = BudgetJob(data_dir(config.data_dir), config.budgets, hooks, config.budgets_interval_s)
    return Job("budgets", config.budgets_interval_s, job.run, job.metrics)


def _event(budget: Budget, row: PeriodRow, crossing: Crossing, projected: Decimal | None) -> BudgetEvent:
    return BudgetEvent(
        budget=budget.name,
        scope=dict(budget.scope),
        period_start=row.start,
        period_end=row.end,
        threshold=crossing.threshold,
        crossed_at=crossing.crossed_at,
        spent_usd=crossing.spent,
        limit_usd=row.limit,
        projected_usd=projected,
    )


def status_table(
    statuses: Sequence[BudgetStatus],
    ledger: Ledger | None = None,
    forecasts: Mapping[str, tuple[Estimate | None, str | None]] | None = None,
) -> pa.Table:
    """The ``budgets`` answer table: a row per budget."""
    rows = []
    for s in statuses:
        estimate, method = (forecasts or {}).get(s.budget.name, (None, None))
        bounds = estimate.bounds() if estimate is not None else (None,) * len(FORECAST_BOUNDS)
        b = s.budget
        row = ledger.open_row(b.name) if ledger is not None else None
        # a rolling budget's crossings: those within its window (older ones may fire again)
        since = s.period_start if b.period == "rolling" else None
        crossed = (
            sorted({c.threshold for c in row.crossings if since is None or c.crossed_at > since})
            if row is not None
            else []
        )
        rows.append(
            {
                "budget": b.name,
                "scope": b.describe_scope(),
                "parent": b.parent,
                "period": b.describe_period(),
                "timezone": b.timezone,
                "period_start": _naive(s.period_start),
                "period_end": _naive(s.period_end),
                "limit_usd": b.amount,
                "spent_usd": s.spent,
                "remaining_usd": s.remaining,
                "used_percent": s.used_percent,
                "calls": s.calls,
                "unpriced_calls": s.unpriced_calls,
                "projected_usd": s.projected,
                "projection": s.projection,
                "crossing_at": _naive(s.crossing_at) if s.crossing_at else None,
                "allowed_usd_per_hour": s.allowed_per_hour,
                **{f"burn_{w}_usd_per_hour": s.burn_per_hour[w] for w in BURN_WINDOWS},
                **{f"burn_{w}_ratio": s.burn_ratio[w] for w in BURN_WINDOWS},
                **{f"forecast_{bound}_usd": v for bound, v in zip(FORECAST_BOUNDS, bounds, strict=True)},
                "forecast_method": method,
                "thresholds": list(b.thresholds),
                "thresholds_crossed": crossed,
                "evaluated_at": _naive(s.evaluated_at),
            }
        )
    return pa.Table.from_pylist(rows, schema=answer_tables.SCHEMAS[STATUS_TABLE])


def gauges(
    statuses: Sequence[BudgetStatus],
    forecasts: Mapping[str, tuple[Estimate | None, str | None]] | None = None,
) -> Iterable[Metric]:
    """The budgets' levels, labelled ``budget`` (the alert rules use these names)."""
    if not statuses:
        return []

    def family(name: str, text: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, text, labels=["budget"])

    limit = family("costspan_budget_limit_usd", "The budget's amount for its current period")
    spent = family("costspan_budget_spent_usd", "Spent in the budget's current period")
    remaining = family("costspan_budget_remaining_usd", "Amount less spent (negative: over)")
    projected = family(
        "costspan_budget_projected_usd", "Projected spend at the period's end (absent: not enough data)"
    )
    used = family("costspan_budget_used_ratio", "Spent / amount")
    unpriced = family("costspan_budget_unpriced_calls", "Calls in the period that could not be priced")
    ends = family("costspan_budget_period_end_timestamp_seconds", "When the current period ends (unix time)")
    burn = GaugeMetricFamily(
        "costspan_budget_burn_rate",
        "Spend per hour over the window / the rate that spends the amount in exactly the period",
        labels=["budget", "window"],
    )
    forecast = GaugeMetricFamily(
        "costspan_budget_forecast_usd",
        "Forecast spend at the period's end: spent plus the forecast rest (bound: p50, lo80, hi80, lo95, "
        "hi95; absent: a rolling budget, or not enough data)",
        labels=["budget", "bound"],
    )
    # floats only here, at the edge: Prometheus has no other number
    for s in statuses:
        estimate, _ = (forecasts or {}).get(s.budget.name, (None, None))
        for bound, value in zip(FORECAST_BOUNDS, estimate.bounds() if estimate else (), strict=False):
            if value is not None:
                forecast.add_metric([s.budget.name, bound], float(value))
        name = [s.budget.name]
        limit.add_metric(name, float(s.budget.amount))
        spent.add_metric(name, float(s.spent))
        remaining.add_metric(name, float(s.remaining))
        if s.projected is not None:
            projected.add_metric(name, float(s.projected))
        used.add_metric(name, float(s.spent / s.budget.amount))
        unpriced.add_metric(name, s.unpriced_calls)
        ends.add_metric(name, s.period_end.timestamp())
        for window, ratio in s.burn_ratio.items():
            if ratio is not None:
                burn.add_metric([s.budget.name, window], float(ratio))
    return [limit, spent, remaining, projected, forecast, used, unpriced, burn, ends]


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
