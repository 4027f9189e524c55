"""The report's budgets section, read from the ``budgets`` and ``budget_periods`` tables the demo collector's
budget job writes (its budgets are in :mod:`._config`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO


def wait_for_evaluation(data_dir: Path, after: datetime, timeout_s: float = 60) -> bool:
    """Whether the collector evaluated its budgets after ``after`` (every call stored) within the time."""
    from costspan.exporters import answer_tables

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = answer_tables.read(data_dir, "budgets").column("evaluated_at").to_pylist()
        if rows and min(rows).replace(tzinfo=UTC) > after:
            return True
        time.sleep(0.5)
    return False


def print_budgets(data_dir: Path, out: TextIO) -> None:
    from costspan.exporters.duckdb_views import connect

    from ._report import _table

    con = connect(data_dir)
    status = con.execute(
        """SELECT budget, period, limit_usd, spent_usd, used_percent::DECIMAL(18, 2) AS percent,
       projected_usd, unpriced_calls,
       burn_24h_ratio::DECIMAL(18, 2) AS burn_24h_ratio,
       array_to_string(list_transform(thresholds_crossed, lambda t: t::DECIMAL(18, 0)::VARCHAR || '%'), ' ')
         AS crossed
FROM budgets ORDER BY budget"""
    )
    names = [d[0] for d in status.description or ()]
    print("\nBudgets (costspan budgets; every period in the budget_periods view)", file=out)
    print(_table(names, status.fetchall()), file=out)
    crossings = con.execute(
        """SELECT budget, c.threshold_percent::DECIMAL(18, 0) || '%' AS threshold,
       date_trunc('second', c.crossed_at) AS crossed_at, c.spent_usd, limit_usd
FROM budget_periods, unnest(crossings) AS u(c) ORDER BY c.crossed_at, budget, c.threshold_percent"""
    )
    names = [d[0] for d in crossings.description or ()]
    print("\nThresholds crossed (each fires once per period, also across restarts)", file=out)
    print(_table(names, crossings.fetchall()), file=out)
