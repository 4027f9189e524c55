"""``costspan budgets``: each budget's period, spent, remaining, percent used, projection, forecast, crossing
date, burn rates, unpriced calls and when it resets.

With ``--config`` it evaluates the configuration's budgets now, from the stored calls; without, it shows
the ``budgets`` table the running collector last wrote, and says when that was.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

_DESCRIPTION = """\
Each budget's status: its period, spent, remaining, percent used, the spend projected at the period's end
(spent + the last 24 hours' spend per hour x the time left), the forecast at the period's end (spent + the
forecast rest from the scope's daily series, with its 95% interval and method; none for a rolling budget),
when it will cross its amount at the projection's rate,
burn rates (spend per hour over the last 1h, 6h, 24h and 7d, and their ratio to the rate the budget
allows), calls that could not be priced (their cost is not in the spend), and when the period resets.
Times are in each budget's time zone. The same figures: `costspan sql "SELECT * FROM budgets"`, and every
period so far in the budget_periods view.
"""
_SHOWN_WINDOWS = ("1h", "6h", "24h", "7d")


def register(subparsers: Any) -> None:
    budgets = subparsers.add_parser(
        "budgets",
        help="each budget's spend, projection, burn rates and unpriced calls",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    budgets.add_argument(
        "--config", help="evaluate this configuration's budgets now (default: as the collector last did)"
    )
    budgets.add_argument("--data-dir", help="data directory (default: $COSTSPAN_DATA_DIR or ./costspan-data)")
    budgets.add_argument("--format", choices=("table", "csv", "json"), default="table")
    budgets.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from costspan.collector.config import ConfigFileError, load_config
    from costspan.collector.sql import print_rows
    from costspan.exporters import answer_tables
    from costspan.pricing import data_dir

    config = None
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigFileError as exc:
            print(f"costspan budgets: {exc}", file=sys.stderr)
            return 1
    directory = data_dir(args.data_dir or (config.data_dir if config else None))
    if not directory.is_dir():
        print(
            f"costspan budgets: no data directory at {directory.resolve()} (give --data-dir or "
            "$COSTSPAN_DATA_DIR: where `costspan serve` keeps its data)",
            file=sys.stderr,
        )
        return 2
    if config is not None:
        rows = _evaluate(directory, config.budgets)
        if not config.budgets:
            print(f"costspan budgets: {args.config} declares no budgets", file=sys.stderr)
    else:
        rows = answer_tables.read(directory, "budgets").to_pylist()
        if not rows:
            print(
                "costspan budgets: the collector has not evaluated budgets here yet (are budgets in its "
                "configuration?); --config FILE evaluates a configuration's budgets now",
                file=sys.stderr,
            )
        else:
            at = max(r["evaluated_at"] for r in rows).replace(tzinfo=UTC)
            age = (datetime.now(UTC) - at).total_seconds()
            print(
                f"costspan budgets: as the collector evaluated them at {at:%Y-%m-%d %H:%M:%S} UTC "
                f"({age:.0f}s ago)",
                file=sys.stderr,
            )
    names, cells = _cells(rows, args.format)
    print_rows(names, cells, args.format)
    return 0


def _evaluate(directory: Any, budgets: list[Any]) -> list[dict[str, Any]]:
    """The rows of the ``budgets`` table, evaluated now (nothing is recorded: the collector keeps that)."""
    from costspan.exporters.duckdb_views import read_views

    from .budget_forecast import BudgetForecasts
    from .budget_job import status_table
    from .budget_ledger import Ledger
    from .budget_status import BudgetStatus, evaluate
    from .forecast import Estimate

    now = datetime.now(UTC)
    Found = tuple[list[BudgetStatus], dict[str, tuple[Estimate | None, str | None]]]

    def read(con: Any) -> Found:
        statuses = evaluate(con, budgets, now)
        forecaster = BudgetForecasts()
        forecaster.refresh(con, budgets, now)
        return statuses, {s.budget.name: forecaster.estimate(s, now) for s in statuses}

    statuses, forecasts = read_views(directory, read)
    return status_table(statuses, Ledger.load(directory), forecasts).to_pylist()


def _cells(rows: list[dict[str, Any]], fmt: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    names = [
        "budget",
        "scope",
        "period",
        "limit_usd",
        "spent_usd",
        "remaining_usd",
        "percent",
        "projected_usd",
    ]
    if fmt == "table":
        names += ["forecast_usd"]
    else:
        names += [f"forecast_{bound}_usd" for bound in ("p50", "lo95", "hi95")] + ["forecast_method"]
    names += ["crosses_at", "unpriced_calls", "calls", "resets_at"]
    if fmt == "table":
        names += [f"burn_{w}" for w in _SHOWN_WINDOWS]
    else:
        names += [f"burn_{w}_{part}" for w in _SHOWN_WINDOWS for part in ("usd_per_hour", "ratio")]
    names += ["thresholds_crossed"]
    out = []
    for r in rows:
        zone = ZoneInfo(r.get("timezone") or "UTC")
        cells: list[Any] = [
            r["budget"],
            r["scope"],
            r["period"],
            r["limit_usd"],
            r["spent_usd"],
            r["remaining_usd"],
            r["used_percent"],
            r["projected_usd"] if r["projected_usd"] is not None else r["projection"],
        ]
        p50, lo, hi = (r.get(f"forecast_{bound}_usd") for bound in ("p50", "lo95", "hi95"))
        if fmt == "table":
            interval = (
                f" ({_money(lo)} to {_money(hi)}, {r['forecast_method']})"
                if lo is not None and hi is not None
                else ""
            )
            cells.append("" if p50 is None else f"{_money(p50)}{interval}")
        else:
            cells += [p50, lo, hi, r.get("forecast_method")]
        cells += [
            _local(r["crossing_at"], zone),
            r["unpriced_calls"],
            r["calls"],
            _local(r["period_end"], zone) if not r["period"].startswith("rolling") else None,
        ]
        for w in _SHOWN_WINDOWS:
            rate, ratio = r[f"burn_{w}_usd_per_hour"], r[f"burn_{w}_ratio"]
            if fmt == "table":
                cells.append("" if rate is None else f"{_money(rate)}/h ({_plain(ratio)}x)")
            else:
                cells += [rate, ratio]
        crossed = [_plain(t) + "%" for t in r["thresholds_crossed"] or ()]
        cells.append(" ".join(crossed) if fmt != "json" else crossed)
        out.append(tuple(cells))
    return names, out


def _local(moment: datetime | None, zone: ZoneInfo) -> str | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).astimezone(zone).isoformat(timespec="minutes")


def _money(value: Decimal) -> str:
    return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text
