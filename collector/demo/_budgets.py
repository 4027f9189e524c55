"""The demo's budgets: a configuration the demo's collector runs with, and the report's budgets section, read
from the ``budgets`` and ``budget_periods`` tables the collector's budget job writes.

The amounts are set against the demo company's spend (about 1.50 USD a day in all, half of it search's RAG
answers), so that the search team's rolling week is over its amount and has crossed every threshold, while
the organisation's month is on course.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

CONFIG = """\
# costspan demo's collector: budgets evaluated every 2 seconds (the default is a minute)
budgets:
  interval: 2s
  items:
    - {name: org, amount: 80, period: month}
    - {name: payments, scope: {team: payments}, amount: 12, period: month}
    - {name: search-7d, scope: {team: search}, amount: 2, period: {rolling: 7d}}
    - {name: support-daily, scope: {team: support}, amount: 2.50, period: day}
"""
FILE = "costspan-demo.yaml"


def write_config(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE
    path.write_text(CONFIG)
    return path


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
       coalesce(projected_usd::DECIMAL(18, 2)::VARCHAR, projection) AS projected_usd, unpriced_calls,
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
