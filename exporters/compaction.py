"""Background upkeep of the datasets: compaction of small files, and retention in days.

A collector writes one file per flush, so a busy hour holds many small files, and a query pays for every
file it opens. Compaction merges the files of each past hour of today into one ``hour-HH-<uuid>.parquet``,
and each past day into one ``day-<uuid>.parquet``, in the day's folder (the only partition level). It never
touches the current hour, nor a worker's file whose log records are not yet checkpointed (a replay after a
crash takes those out and writes them again: :mod:`costspan.exporters.replay`).

A plain reader never sees a merged file beside its sources, nor a gap. The new version of the day's folder
is built beside the datasets (``.storage/staging/``): the merged file is written there, then, holding the
partition's lock exclusive (writers hold it shared while they add or replace a file), every other file of
the folder is hard-linked in, the sources are checked to be unchanged (a supersede may have rewritten one:
then this partition waits for the next run), and the two folders are swapped in one step
(:func:`costspan.exporters.files.exchange`). A reader resolves the day's folder before or after the swap and
reads either the sources or the merged file; one that listed a source and opens it after the swap gets an
I/O error (``costspan sql`` lists again and retries), never a wrong sum. A crash before the swap leaves a
staging folder nobody reads; after it, the old folder there; the next run removes both.

Retention removes whole days that ended more than ``retention_days`` days ago: the day's folder is moved out
of the dataset (``.storage/trash/``) in one rename, holding its lock, then deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from .files import exchange, fsync_path
from .layout import (
    CALLS,
    DUPLICATES,
    INTERNAL,
    SPANS,
    DataFile,
    WriterTag,
    days,
    describe,
    files_in,
    internal,
    partition_lock,
)
from .parquet import SCHEMA, SPANS_SCHEMA, conform, encode
from .replay import forget_settled, pending_rewrites
from .rollups import refresh as refresh_rollups

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 300.0
_STALE_TMP_S = 3600.0  # a temporary file this old belongs to a writer that is gone

# Each dataset's schema, and what makes a row the same stored record. Rows are stored once by construction;
# merging drops an exact repeat all the same (a re-send that arrived after a restart, when the dedupe
# processor no longer remembered the first copy).
TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    CALLS: (SCHEMA, ("trace_id", "span_id")),
    DUPLICATES: (SCHEMA, ("trace_id", "span_id", "duplicate_of")),
    SPANS: (SPANS_SCHEMA, ("trace_id", "span_id")),
}


@dataclass
class UpkeepStats:
    partitions_compacted: int = 0
    files_merged: int = 0
    files_removed: int = 0
    partitions_expired: int = 0
    rollups_written: int = 0
    errors: list[str] = field(default_factory=list)


@contextlib.contextmanager
def one_upkeep(data_dir: Path) -> Iterator[None]:
    """One compaction or retention run at a time in a data directory: then whatever a run leaves in
    ``.storage/staging`` and ``.storage/trash`` is from a run that is gone."""
    fd = os.open(internal(data_dir, "locks") / "upkeep.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _clear_leftovers(data_dir: Path, now_s: float) -> None:
    for name in ("staging", "trash"):
        for entry in _entries(data_dir / INTERNAL / name):
            shutil.rmtree(entry, ignore_errors=True)
    for entry in _entries(data_dir / INTERNAL / "tmp"):
        with contextlib.suppress(FileNotFoundError):
            if now_s - entry.stat().st_mtime > _STALE_TMP_S:
                entry.unlink()


def _entries(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder)]
    except FileNotFoundError:
        return []


def groups(
    files: list[Path], day: date, now: datetime, mergeable: Callable[[DataFile], bool]
) -> list[tuple[str, list[Path]]]:
    """What to merge in a day's folder: (name of the merged file, its sources)."""
    described = [d for f in files if (d := describe(f)) is not None and mergeable(d)]
    if day < now.date():
        if len(described) == 1 and described[0].kind == "day":
            return []
        return [(f"day-{uuid.uuid4().hex}.parquet", [d.path for d in described])] if described else []
    if day > now.date():
        return []  # a clock ahead of ours: left as written
    out = []
    for hour in sorted({d.hour for d in described if d.hour is not None and d.hour < now.hour}):
        sources = [d for d in described if d.hour == hour]
        if len(sources) == 1 and sources[0].kind == "hour":
            continue
        out.append((f"hour-{hour:02d}-{uuid.uuid4().hex}.parquet", [d.path for d in sources]))
    return out


