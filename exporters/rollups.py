"""Hourly rollups of ``llm_calls``: exact sums per UTC hour and dimension set, one rollup file per data file.

A dashboard sums calls by hour and a dimension or two; reading ten million calls for that costs seconds,
reading their sums per hour costs milliseconds. So each compacted file of ``llm_calls`` (``hour-HH-...``,
``day-...``) gets a rollup file in the ``llm_calls_hourly`` dataset, in the same day's folder:

```
llm_calls/date=2025-10-09/day-<uuid>.parquet
llm_calls_hourly/date=2025-10-09/day-<uuid>.s<size>-m<mtime_ns>.parquet     its rollup
```

A rollup file holds, for each dimension set of :data:`DIMENSION_SETS`, one row per UTC hour, value of the
set's columns, ``pricing_status`` and whether the call had an ``error_type`` (``errored``): the number of
calls, the tokens of each kind and the cost, exact (``DECIMAL(38,12)``). The group columns have the names
of ``llm_calls``' columns (the model is ``response_model`` and ``request_model``, as stored), so a
dimension's SQL over ``llm_calls`` reads a rollup's rows unchanged; the definitions over
``pricing_status`` (billed, unpriced, failed, cut short) stay with their one reader.

**Exactly once, by construction.** A rollup's name is its source file's name and fingerprint (size and
modification time, in nanoseconds): a reader lists the ``llm_calls`` files, and for each one takes either the
rollup of that very version of the file or, when there is none, the file's rows
(:func:`split`). So a sum read this way is the sum of the same files a plain reader of ``llm_calls`` lists,
whatever happened meanwhile:

- a file still being written to (the current hour's ``part-`` files), a late call written into a past day,
  a replay's files after a crash: ``part-`` files, never rolled up, read raw until compaction merges them;
- compaction replaces a day's files by a new one: the new file has no rollup until :func:`refresh` (run by
  compaction after its merges) writes it, and is read raw until then; the old files' rollups are no longer
  any listed file's and are removed by the same run;
- a supersede rewrites a file in place: its fingerprint changes, so its earlier rollup no longer matches;
- a crash while a rollup is written leaves a temporary file under ``.storage/tmp`` (removed by a later
  run), never a partial rollup: rollups are written and renamed in as data files are. There is no
  checkpoint to get out of step with the files.

The rollup dataset on its own is an index, not a table to sum: while compaction swaps a day, the old files'
rollups and the new one's may both be there for a moment. Sum it only through the files it names (the
``hourly_rollups`` view of ``costspan sql`` does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from .layout import CALLS, days, describe, files_in
from .parquet import encode, put, temporary

log = logging.getLogger(__name__)

ROLLUPS = "llm_calls_hourly"
MODEL = ("response_model", "request_model")
# The sets of llm_calls' columns a rollup sums by, smallest first (a reader takes the first that holds every
# column a question groups or filters by). The console's pages group by one dimension at a time, the
# Overview by team and model, Models by provider and model with what priced them; Explore filters by a
# second dimension, most often team. ``customer_id``, ``user_id`` and tags are left out: with thousands of
# customers, a customer per hour is nearly a call per hour (measured: with them, the rollups took half the
# bytes of the calls), and a rollup of that is no smaller than the calls.
DIMENSION_SETS: dict[str, tuple[str, ...]] = {
    "all": (),
    "environment": ("environment",),
    "operation": ("operation",),
    "provider": ("provider",),
    "service_name": ("service_name",),
    "team": ("team",),
    "agent_name": ("agent_name",),
    "model": MODEL,
    "prompt": ("prompt_key", "prompt_version"),
    "feature": ("feature",),
    "team_model": ("team", *MODEL),
    "pricing": ("provider", *MODEL, "pricing_provider", "pricing_model", "catalog_version"),
    "team_feature": ("team", "feature"),
}
GROUP_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(c for cols in DIMENSION_SETS.values() for c in cols))
MEASURE_COLUMNS = (
    "calls",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
)
SCHEMA = pa.schema(
    [
        ("dimension_set", pa.string()),
        ("hour", pa.timestamp("us")),
        *((c, pa.string()) for c in GROUP_COLUMNS),
        ("pricing_status", pa.string()),
        ("errored", pa.bool_()),
        *((c, pa.int64()) for c in MEASURE_COLUMNS[:-1]),
        ("cost_usd", pa.decimal128(38, 12)),
    ]
)
_NAME = re.compile(r"^(?P<source>[0-9A-Za-z-]+)\.s(?P<size>\d+)-m(?P<mtime>\d+)\.parquet$")


def rollup_name(source: Path, st: os.stat_result) -> str:
    """The rollup's file name for this version of ``source`` (a data file of ``llm_calls``)."""
    return f"{source.stem}.s{st.st_size}-m{st.st_mtime_ns}.parquet"


def rolled_up(kind: str) -> bool:
    """Whether a data file of this kind gets a rollup: compacted files only (``part-`` files are still
    being added to an hour, or are late or replayed records, and are merged soon)."""
    return kind in ("hour", "day")


