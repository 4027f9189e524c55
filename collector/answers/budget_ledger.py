"""The budgets' ledger: every period of every budget, with the thresholds crossed in it, kept in the answer
table ``budget_periods`` (Parquet under the data directory), which is also what makes a threshold fire
once.

A threshold of a period is crossed when the spend reaches that percent of the period's limit; it is
recorded once, with when it was seen and the spend then, before anyone is told, and the table is read back
when a collector starts: no crossing is announced twice, across restarts. When a period ends its row is
closed with the final figures and keeps the limit it had then; a new row begins. A period during which no
collector ran has no row (``llm_calls`` holds its calls).

A rolling budget has one row, its window as of the last evaluation; a threshold fires again once its last
crossing has left the window (at most once per window length while the spend stays over it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from costspan.exporters import answer_tables

from .budget_status import MONEY, BudgetStatus, Figures
from .budgets import Budget

TABLE = "budget_periods"
_KEEP_ROLLING_CROSSINGS = timedelta(days=400)


@dataclass(frozen=True)
class Crossing:
    threshold: Decimal  # percent
    crossed_at: datetime  # aware UTC
    spent: Decimal


@dataclass
class PeriodRow:
    budget: str
    scope: str
    period: str  # as Budget.describe_period() said then
    start: datetime  # aware UTC
    end: datetime
    limit: Decimal
    spent: Decimal = Decimal(0)
    calls: int = 0
    unpriced_calls: int = 0
    crossings: list[Crossing] = field(default_factory=list)
    closed: bool = False
    updated_at: datetime | None = None

    @property
    def rolling(self) -> bool:
        return self.period.startswith("rolling")


class Ledger:
    def __init__(self, rows: Iterable[PeriodRow] = ()) -> None:
        self.rows = list(rows)

    @classmethod
    def load(cls, data_dir: str | Path) -> Ledger:
        """The ledger as last written under ``data_dir`` (none: empty)."""
        rows = []
        for r in answer_tables.read(data_dir, TABLE).to_pylist():
            rows.append(
                PeriodRow(
                    budget=r["budget"],
                    scope=r["scope"],
                    period=r["period"],
                    start=_aware(r["period_start"]),
                    end=_aware(r["period_end"]),
                    limit=r["limit_usd"],
                    spent=r["spent_usd"],
                    calls=r["calls"],
                    unpriced_calls=r["unpriced_calls"],
                    crossings=[
                        Crossing(c["threshold_percent"], _aware(c["crossed_at"]), c["spent_usd"])
                        for c in r["crossings"] or ()
                    ],
                    closed=bool(r["closed"]),
                    updated_at=_aware(r["updated_at"]) if r["updated_at"] is not None else None,
                )
            )
        return cls(rows)

    def write(self, data_dir: str | Path) -> None:
        answer_tables.write(data_dir, TABLE, self.table())

    def open_row(self, budget: str) -> PeriodRow | None:
        return next((r for r in self.rows if r.budget == budget and not r.closed), None)

    def ended(self, now: datetime) -> list[PeriodRow]:
        """Open calendar periods that have ended by ``now``: to be closed."""
        return [r for r in self.rows if not r.closed and not r.rolling and r.end <= now]

    def close(
        self, row: PeriodRow, figures: Figures | None, budget: Budget | None, now: datetime
    ) -> list[Crossing]:
        """Close ``row`` with its final ``figures`` (None: as last seen; its budget is no longer declared);
        thresholds that late calls carried it over are recorded now, and returned."""
        new: list[Crossing] = []
        if figures is not None:
            row.spent, row.calls, row.unpriced_calls = (
                figures.spent.quantize(MONEY),
                figures.calls,
                figures.unpriced_calls,
            )
            if budget is not None:
                new = self._cross(row, budget.thresholds, now)
        row.closed = True
        row.updated_at = now
        return new

    def record(self, status: BudgetStatus) -> tuple[PeriodRow, list[Crossing]]:
        """Bring the open row of ``status``'s budget up to date (beginning one for a new period) and record
        the thresholds newly crossed; returns the row and those crossings."""
        budget, now = status.budget, status.evaluated_at
        row = self.open_row(budget.name)
        rolling = budget.period == "rolling"
        declared = (budget.describe_scope(), budget.describe_period())
        if row is not None and (
            (row.scope, row.period) != declared or (not rolling and row.start != status.period_start)
        ):
            # the budget was declared anew (another scope or period), or its period ended unseen: it ends here
            row.closed = True
            row.updated_at = now
            row = None
        if row is None:
            row = PeriodRow(
                budget.name,
                budget.describe_scope(),
                budget.describe_period(),
                status.period_start,
                status.period_end,
                budget.amount,
            )
            self.rows.append(row)
        row.scope, row.period = budget.describe_scope(), budget.describe_period()
        row.start, row.end, row.limit = status.period_start, status.period_end, budget.amount
        row.spent, row.calls, row.unpriced_calls = status.spent, status.calls, status.unpriced_calls
        row.updated_at = now
        window = budget.window if rolling else None
        if window is not None:
            row.crossings = [c for c in row.crossings if c.crossed_at > now - _KEEP_ROLLING_CROSSINGS]
        return row, self._cross(row, budget.thresholds, now, window)

    @staticmethod
    def _cross(
        row: PeriodRow, thresholds: Iterable[Decimal], now: datetime, window: timedelta | None = None
    ) -> list[Crossing]:
        new = []
        for threshold in thresholds:
            if row.spent * 100 < threshold * row.limit:
                continue
            earlier = [c for c in row.crossings if c.threshold == threshold]
            if window is not None:
                earlier = [c for c in earlier if c.crossed_at > now - window]
            if not earlier:
                crossing = Crossing(threshold, now, row.spent)
                row.crossings.append(crossing)
                new.append(crossing)
        return new

    def table(self) -> pa.Table:
        return pa.Table.from_pylist(
            [
                {
                    "budget": r.budget,
                    "scope": r.scope,
                    "period": r.period,
                    "period_start": _naive(r.start),
                    "period_end": _naive(r.end),
                    "limit_usd": r.limit,
                    "spent_usd": r.spent,
                    "calls": r.calls,
                    "unpriced_calls": r.unpriced_calls,
                    "crossings": [
                        {
                            "threshold_percent": c.threshold,
                            "crossed_at": _naive(c.crossed_at),
                            "spent_usd": c.spent,
                        }
                        for c in r.crossings
                    ],
                    "closed": r.closed,
                    "updated_at": _naive(r.updated_at) if r.updated_at else None,
                }
                for r in sorted(self.rows, key=lambda r: (r.budget, r.start))
            ],
            schema=answer_tables.SCHEMAS[TABLE],
        )


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)
