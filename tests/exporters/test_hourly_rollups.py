"""The hourly rollups equal the sums of the calls: before and after compaction, after late calls, after a
file is rewritten in place, with stale rollups left behind by a crash; read through the console's reader and
checked against ``costspan sql``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from costspan.collector.answers import spend, spend_rollups
from costspan.collector.console.queries import Cube
from costspan.collector.sql import read_only_query
from costspan.exporters.compaction import compact
from costspan.exporters.duckdb_views import connect
from costspan.exporters.layout import CALLS
from costspan.exporters.rollups import ROLLUPS, refresh
from tests.support.stored_calls import call, write_calls

DAY = datetime(2026, 3, 2)
NOW = datetime(2026, 3, 5, 12, 30, tzinfo=UTC)
TEAMS = ("payments", "search", None)
MODELS = ((None, "gpt-4o-mini"), ("gpt-4o-2024-08-06", "gpt-4o"), ("claude-haiku-4-5", "claude-haiku-4-5"))
STATUSES = (("priced", None), ("unknown_model", None), ("failed", "rate_limited"), ("priced", "stream_cut"))


def calls_of(day: datetime, n: int, offset: int = 0) -> list[dict]:
    """``n`` calls over a day's hours, of every team, model, pricing status and error."""
    rows = []
    for i in range(offset, offset + n):
        status, error = STATUSES[i % len(STATUSES)]
        response, request = MODELS[i % len(MODELS)]
        cost = None if status == "unknown_model" else "0" if status == "failed" else f"0.000{i % 97}3"
        rows.append(
            call(
                day + timedelta(hours=(i * 5) % 24, minutes=(i * 7) % 60, seconds=i % 59),
                cost,
                team=TEAMS[i % len(TEAMS)],
                feature=f"f{i % 4}",
                customer_id=f"c{i % 6}",
                response_model=response,
                request_model=request,
                provider="openai" if i % 2 else "anthropic",
                pricing_status=status,
                error_type=error,
                input_tokens=100 + i,
                output_tokens=i % 50,
                cache_read_tokens=i % 7,
                cache_write_tokens=i % 3,
                pricing_model=request,
                catalog_version="v1",
            )
        )
    return rows


QUESTIONS = [
    ((), None, None, None),
    (("team",), None, None, None),
    (("team", "model"), DAY, NOW.replace(tzinfo=None), None),
    (("model",), DAY + timedelta(hours=3, minutes=20), DAY + timedelta(days=1, hours=5, minutes=1), None),
    (("feature",), DAY, None, {"team": "payments"}),
    (("customer_id",), None, DAY + timedelta(days=2), {"team": ["search", "payments"]}),
    (("provider", "model"), DAY + timedelta(hours=1), DAY + timedelta(days=2, hours=7), None),
    (("environment",), None, None, {"model": "gpt-4o-mini"}),  # no set holds both
    (("model",), None, None, {"team": "search"}),
    (("user_id",), None, None, None),  # no set holds it: the calls themselves
]


def assert_equal_to_the_calls(data_dir: Path) -> None:
    con = connect(data_dir)
    try:
        for dims, since, until, where in QUESTIONS:
            rolled = spend_rollups.hourly(con, dims, since, until, where)
            assert rolled == spend.hourly(con, dims, since, until, where), (dims, since, until, where)
            assert rolled, (dims, since, until, where)  # a question with an answer
        assert_cuts_keep_every_figure(con)
        whole = (DAY + timedelta(hours=2), DAY + timedelta(days=2))
        part = (DAY + timedelta(hours=2, minutes=10), DAY + timedelta(days=2, hours=3, minutes=59))
        for bounds in (whole, part, ()):  # (the order of ties is not fixed)
            rolled_sources = sorted(spend_rollups.pricing_sources(con, *bounds), key=repr)
            assert rolled_sources == sorted(spend.pricing_sources(con, *bounds), key=repr)
    finally:
        con.close()
    # and the same figures as `costspan sql` over llm_calls (what it runs), money exact
    names, rows, _ = read_only_query(data_dir, BY_TEAM)
    assert names == ["h", "team", "n", "c"]
    assert {(h, team): (n, c) for h, team, n, c in rows} == by_team(data_dir)


BY_TEAM = (
    "SELECT strftime(date_trunc('hour', start_time), '%Y-%m-%d %H:%M:%S') AS h, team, count(*) AS n, "
    "coalesce(sum(cost_usd), 0)::DECIMAL(38, 12) AS c FROM llm_calls GROUP BY ALL"
)


def by_team(data_dir: Path) -> dict[tuple[str, str | None], tuple[int, Decimal]]:
    return {
        (r.hour.isoformat(sep=" "), r.values[0]): (r.calls, r.cost_usd) for r in _rolled(data_dir, ("team",))
    }


