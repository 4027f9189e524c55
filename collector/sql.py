"""``costspan sql``: read-only SQL over the stored data with DuckDB, while a collector may be writing."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

_ONLY_VIEWS = (
    "costspan sql reads only the stored data, through its views (llm_calls, genai_spans, cost_by_* ...): "
    "no other file, URL or extension"
)
_DESCRIPTION = """\
Run SQL with DuckDB over the Parquet files in the data directory. One read-only query over the views
below: statements that would change data are refused, and so is any other file, URL or extension (the
connection reads only the views' files, and its settings are locked). Views:

  llm_calls           one row per call, duplicates left out: sum(cost_usd) is the true spend
  llm_calls_all       every stored call, duplicates of another call included (duplicate_of)
  genai_spans         agent, tool, workflow and retrieval spans, and the plain spans (kind other)
                      between them and the calls beneath them
  cost_by_day         day, provider, model, team, feature: calls, tokens, cost_usd
  cost_by_trace       trace_id, root_service, start_time: calls, tokens, cost_usd
  cost_by_agent       each agent span: cost_usd of every call beneath it (nested agents included),
                      self_cost_usd of the calls whose nearest agent it is
  cost_by_workflow    the same for workflow spans
  llm_call_ancestors  each call with each stored ancestor span (depth 1: the parent)
  hourly_rollups      sums per UTC hour and dimension set (dimension_set) of the compacted files
  llm_calls_not_rolled_up
                      the calls of the other files: with hourly_rollups, every call once
  budgets             each budget's status at the collector's last evaluation (costspan budgets)
  budget_periods      every period of every budget: limit, spent, unpriced calls, thresholds crossed
  anomalies           unusual spend found by the collector, one row per anomaly, explained
                      (docs/answers.md)
"""


def register(subparsers: Any) -> None:
    sql = subparsers.add_parser(
        "sql",
        help="run read-only SQL over the stored data (llm_calls, genai_spans, cost_by_* rollups)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sql.add_argument("query", help='e.g. "SELECT provider, sum(cost_usd) FROM llm_calls GROUP BY 1"')
    sql.add_argument("--data-dir", help="data directory (default: $COSTSPAN_DATA_DIR or ./costspan-data)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sql.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from costspan.exporters.migrate import needs_migration
    from costspan.pricing import data_dir

    directory = data_dir(args.data_dir)
    if not directory.is_dir():
        # a mistyped --data-dir, or the default (relative) read from another folder: not "0 calls"
        print(
            f"costspan sql: no data directory at {directory.resolve()} (give --data-dir or "
            "$COSTSPAN_DATA_DIR: where `costspan serve` keeps its data)",
            file=sys.stderr,
        )
        return 2
    if needs_migration(directory):
        print(
            "costspan sql: some days are in an earlier storage layout and are left out; "
            "`costspan serve` moves them on its first start",
            file=sys.stderr,
        )
    try:
        names, rows, _ = read_only_query(directory, args.query)
    except QueryRefused as exc:
        print(f"costspan sql: {exc}", file=sys.stderr)
        return 2
    print_rows(names, rows, args.format)
    return 0


class QueryRefused(Exception):
    """A query that was not run, or failed: the reason, in one line (or two, with a hint)."""


def read_only_query(
    directory: Path, query: str, max_rows: int | None = None, timeout_s: float | None = None
) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """One read-only query over the views of ``directory`` (:func:`costspan.exporters.duckdb_views.connect`,
    locked to the stored files; listed again when compaction swaps one away, by
    :func:`~costspan.exporters.duckdb_views.read_views`): its column names, its rows (the first ``max_rows``
    when given) and whether more rows were left out. ``timeout_s``: the query is interrupted after that long.
    :class:`QueryRefused` for anything but one SELECT, a query that fails, or one interrupted."""
    import threading

    import duckdb

    from costspan.exporters.duckdb_views import read_views

    def read(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple[Any, ...]], bool]:
        statement = con.extract_statements(query)
        if len(statement) != 1 or statement[0].type.name != "SELECT":
            raise QueryRefused("one read-only query (SELECT, WITH ... SELECT) at a time")
        timer = threading.Timer(timeout_s, con.interrupt) if timeout_s is not None else None
        if timer is not None:
            timer.start()
        try:
            cursor = con.execute(query)
            names = [d[0] for d in cursor.description or ()]
            if max_rows is None:
                return names, cursor.fetchall(), False
            rows = cursor.fetchmany(max_rows + 1)
            return names, rows[:max_rows], len(rows) > max_rows
        finally:
            if timer is not None:
                timer.cancel()

    try:
        return read_views(directory, read)
    except duckdb.InterruptException:
        raise QueryRefused(f"the query was stopped after {timeout_s:g} s") from None
    except duckdb.PermissionException as exc:  # not a swap: a file or setting outside the views
        raise QueryRefused(f"{exc}\n{_ONLY_VIEWS}") from None
    except duckdb.Error as exc:
        raise QueryRefused(str(exc)) from None


def print_rows(names: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    """:func:`write_rows` to standard output, ending quietly when the reader stops early."""
    try:
        write_rows(names, rows, fmt, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader stopped early (`costspan sql ... | head`): nothing more to say. Python would report the
        # pipe again when it flushes stdout at exit, so stdout goes to /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def write_rows(names: list[str], rows: list[tuple[Any, ...]], fmt: str, out: TextIO) -> None:
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(names, (_json(v) for v in row), strict=True))) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(names)
        writer.writerows([[_text(v) for v in row] for row in rows])
    else:
        cells = [[_text(v) for v in row] for row in rows]
        widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
        out.write("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip() + "\n")
        for row in cells:
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
        out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def cell_text(value: Any) -> str:
    """A value as the table and CSV formats print it (money exact, no trailing zeros; null empty)."""
    return _text(value)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _text(value)  # money stays exact: a decimal string
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value
