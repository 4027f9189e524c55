"""The console's kept connection: the same one while the files stay as they are, a new one when they
change (a flush, a compaction, a file rewritten in place), and the rollups it reads always the files'."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from costspan.collector.console.connections import Connections
from costspan.exporters.compaction import compact
from tests.support.stored_calls import call, write_calls

DAY = datetime(2026, 3, 2, 9)


def test_a_new_connection_only_when_the_files_change(tmp_path: Path) -> None:
    write_calls(tmp_path, [call(DAY, "1.5"), call(DAY, "2")])
    connections = Connections(tmp_path)
    with connections.cursor() as con:
        first = connections._con
        assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (2,)
    with connections.cursor() as a, connections.cursor() as b:  # two pages at once
        assert connections._con is first
        assert (
            a.execute("SELECT sum(cost_usd) FROM llm_calls").fetchone()
            == b.execute("SELECT sum(cost_usd) FROM llm_calls").fetchone()
        )

    with connections.cursor() as reading:  # a page still reading while a flush adds a file
        write_calls(tmp_path, [call(DAY, "4")])
        with connections.cursor() as con:
            assert connections._con is not first
            assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (3,)
        assert reading.execute("SELECT count(*) FROM llm_calls").fetchone() == (2,)  # its files, still open

    compact(tmp_path, now=datetime(2026, 3, 4, tzinfo=UTC))  # the day merged and rolled up
    with connections.cursor() as con:
        assert con.execute("SELECT count(*) FROM llm_calls_not_rolled_up").fetchone() == (0,)
        assert con.execute(
            "SELECT sum(calls) FROM hourly_rollups WHERE dimension_set = 'all'"
        ).fetchone() == (3,)

    # a file rewritten in place, as a supersede does: the connection is made again, the rollup not used
    (day_file,) = sorted(tmp_path.glob("llm_calls/*/day-*.parquet"))
    table = pq.read_table(day_file).slice(1)
    pq.write_table(table, tmp_path / "new.parquet")
    os.replace(tmp_path / "new.parquet", day_file)
    with connections.cursor() as con:
        assert con.execute("SELECT count(*) FROM llm_calls_not_rolled_up").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (2,)
    connections.close()
