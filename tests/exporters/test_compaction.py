"""Compaction and retention over real Parquet files, read back through the real DuckDB views."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from costspan.collector.config import ConfigFileError, load_config
from costspan.exporters.compaction import COMPACTED_PREFIX, Upkeep, compact, data_files, expire, merge
from costspan.exporters.duckdb_views import connect
from costspan.exporters.parquet import SPANS_TABLE, TABLE
from tests.exporters.test_rollups import BATCHES, CALL3, MS, T0, call, store

DAY = datetime.fromtimestamp(T0 / 1e9, UTC).date()  # 2025-10-09; the rollup tree is at 08:53
ROWS = {
    "llm_calls_all": "trace_id, span_id, duplicate_of",
    "genai_spans": "trace_id, span_id",
}


def checksum(data_dir):
    """Row count and a digest of every row of every view, in a fixed order."""
    con = connect(data_dir)
    try:
        return {
            view: con.execute(
                f"SELECT count(*), md5(string_agg(CAST(t AS VARCHAR), '|' ORDER BY {order})) FROM {view} t"
            ).fetchone()
            for view, order in ROWS.items()
        } | {
            "cost_by_agent": con.execute(
                "SELECT list(row(span_id, cost_usd, self_cost_usd) ORDER BY span_id) FROM cost_by_agent"
            ).fetchone()
        }
    finally:
        con.close()


def files(data_dir, table=TABLE):
    """The data files of a table (a merge killed while writing leaves a temporary file nobody reads)."""
    found = (data_dir / table).rglob("*.parquet")
    return sorted(str(p.relative_to(data_dir / table)) for p in found if not p.name.startswith(".tmp-"))


def fill(data_dir):
    """The rollup tree (three flushes, a re-sent call, in hour 08) and more flushes in hours 09 and 11,
    one of them stored twice as a replay after a crash would store it."""
    extra = [[call(f"e{i}", None, 3_600_000 + i * 60_000, "gpt-4o-mini", 100 + i, 10)] for i in range(4)]
    store(data_dir, [*BATCHES, *extra])
    for _ in range(2):  # a fresh process each time: the second copy is not known as a re-send
        store(data_dir, [[call("f0", None, 3 * 3_600_000, "gpt-4o", 500, 50)]])


def test_hours_then_the_day_compact_without_changing_a_row(tmp_path):
    fill(tmp_path)
    before = checksum(tmp_path)
    assert before["llm_calls_all"][0] == 6 + 4 + 1  # the replayed copy is dropped by the view
    assert len(files(tmp_path)) == 3 + 4 + 2  # one file per flush: hours 08, 09 and 11

    # during the day: past hours are compacted, the current one is not touched
    stats = compact(tmp_path, now=datetime(2025, 10, 9, 11, 30, tzinfo=UTC), grace_s=0)
    assert stats.errors == [] and stats.partitions_compacted == 3  # llm_calls 08 and 09, genai_spans 08
    kinds = [(f.split("/")[1], f.split("/")[2].split("-")[0]) for f in files(tmp_path)]
    assert kinds == [
        ("hour=08", "compacted"),
        ("hour=09", "compacted"),
        ("hour=11", "part"),
        ("hour=11", "part"),
    ]
    assert checksum(tmp_path) == before

    # the next day: the whole day is one file, hour folders gone
    compact(tmp_path, now=datetime(2025, 10, 10, 0, 30, tzinfo=UTC), grace_s=0)
    for table in (TABLE, SPANS_TABLE):
        [single] = files(tmp_path, table)
        assert single.startswith(f"date={DAY}/{COMPACTED_PREFIX}")
    assert not list(tmp_path.rglob("hour=*"))
    assert checksum(tmp_path) == before

    # compacting again changes nothing
    stats = compact(tmp_path, now=datetime(2025, 10, 10, 0, 30, tzinfo=UTC), grace_s=0)
    assert stats.partitions_compacted == 0 and checksum(tmp_path) == before


def test_a_crash_between_the_steps_leaves_a_readable_table(tmp_path):
    fill(tmp_path)
    before = checksum(tmp_path)
    day = tmp_path / TABLE / f"date={DAY}"
    # step 1 only: the merged file beside every file it merged
    stored = len(data_files(day))
    merged = merge(day, TABLE)
    assert merged is not None and len(data_files(day)) == stored + 1
    assert checksum(tmp_path) == before
    # a later merge that crashed while writing: a partial temporary file
    (day / f".tmp-{COMPACTED_PREFIX}dead.parquet").write_bytes(b"PAR1 torn")
    # step 2 in part: some sources removed
    for source in [f for f in data_files(day) if f != merged][:4]:
        source.unlink()
    assert checksum(tmp_path) == before
    # a grace period keeps sources a little longer, for queries that listed them
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC), grace_s=3600)
    assert merged.exists() and len(data_files(day)) > 1 and checksum(tmp_path) == before
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC), grace_s=0)
    assert data_files(day) == [merged] and checksum(tmp_path) == before


def test_kill_9_during_compaction(tmp_path):
    # many small files over many hours, then compaction killed at several moments, then finished
    store(tmp_path, [[call(f"{i:02x}", None, i * 20 * 60_000, "gpt-4o-mini", 10 + i, 1)] for i in range(72)])
    store(tmp_path, BATCHES)
    before = checksum(tmp_path)
    script = (
        "import sys; from datetime import datetime, UTC; from costspan.exporters.compaction import compact; "
        "compact(sys.argv[1], now=datetime(2025, 10, 12, tzinfo=UTC), grace_s=0)"
    )
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5):
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
        assert checksum(tmp_path) == before
    assert compact(tmp_path, now=datetime(2025, 10, 12, tzinfo=UTC), grace_s=0).errors == []
    assert checksum(tmp_path) == before
    assert all(COMPACTED_PREFIX in f for f in files(tmp_path))
    assert len(files(tmp_path)) == 2  # 24 hours from 08:53: two days


def test_late_spans_in_a_compacted_day(tmp_path):
    fill(tmp_path)
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC), grace_s=0)
    before = checksum(tmp_path)
    # a collector replaying its log after a long outage: a call already stored, and one that is new
    store(tmp_path, [[CALL3, call("9a", None, 42 * 60_000, "gpt-4o", 7, 7)]])
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 5 + 4 + 1 + 1
    assert con.execute("SELECT count(*) FROM llm_calls WHERE span_id = ?", [CALL3.span_id]).fetchone()[0] == 1
    con.close()
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC), grace_s=0)
    after = checksum(tmp_path)
    assert after["llm_calls_all"][0] == before["llm_calls_all"][0] + 1  # the new call only
    assert len(files(tmp_path)) == 1


def test_retention_removes_only_old_days(tmp_path):
    now = datetime(2025, 10, 9, 12, tzinfo=UTC)
    ages = (40, 31, 30, 29, 1, 0)
    store(tmp_path, [[call(f"{age:02x}", None, -age * 24 * 3_600_000, "gpt-4o-mini", 10, 1)] for age in ages])
    expired = expire(tmp_path, 30, now=now)
    # a day is removed once it ended more than 30 days ago: 40 and 31 days back
    assert expired == 2
    days = sorted(p.name for p in (tmp_path / TABLE).iterdir())
    assert days == [f"date={(now - timedelta(days=age)).date()}" for age in sorted(ages[2:], reverse=True)]
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 4
    assert expire(tmp_path, 30, now=now) == 0


def test_upkeep_runs_both_from_the_collector_configuration(tmp_path):
    config = tmp_path / "collector.yaml"
    config.write_text("exporters:\n  parquet:\n    retention_days: 30\n    compaction_interval_s: 0.5\n")
    loaded = load_config(config)
    assert (loaded.retention_days, loaded.compaction_interval_s) == (30, 0.5)
    store(tmp_path / "data", [[call(f"{i:02x}", None, i * MS, "gpt-4o-mini", 10, 1)] for i in range(3)])
    upkeep = Upkeep(tmp_path / "data", retention_days=loaded.retention_days, grace_s=0)
    stats = upkeep.run_once(now=datetime(2025, 10, 20, tzinfo=UTC))
    assert stats.partitions_compacted == 1 and stats.partitions_expired == 0
    assert upkeep.run_once(now=datetime(2025, 12, 1, tzinfo=UTC)).partitions_expired == 1


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("exporters:\n  parquet:\n    retention_days: 0\n", 3, "retention_days"),
        ("exporters:\n  parquet:\n    retention_days: seven\n", 3, "retention_days"),
        ("exporters:\n  parquet:\n    compaction_interval_s: -1\n", 3, "compaction_interval_s"),
        ("exporters:\n  parquet:\n    retention: 7\n", 3, "retention"),
    ],
)
def test_parquet_configuration_errors(tmp_path, text, line, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match=rf"bad.yaml:{line}: .*{key}"):
        load_config(path)
