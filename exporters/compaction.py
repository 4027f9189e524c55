"""Background upkeep of the Parquet tables: compaction of small files, and retention in days.

A collector writes one file per flush, so a busy hour holds many small files, and a query pays for every
file it opens. Compaction merges the files of each past hour of today into one ``compacted-<uuid>.parquet``
in the hour's folder, and each past day into one file in the day's folder (``date=.../compacted-*``; its
hour folders go), keeping each stored record once (a replay after a crash stores a batch twice). It never
touches the current hour, and is safe against a crash at every step and against concurrent readers:

1. the merged file is written under a temporary name (``.tmp-...``, which readers never list), fsynced,
   renamed into the folder, and the folder fsynced. Its Parquet metadata names the files it replaces
   (``costspan.sources``). A crash before the rename leaves a temporary file, removed by a later run.
2. the replaced files are removed ``grace_s`` seconds later (a later run), so that a query that listed them
   a moment before can still read them. A crash between the steps, or in the middle of step 2, leaves the
   merged file beside some of its sources: the next run removes what is left.

Between the steps a reader sees rows twice on disk. The views (:mod:`costspan.exporters.duckdb_views`) are
built for that: a group of files (a compacted day, or else an hour) that is exactly one compacted file is
known to hold each record once and is read as is; any other group (the current hour, one in the middle of
compaction, a day that received late spans) is deduplicated by trace and span id in the query. So a query
sees every row once, at every step, and pays for deduplication only over the few groups not compacted.

Retention removes whole days that ended more than ``retention_days`` days ago: the day's folder is first
renamed to a hidden name (it leaves every listing at once), then deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
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


def _files_in(folder: Path) -> list[Path]:
    try:
        names = sorted(e.name for e in os.scandir(folder) if is_data_file(e.name))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / n for n in names]


def data_files(folder: Path) -> list[Path]:
    """The files readers read in a day or hour folder (a day's own files, then its hours'); never
    temporary ones."""
    files = _files_in(folder)
    if folder.name.startswith("date="):
        for hour in sorted(folder.glob("hour=*")):
            files.extend(_files_in(hour))
    return files


def is_clean(files: list[Path]) -> bool:
    """True when a group of files is known to hold each span once: a single compacted file."""
    return len(files) == 1 and files[0].name.startswith(COMPACTED_PREFIX)


def days(root: Path) -> list[tuple[date, Path]]:
    """(UTC day, folder) of each day of a table, oldest first."""
    found = []
    for folder in root.glob("date=*") if root.is_dir() else ():
        try:
            found.append((date.fromisoformat(folder.name[5:]), folder))
        except ValueError:
            continue  # not ours
    return sorted(found)


def units(root: Path) -> list[list[Path]]:
    """The files of a table in the groups that are each either clean or deduplicated as a whole: a day
    that has been compacted into a day file is one group (with any late files of its hours), any other
    day is a group per hour."""
    groups = []
    for _, day in days(root):
        if _files_in(day):
            groups.append(data_files(day))
        else:
            groups.extend(g for hour in sorted(day.glob("hour=*")) if (g := _files_in(hour)))
    return groups


@dataclass
class UpkeepStats:
    partitions_compacted: int = 0
    files_merged: int = 0
    files_removed: int = 0
    partitions_expired: int = 0
    errors: list[str] = field(default_factory=list)


def merge(folder: Path, table: str) -> Path | None:
    """Step 1: write one compacted file into ``folder`` (an hour, or a whole day) holding every span of
    its files once; the files it merged stay."""
    schema, key = TABLES[table]
    live = data_files(folder)
    superseded = _superseded(live)
    sources = [f for f in live if f not in superseded]
    if not sources or (is_clean(sources) and sources[0].parent == folder):
        return None
    merged = _read_unique(sources, schema, key)
    # the files it replaces: those it read, and those they had replaced and that are still there
    metadata = {SOURCES_KEY.decode(): ",".join(str(f.relative_to(folder)) for f in live)}
    return write_file(folder, f"{COMPACTED_PREFIX}{uuid.uuid4().hex}.parquet", merged, metadata)


def remove_superseded(folder: Path, grace_s: float, now_s: float | None = None) -> int:
    """Step 2: remove the files a compacted file holds, once it is ``grace_s`` seconds old."""
    now_s = time.time() if now_s is None else now_s
    removed = 0
    touched: set[Path] = set()
    for compacted in data_files(folder):
        if not compacted.name.startswith(COMPACTED_PREFIX):
            continue
        try:
            if now_s - compacted.stat().st_mtime < grace_s:
                continue
            sources = _sources_of(compacted)
        except FileNotFoundError:
            continue  # removed meanwhile, as superseded by a newer one
        for source in sources:
            try:
                source.unlink()
                removed += 1
                touched.add(source.parent)
            except FileNotFoundError:
                pass
    for sub in [folder, *folder.glob("hour=*")]:
        for entry in os.scandir(sub):
            # temporary files of a merge or a flush that crashed
            if entry.name.startswith(".tmp-") and now_s - entry.stat().st_mtime > _STALE_TMP_S:
                Path(entry.path).unlink(missing_ok=True)
    for sub in touched:
        fsync_path(sub)
        if sub != folder and not any(sub.iterdir()):
            sub.rmdir()  # an hour folder emptied by a day's compaction
    return removed


def compact(
    data_dir: str | Path, *, now: datetime | None = None, grace_s: float = DEFAULT_GRACE_S
) -> UpkeepStats:
    """Compact both tables: each past day into one file, and each past hour of today into one file."""
    now = now or datetime.now(UTC)
    current_hour = now.replace(minute=0, second=0, microsecond=0)
    stats = UpkeepStats()
    for table in TABLES:
        for day, day_folder in days(Path(data_dir) / table):
            if day < now.date():
                folders = [day_folder]
            else:
                folders = [h for h in sorted(day_folder.glob("hour=*")) if _hour_start(day, h) < current_hour]
            for folder in folders:
                try:
                    stats.files_removed += remove_superseded(folder, grace_s)
                    before = len(data_files(folder))
                    if merge(folder, table) is not None:
                        stats.partitions_compacted += 1
                        stats.files_merged += before
                        stats.files_removed += remove_superseded(folder, grace_s)
                except Exception as exc:  # one unreadable partition must not stop the others
                    log.exception("compaction of %s failed", folder)
                    stats.errors.append(f"{folder}: {exc}")
    return stats


def expire(data_dir: str | Path, retention_days: int, *, now: datetime | None = None) -> int:
    """Remove the days of both tables that ended more than ``retention_days`` days ago."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    expired = 0
    for table in TABLES:
        root = Path(data_dir) / table
        for day, folder in days(root):
            if datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) > cutoff:
                continue
            hidden = folder.with_name(f"{_HIDDEN_EXPIRED}{folder.name}-{uuid.uuid4().hex}")
            os.replace(folder, hidden)  # out of every listing at once
            fsync_path(root)
            shutil.rmtree(hidden)
            expired += 1
        for leftover in root.glob(f"{_HIDDEN_EXPIRED}*") if root.is_dir() else ():
            shutil.rmtree(leftover, ignore_errors=True)  # a removal that a crash interrupted
    return expired


def _hour_start(day: date, folder: Path) -> datetime:
    try:
        return datetime(day.year, day.month, day.day, int(folder.name[5:]), tzinfo=UTC)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # not ours: never compacted


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


def _sources_of(compacted: Path) -> list[Path]:
    metadata = pq.read_schema(compacted).metadata or {}
    raw = metadata.get(SOURCES_KEY, b"").decode()
    return [compacted.parent / name for name in raw.split(",") if is_data_file(Path(name).name)]


def _superseded(live: list[Path]) -> set[Path]:
    present = set(live)
    superseded: set[Path] = set()
    for f in live:
        if f.name.startswith(COMPACTED_PREFIX):
            try:
                superseded.update(p for p in _sources_of(f) if p in present)
            except FileNotFoundError:
                continue
    return superseded


def _read_unique(files: list[Path], schema: pa.Schema, key: tuple[str, ...]) -> pa.Table:
    """The rows of ``files``, each stored span once (the same choice the views make), oldest first."""
    paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        table = con.sql(
            f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false, union_by_name = true) "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(key)} ORDER BY start_time) = 1 "
            "ORDER BY start_time"
        ).to_arrow_table()
    finally:
        con.close()
    # files written before a column existed get it as nulls; the merged file has the current schema
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
