"""Background upkeep of the Parquet tables: compaction of small files, and retention in days.

Compaction merges the files of a partition (one per flush: many small files) into one
``compacted-<uuid>.parquet``, without the copies of a span that a replay after a crash stored twice. It
touches only partitions that ended before the current hour, and is safe against a crash at every step and
against concurrent readers:

1. the merged file is written under a temporary name (``.tmp-...``, which readers never list), fsynced,
   renamed into the partition, and the folder fsynced. Its Parquet metadata names the files it merged
   (``costspan.sources``). A crash before the rename leaves a temporary file, removed by a later run.
2. the merged files are removed, ``grace_s`` seconds later (a later run), so that a query that listed them a
   moment before can still read them. A crash between the steps, or in the middle of step 2, leaves the
   merged file beside some of its sources: the next run removes what is left.

Between the steps a reader sees rows twice on disk. The views (:mod:`costspan.exporters.duckdb_views`) are
built for that: a partition holding exactly one compacted file is known to be free of repeated spans and is
read as is; any other partition (the current hour, one in the middle of compaction, one that received late
spans) is deduplicated by trace and span id in the query. So a query sees every row once, at every step,
and pays for deduplication only over the few partitions that are not compacted.

Retention removes whole hour partitions that ended more than ``retention_days`` days ago: the partition
folder is first renamed to a hidden name (it leaves every listing at once), then deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .files import fsync_path
from .parquet import FRESH_PREFIX, SCHEMA, SPANS_SCHEMA, SPANS_TABLE, TABLE, write_file

log = logging.getLogger(__name__)

COMPACTED_PREFIX = "compacted-"
SOURCES_KEY = b"costspan.sources"
DEFAULT_INTERVAL_S = 300.0
DEFAULT_GRACE_S = 60.0
_STALE_TMP_S = 3600.0  # a temporary file this old belongs to a writer that is gone
_HIDDEN_EXPIRED = ".expired-"

# What makes a row the same stored span: the columns compaction and the views deduplicate by. In llm_calls
# a re-sent call is stored again on purpose, marked with duplicate_of; only exact repeats are dropped.
TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    TABLE: (SCHEMA, ("trace_id", "span_id", "duplicate_of")),
    SPANS_TABLE: (SPANS_SCHEMA, ("trace_id", "span_id")),
}


def is_data_file(name: str) -> bool:
    return name.endswith(".parquet") and name.startswith((FRESH_PREFIX, COMPACTED_PREFIX))


def data_files(folder: Path) -> list[Path]:
    """The files of a partition that readers read (never temporary ones), in name order."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if is_data_file(e.name))
    except FileNotFoundError:
        return []
    return [folder / n for n in names]


def is_clean(files: list[Path]) -> bool:
    """True when a partition's files are known to hold each span once: a single compacted file."""
    return len(files) == 1 and files[0].name.startswith(COMPACTED_PREFIX)


def partitions(root: Path) -> list[tuple[datetime, Path]]:
    """(start of the hour, folder) of each partition of a table, oldest first."""
    found = []
    if not root.is_dir():
        return found
    for day in root.glob("date=*"):
        for hour in day.glob("hour=*"):
            try:
                start = datetime.strptime(f"{day.name[5:]} {hour.name[5:]}", "%Y-%m-%d %H").replace(
                    tzinfo=UTC
                )
            except ValueError:
                continue  # not ours
            found.append((start, hour))
    return sorted(found)


@dataclass
class UpkeepStats:
    partitions_compacted: int = 0
    files_merged: int = 0
    files_removed: int = 0
    partitions_expired: int = 0
    errors: list[str] = field(default_factory=list)


def merge_partition(folder: Path, table: str) -> Path | None:
    """Step 1: write one compacted file holding every span of the partition once; sources stay."""
    schema, key = TABLES[table]
    live = data_files(folder)
    superseded = _superseded(live)
    sources = [f for f in live if f.name not in superseded]
    if not sources or is_clean(sources):
        return None
    merged = _read_unique(sources, schema, key)
    metadata = {SOURCES_KEY.decode(): ",".join(f.name for f in sources)}
    return write_file(folder, f"{COMPACTED_PREFIX}{uuid.uuid4().hex}.parquet", merged, metadata)