def assert_costspan_sql_agrees(data_dir: Path) -> None:
    """The command itself, in its own process, as a user runs it."""
    command = [sys.executable, "-m", "costspan.collector", "sql", "--data-dir", str(data_dir)]
    out = subprocess.run([*command, "--format", "json", BY_TEAM], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {(r["h"], r["team"]): (r["n"], Decimal(r["c"])) for r in rows} == by_team(data_dir)


def assert_cuts_keep_every_figure(con: Any) -> None:
    """Hours summed between cuts and days: every cut at a day or a cut is what the hours give."""
    since, until = DAY + timedelta(hours=5, minutes=30), DAY + timedelta(days=2, hours=20, minutes=10)
    cuts = [DAY + timedelta(days=1, hours=7), DAY + timedelta(days=2, hours=3)]
    bounds = sorted({since, until, *cuts, *(DAY + timedelta(days=d) for d in (1, 2))})
    for dims, where in (
        ((), None),
        (("team",), None),
        (("model",), {"team": "search"}),
        (("user_id",), None),
    ):
        hours = Cube(dims, spend.hourly(con, dims, since, until, where))
        summed = Cube(dims, spend_rollups.hourly(con, dims, since, until, where, cuts))
        assert len(summed.rows) < len(hours.rows)
        for start, end in pairwise(bounds):
            assert summed.totals(start, end) == hours.totals(start, end), (dims, start, end)
            if dims:
                assert summed.breakdown(dims[0], start, end) == hours.breakdown(dims[0], start, end)


def _rolled(data_dir: Path, dims: tuple[str, ...]) -> list[spend.HourlySpend]:
    con = connect(data_dir)
    try:
        return spend_rollups.hourly(con, dims)
    finally:
        con.close()


def rollup_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / ROLLUPS).rglob("*.parquet"))


def rows_read_raw(data_dir: Path) -> int:
    con = connect(data_dir)
    try:
        return con.execute("SELECT count(*) FROM llm_calls_not_rolled_up").fetchone()[0]
    finally:
        con.close()


def test_rollups_equal_the_calls_through_compaction_and_late_calls(tmp_path: Path) -> None:
    for d in range(3):  # three flushes a day
        for part in range(3):
            write_calls(tmp_path, calls_of(DAY + timedelta(days=d), 40, offset=part * 40))
    assert not rollup_files(tmp_path)
    assert_equal_to_the_calls(tmp_path)  # nothing rolled up yet: the calls themselves

    stats = compact(tmp_path, now=NOW)
    assert stats.rollups_written == 3  # one per compacted day
    assert rows_read_raw(tmp_path) == 0  # every call is in a rollup now
    assert_equal_to_the_calls(tmp_path)

    # late calls into a compacted day: read raw beside the day's rollup, then merged and rolled up again
    write_calls(tmp_path, calls_of(DAY + timedelta(days=1), 17, offset=500))
    assert rows_read_raw(tmp_path) == 17
    assert_equal_to_the_calls(tmp_path)
    stats = compact(tmp_path, now=NOW)
    assert stats.rollups_written == 1
    assert len(rollup_files(tmp_path)) == 3  # the replaced day's rollup is gone
    assert rows_read_raw(tmp_path) == 0
    assert_equal_to_the_calls(tmp_path)
    assert_costspan_sql_agrees(tmp_path)


def test_a_file_rewritten_in_place_is_not_read_from_its_earlier_rollup(tmp_path: Path) -> None:
    write_calls(tmp_path, calls_of(DAY, 60))
    compact(tmp_path, now=NOW)
    (day_file,) = sorted((tmp_path / CALLS).rglob("day-*.parquet"))
    # as a supersede does: the file written again with a row changed, renamed over itself
    table = pq.read_table(day_file)
    table = table.slice(1)  # a row moved elsewhere
    tmp = tmp_path / "rewritten.parquet"
    pq.write_table(table, tmp)
    os.replace(tmp, day_file)
    assert rows_read_raw(tmp_path) == 59  # its rollup is of the earlier version: not used
    assert_equal_to_the_calls(tmp_path)
    assert refresh(tmp_path) == 1
    assert len(rollup_files(tmp_path)) == 1
    assert rows_read_raw(tmp_path) == 0
    assert_equal_to_the_calls(tmp_path)


def test_rollups_left_by_a_crash_are_never_counted(tmp_path: Path) -> None:
    for part in range(2):
        write_calls(tmp_path, calls_of(DAY, 50, offset=part * 50))
    compact(tmp_path, now=NOW)
    (old,) = rollup_files(tmp_path)
    kept = tmp_path / "kept.parquet"
    shutil.copy2(old, kept)
    write_calls(tmp_path, calls_of(DAY, 9, offset=900))
    # a crash after compaction swapped the day, before its old rollup was removed and the new one written
    compact(tmp_path, now=NOW)
    shutil.copy2(kept, old)
    for rollup in rollup_files(tmp_path):
        if rollup != old:
            rollup.unlink()
    assert rows_read_raw(tmp_path) == 109  # the new day file: no rollup yet; the old one names no file
    assert_equal_to_the_calls(tmp_path)
    refresh(tmp_path)  # the next run
    assert len(rollup_files(tmp_path)) == 1 and not old.exists()
    assert rows_read_raw(tmp_path) == 0
    assert_equal_to_the_calls(tmp_path)