@dataclass(frozen=True)
class Split:
    """``llm_calls``' files as a reader listed them: those whose current version has a rollup (and the
    rollups), and the others, to be read raw."""

    rollups: list[Path]
    raw: list[Path]


def split(data_dir: Path, files: Iterable[Path]) -> Split:
    """For each of ``files`` (``llm_calls`` data files just listed), its rollup when one exists for the file
    as it is now, else the file itself."""
    rollups: list[Path] = []
    raw: list[Path] = []
    present: dict[str, set[str]] = {}
    root = os.path.realpath(data_dir / ROLLUPS) + os.sep
    for f in files:
        d = describe(f)
        if d is None or not rolled_up(d.kind):
            raw.append(f)
            continue
        folder = data_dir / ROLLUPS / f.parent.name
        if folder.name not in present:
            try:
                present[folder.name] = {e.name for e in os.scandir(folder) if e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                present[folder.name] = set()
        try:
            name = rollup_name(f, f.stat())
        except FileNotFoundError:
            raw.append(f)  # gone since it was listed: reading it says so, and the reader lists again
            continue
        target = folder / name
        # a rollup must be what it seems (no link planted to lead a reader elsewhere)
        if name in present[folder.name] and os.path.realpath(target).startswith(root):
            rollups.append(target)
        else:
            raw.append(f)
    return Split(rollups, raw)


def refresh(data_dir: str | Path) -> int:
    """Write the rollup of each compacted ``llm_calls`` file that has none, and remove the rollups of files
    gone or changed; returns how many were written. Run after compaction, under its lock
    (:func:`costspan.exporters.compaction.one_upkeep`)."""
    data_dir = Path(data_dir)
    wanted: dict[str, set[str]] = {}
    written = 0
    for _, folder in days(data_dir, CALLS):
        keep = wanted.setdefault(folder.name, set())
        for source in files_in(folder):
            d = describe(source)
            if d is None or not rolled_up(d.kind):
                continue
            try:
                before = source.stat()
            except FileNotFoundError:
                continue
            name = rollup_name(source, before)
            keep.add(name)
            if (data_dir / ROLLUPS / folder.name / name).exists():
                continue
            try:
                if write_rollup(data_dir, source, before, folder.name, name):
                    written += 1
            except Exception:  # one unreadable file must not stop the others: it is read raw
                log.exception("rollup of %s failed", source)
    for _, folder in days(data_dir, ROLLUPS):
        keep = wanted.get(folder.name, set())
        for entry in os.scandir(folder):
            if _NAME.match(entry.name) and entry.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        if not keep:
            with contextlib.suppress(OSError):
                folder.rmdir()  # its day is gone (retention): empty now
    return written


def write_rollup(data_dir: Path, source: Path, before: os.stat_result, day: str, name: str) -> bool:
    """Write ``source``'s rollup as ``name``; False (nothing written) when the file changed while it was
    read (a supersede rewrote it: its new version gets its own rollup on the next run)."""
    table = summarise(source)
    try:
        after = source.stat()
    except FileNotFoundError:
        return False
    if (after.st_ino, after.st_size, after.st_mtime_ns) != (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    ):
        return False
    tmp = temporary(data_dir, name)
    encode(table, tmp)
    try:
        put(data_dir, ROLLUPS, day[len("date=") :], tmp, name)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return True


def summarise(source: Path) -> pa.Table:
    """The rollup rows of one ``llm_calls`` file: every dimension set in one pass (``GROUPING SETS``)."""
    sets = list(DIMENSION_SETS.items())
    keys = ", ".join(GROUP_COLUMNS)
    grouping = ", ".join(
        f"(hour, pricing_status, errored{''.join(', ' + c for c in cols)})" for _, cols in sets
    )
    # grouping_id sets a bit for each column left out, the first column the highest
    width = len(GROUP_COLUMNS)
    cases = " ".join(
        f"WHEN {sum(1 << (width - 1 - i) for i, c in enumerate(GROUP_COLUMNS) if c not in cols)} THEN '{s}'"
        for s, cols in sets
    )
    path = "'" + str(source).replace("'", "''") + "'"
    query = f"""
        SELECT
            CASE grouping_id({keys}) {cases} END AS dimension_set,
            hour, {keys}, pricing_status, errored,
            count(*)::BIGINT AS calls,
            coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens,
            coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens,
            coalesce(sum(cache_read_tokens), 0)::BIGINT AS cache_read_tokens,
            coalesce(sum(cache_write_tokens), 0)::BIGINT AS cache_write_tokens,
            coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens,
            coalesce(sum(cost_usd), 0)::DECIMAL(38, 12) AS cost_usd
        FROM (
            SELECT *, date_trunc('hour', start_time) AS hour, error_type IS NOT NULL AS errored
            FROM read_parquet({path}, hive_partitioning = false)
        )
        GROUP BY GROUPING SETS ({grouping})
        ORDER BY dimension_set, hour
    """
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        table = con.sql(query).to_arrow_table()
    finally:
        con.close()
    return table.cast(SCHEMA)