def remove_superseded(folder: Path, grace_s: float, now_s: float | None = None) -> int:
    """Step 2: remove the files a compacted file holds, once it is ``grace_s`` seconds old."""
    now_s = time.time() if now_s is None else now_s
    removed = 0
    live = data_files(folder)
    for compacted in live:
        if not compacted.name.startswith(COMPACTED_PREFIX):
            continue
        try:
            if now_s - compacted.stat().st_mtime < grace_s:
                continue
            sources = _sources_of(compacted)
        except FileNotFoundError:
            continue  # removed meanwhile, as superseded by a newer one
        for name in sources:
            try:
                (folder / name).unlink()
                removed += 1
            except FileNotFoundError:
                pass
    for entry in os.scandir(folder):
        # temporary files of a merge or a flush that crashed
        if entry.name.startswith(".tmp-") and now_s - entry.stat().st_mtime > _STALE_TMP_S:
            Path(entry.path).unlink(missing_ok=True)
    if removed:
        fsync_path(folder)
    return removed


def compact(
    data_dir: str | Path, *, now: datetime | None = None, grace_s: float = DEFAULT_GRACE_S
) -> UpkeepStats:
    """Compact every partition that ended before the current hour, in both tables."""
    now = now or datetime.now(UTC)
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    stats = UpkeepStats()
    for table in TABLES:
        for start, folder in partitions(Path(data_dir) / table):
            if start >= current_hour:
                continue
            try:
                stats.files_removed += remove_superseded(folder, grace_s)
                before = len(data_files(folder))
                if merge_partition(folder, table) is not None:
                    stats.partitions_compacted += 1
                    stats.files_merged += before
                    stats.files_removed += remove_superseded(folder, grace_s)
            except Exception as exc:  # one unreadable partition must not stop the others
                log.exception("compaction of %s failed", folder)
                stats.errors.append(f"{folder}: {exc}")
    return stats


def expire(data_dir: str | Path, retention_days: int, *, now: datetime | None = None) -> int:
    """Remove the hour partitions of both tables that ended more than ``retention_days`` days ago."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    expired = 0
    for table in TABLES:
        root = Path(data_dir) / table
        for start, folder in partitions(root):
            if start + timedelta(hours=1) > cutoff:
                continue
            hidden = folder.with_name(f"{_HIDDEN_EXPIRED}{folder.name}-{uuid.uuid4().hex}")
            os.replace(folder, hidden)  # out of every listing at once
            fsync_path(folder.parent)
            shutil.rmtree(hidden)
            expired += 1
        if root.is_dir():
            for day in root.glob("date=*"):
                for leftover in day.glob(f"{_HIDDEN_EXPIRED}*"):  # a removal a crash interrupted
                    shutil.rmtree(leftover, ignore_errors=True)
                if not any(day.iterdir()):
                    day.rmdir()
    return expired


class Upkeep:
    """Runs compaction and retention on a background thread, every ``interval_s`` seconds."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        retention_days: int | None = None,
        grace_s: float = DEFAULT_GRACE_S,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.interval_s = interval_s
        self.retention_days = retention_days
        self.grace_s = grace_s
        self.totals = UpkeepStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="costspan-upkeep", daemon=True)

    def run_once(self, now: datetime | None = None) -> UpkeepStats:
        stats = UpkeepStats()
        if self.retention_days is not None:
            stats.partitions_expired = expire(self.data_dir, self.retention_days, now=now)
        done = compact(self.data_dir, now=now, grace_s=self.grace_s)
        stats.partitions_compacted = done.partitions_compacted
        stats.files_merged = done.files_merged
        stats.files_removed = done.files_removed
        stats.errors = done.errors
        for name in ("partitions_compacted", "files_merged", "files_removed", "partitions_expired"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
        return stats

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # keep the collector serving; the next run tries again
                log.exception("upkeep: compaction or retention failed")


def _sources_of(compacted: Path) -> list[str]:
    metadata = pq.read_schema(compacted).metadata or {}
    raw = metadata.get(SOURCES_KEY, b"").decode()
    return [name for name in raw.split(",") if is_data_file(name)]


def _superseded(live: list[Path]) -> set[str]:
    names = {f.name for f in live}
    superseded: set[str] = set()
    for f in live:
        if f.name.startswith(COMPACTED_PREFIX):
            try:
                superseded.update(n for n in _sources_of(f) if n in names)
            except FileNotFoundError:
                continue
    return superseded


def _read_unique(files: list[Path], schema: pa.Schema, key: tuple[str, ...]) -> pa.Table:
    """The rows of ``files``, each stored span once (the same choice the views make), oldest first."""
    paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        table = con.execute(
            f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false, union_by_name = true) "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY start_time) = 1 "
            "ORDER BY start_time"
        ).fetch_arrow_table()
    finally:
        con.close()
    # files written before a column existed get it as nulls; the merged file has the current schema
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
