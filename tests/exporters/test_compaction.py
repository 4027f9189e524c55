"""Compaction and retention over real Parquet files, read back through the real DuckDB views and through
the Hive readers of other engines (DuckDB, pyarrow, polars, pandas)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from costspan.collector.config import ConfigFileError, load_config
from costspan.exporters.compaction import Upkeep, compact, expire
from costspan.exporters.duckdb_views import connect
from costspan.exporters.files import exchange
from costspan.exporters.layout import files_in, internal, partition
from costspan.exporters.parquet import SPANS_TABLE, TABLE, encode
from tests.exporters.test_rollups import BATCHES, CALL3, MS, T0, call, store
from tests.support.readers import assert_plain_readers_agree

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
    """The data files of a dataset, as ``date=.../name``."""
    return sorted(str(p.relative_to(data_dir / table)) for p in (data_dir / table).rglob("*.parquet"))


def fill(data_dir):
    """The rollup tree (three flushes, a re-sent call, in hour 08) and more flushes in hours 09 and 11."""
    extra = [[call(f"e{i}", None, 3_600_000 + i * 60_000, "gpt-4o-mini", 100 + i, 10)] for i in range(4)]
    store(data_dir, [*BATCHES, *extra])
    store(data_dir, [[call("f0", None, 3 * 3_600_000, "gpt-4o", 500, 50)]])
    store(data_dir, [[call("f1", None, 3 * 3_600_000 + 1000, "gpt-4o", 501, 50)]])


def test_hours_then_the_day_compact_without_changing_a_row(tmp_path):
    fill(tmp_path)
    before = checksum(tmp_path)
    assert before["llm_calls_all"][0] == 6 + 4 + 2
    assert len(files(tmp_path)) == 3 + 4 + 2  # one file per flush: hours 08, 09 and 11
    assert_plain_readers_agree(tmp_path)

    # during the day: past hours are compacted, the current one is not touched
    stats = compact(tmp_path, now=datetime(2025, 10, 9, 11, 30, tzinfo=UTC))
    # llm_calls 08 and 09, genai_spans 08 (the re-sent call's duplicate is alone in its hour: renamed)
    assert stats.errors == [] and stats.partitions_compacted == 4
    assert [f.split("/")[1][:7] for f in files(tmp_path)] == ["hour-08", "hour-09", "part-11", "part-11"]
    assert checksum(tmp_path) == before
    assert_plain_readers_agree(tmp_path)

    # the next day: the whole day is one file in each dataset
    compact(tmp_path, now=datetime(2025, 10, 10, 0, 30, tzinfo=UTC))
    for table in (TABLE, SPANS_TABLE, "llm_calls_duplicates"):
        [single] = files(tmp_path, table)
        assert single.startswith(f"date={DAY}/day-")
    assert checksum(tmp_path) == before
    assert_plain_readers_agree(tmp_path)

    # compacting again changes nothing
    stats = compact(tmp_path, now=datetime(2025, 10, 10, 0, 30, tzinfo=UTC))
    assert stats.partitions_compacted == 0 and checksum(tmp_path) == before
    # nothing is left beside the datasets but the writers' empty work folders and locks
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".storage",
        "genai_spans",
        "llm_calls",
        "llm_calls_duplicates",
        "llm_calls_hourly",  # the day's rollup (costspan.exporters.rollups)
    ]
    work = tmp_path / ".storage"
    assert [p for p in work.rglob("*") if p.is_file() and p.relative_to(work).parts[0] != "locks"] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_folders_are_swapped_in_one_step_here(tmp_path):
    # where the swap is two renames, readers can miss a day for an instant: the guarantees need this
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "in-a").touch()
    assert exchange(a, b) is True
    assert [p.name for p in b.iterdir()] == ["in-a"] and not list(a.iterdir())


def test_a_crash_at_each_step_of_a_swap_leaves_exact_folders_and_the_next_run_finishes(tmp_path):
    fill(tmp_path)
    before = checksum(tmp_path)
    expected = assert_plain_readers_agree(tmp_path)
    day = partition(tmp_path, TABLE, DAY)
    sources = files_in(day)
    # killed while writing the merged file, and killed after building the new folder but before the swap:
    # a temporary file and a staging folder (with the merged file and links to the others), outside every
    # dataset
    (internal(tmp_path, "tmp") / "dead-day-x.parquet").write_bytes(b"PAR1 torn")
    staging = internal(tmp_path, "staging", TABLE) / f"{day.name}-dead"
    staging.mkdir()
    encode(pq.read_table(sources[0]), staging / "day-dead.parquet")
    for source in sources:
        os.link(source, staging / source.name)
    # killed after the swap of another dataset's day, before the old folder was removed
    spans_day = partition(tmp_path, SPANS_TABLE, DAY)
    old = internal(tmp_path, "staging", SPANS_TABLE) / f"{spans_day.name}-old"
    old.mkdir()
    for source in files_in(spans_day):
        os.link(source, old / source.name)
    assert checksum(tmp_path) == before
    assert assert_plain_readers_agree(tmp_path) == expected
    assert files_in(day) == sources

    stats = compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC))
    assert stats.errors == []
    assert [f.name[:4] for f in files_in(day)] == ["day-"]
    assert not list((tmp_path / ".storage" / "staging").rglob("*.parquet"))
    assert checksum(tmp_path) == before
    assert assert_plain_readers_agree(tmp_path) == expected


def test_kill_9_during_compaction(tmp_path):
    # many small files over many hours, then compaction killed at several moments, then finished
    store(tmp_path, [[call(f"{i:02x}", None, i * 20 * 60_000, "gpt-4o-mini", 10 + i, 1)] for i in range(72)])
    store(tmp_path, BATCHES)
    before = checksum(tmp_path)
    expected = assert_plain_readers_agree(tmp_path)
    script = (
        "import sys; from datetime import datetime, UTC; from costspan.exporters.compaction import compact; "
        "compact(sys.argv[1], now=datetime(2025, 10, 12, tzinfo=UTC))"
    )
    for delay in (0.5, 1.0, 1.5, 2.0, 2.5):
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
        assert checksum(tmp_path) == before
        assert assert_plain_readers_agree(tmp_path) == expected
    assert compact(tmp_path, now=datetime(2025, 10, 12, tzinfo=UTC)).errors == []
    assert checksum(tmp_path) == before
    assert all(f.split("/")[1].startswith("day-") for f in files(tmp_path))
    assert len(files(tmp_path)) == 2  # 24 hours from 08:53: two days


def test_late_spans_in_a_compacted_day(tmp_path):
    fill(tmp_path)
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC))
    before = checksum(tmp_path)
    # a call that is new, written after its day was compacted: a file beside the day's file
    store(tmp_path, [[call("9a", None, 42 * 60_000, "gpt-4o", 7, 7)]])
    rows, _ = assert_plain_readers_agree(tmp_path)
    assert rows == 5 + 4 + 2 + 1
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC))
    after = checksum(tmp_path)
    assert after["llm_calls_all"][0] == before["llm_calls_all"][0] + 1  # the new call only
    assert len(files(tmp_path)) == 1
    assert assert_plain_readers_agree(tmp_path) == (rows, _)


def test_an_exact_repeat_is_merged_away(tmp_path):
    # a call stored twice by writers that did not know of each other (a re-send after a restart, which the
    # dedupe window no longer remembered): compaction keeps it once
    store(tmp_path, [[CALL3]])
    store(tmp_path, [[CALL3]])
    assert assert_plain_readers_agree(tmp_path)[0] == 2
    compact(tmp_path, now=datetime(2025, 10, 10, 1, tzinfo=UTC))
    assert assert_plain_readers_agree(tmp_path)[0] == 1


def test_retention_removes_only_old_days(tmp_path):
    now = datetime(2025, 10, 9, 12, tzinfo=UTC)
    ages = (40, 31, 30, 29, 1, 0)
    store(tmp_path, [[call(f"{age:02x}", None, -age * 24 * 3_600_000, "gpt-4o-mini", 10, 1)] for age in ages])
    expired = expire(tmp_path, 30, now=now)
    # a day is removed once it ended more than 30 days ago: 40 and 31 days back
    assert expired == 2
    days = sorted(p.name for p in (tmp_path / TABLE).iterdir())
    assert not list((tmp_path / ".storage" / "trash").iterdir())
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
    upkeep = Upkeep(tmp_path / "data", retention_days=loaded.retention_days)
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