def compact(
    data_dir: str | Path,
    *,
    now: datetime | None = None,
    settled: Callable[[WriterTag], bool] | None = None,
) -> UpkeepStats:
    """Compact every dataset: each past day into one file, and each past hour of today into one file.

    ``settled``: whether a pipeline worker's file is wholly before the worker's checkpoint (the pipeline's
    :meth:`~costspan.collector.pipeline.Pipeline.settled`); without it, every file counts as settled (no
    pipeline writes into the directory)."""
    data_dir = Path(data_dir)
    now = now or datetime.now(UTC)
    is_settled = settled or (lambda _tag: True)
    stats = UpkeepStats()
    with one_upkeep(data_dir):
        _clear_leftovers(data_dir, time.time())
        forget_settled(data_dir, is_settled)
        pending = pending_rewrites(data_dir, is_settled)

        def mergeable(d: DataFile) -> bool:
            """Not a file a replay would take out, nor one a replay would put an earlier version of back."""
            if d.writer is not None and not is_settled(d.writer):
                return False
            return (d.path.parent.parent.name, d.path.parent.name, d.path.name) not in pending

        for dataset, (schema, key) in TABLES.items():
            for day, folder in days(data_dir, dataset):
                try:
                    for name, sources in groups(files_in(folder), day, now, mergeable):
                        if replace(data_dir, dataset, day, sources, name, schema, key):
                            stats.partitions_compacted += 1
                            stats.files_merged += len(sources)
                            stats.files_removed += len(sources)
                except Exception as exc:  # one unreadable partition must not stop the others
                    log.exception("compaction of %s failed", folder)
                    stats.errors.append(f"{folder}: {exc}")
        # the merged files' hourly sums, for the dashboards (costspan.exporters.rollups)
        stats.rollups_written = refresh_rollups(data_dir)
    return stats


def replace(
    data_dir: Path,
    dataset: str,
    day: date,
    sources: list[Path],
    name: str,
    schema: pa.Schema,
    key: tuple[str, ...],
) -> bool:
    """Swap the day's folder for one where ``sources`` are merged into ``name``; False when a source
    changed meanwhile (this partition is tried again by the next run)."""
    folder = sources[0].parent
    seen = {}
    try:
        for source in sources:
            st = source.stat()
            seen[source] = (st.st_ino, st.st_mtime_ns, st.st_size)
        merged = read_unique(sources, schema, key)
    except (FileNotFoundError, duckdb.IOException):
        return False  # a supersede or a replay's clean-up was faster: the next run
    return swap_day(data_dir, dataset, day, folder, merged, name, seen)


def swap_day(
    data_dir: Path,
    dataset: str,
    day: date,
    folder: Path,
    rows: pa.Table,
    name: str,
    replaced: dict[Path, tuple[int, int, int]],
) -> bool:
    """Swap ``folder``, a day of ``dataset``, for a new folder holding ``rows`` as ``name`` (none when there
    are none) and every file of the old one but those ``replaced``, in one step under the day's exclusive
    lock: a writer's file added meanwhile is carried over. ``replaced`` maps each file to its (inode, mtime,
    size) when it was read; False, and nothing changed, when one changed or went since."""
    staging = internal(data_dir, "staging", dataset) / f"{folder.name}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        if rows.num_rows:
            encode(rows, staging / name)
        with partition_lock(data_dir, dataset, day, exclusive=True):
            for source, before in replaced.items():
                try:
                    st = source.stat()
                except FileNotFoundError:
                    return False
                if (st.st_ino, st.st_mtime_ns, st.st_size) != before:
                    return False
            for path in files_in(folder):
                if path not in replaced:
                    os.link(path, staging / path.name)  # written meanwhile, or not merged
            fsync_path(staging)
            exchange(folder, staging)
            fsync_path(folder.parent)
            fsync_path(staging.parent)
        return True
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old folder after a swap; the unused new one else


def expire(data_dir: str | Path, retention_days: int, *, now: datetime | None = None) -> int:
    """Remove the days of every dataset that ended more than ``retention_days`` days ago."""
    data_dir = Path(data_dir)
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=retention_days)
    expired = 0
    with one_upkeep(data_dir):
        for dataset in TABLES:
            for day, folder in days(data_dir, dataset):
                if datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1) > cutoff:
                    continue
                trash = internal(data_dir, "trash") / f"{dataset}-{folder.name}-{uuid.uuid4().hex}"
                with partition_lock(data_dir, dataset, day, exclusive=True):
                    os.rename(folder, trash)  # out of every listing at once
                    fsync_path(folder.parent)
                shutil.rmtree(trash)
                (data_dir / INTERNAL / "locks" / dataset / f"{folder.name}.lock").unlink(missing_ok=True)
                expired += 1
    return expired


class Upkeep:
    """Runs compaction and retention on a background thread, every ``interval_s`` seconds."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        retention_days: int | None = None,
        settled: Callable[[WriterTag], bool] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.interval_s = interval_s
        self.retention_days = retention_days
        self.settled = settled
        self.totals = UpkeepStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="costspan-upkeep", daemon=True)

    def run_once(self, now: datetime | None = None) -> UpkeepStats:
        stats = UpkeepStats()
        if self.retention_days is not None:
            stats.partitions_expired = expire(self.data_dir, self.retention_days, now=now)
        done = compact(self.data_dir, now=now, settled=self.settled)
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


def read_unique(files: list[Path], schema: pa.Schema, key: tuple[str, ...]) -> pa.Table:
    """The rows of ``files``, each stored record once, oldest first."""
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
    return conform(table, schema)
