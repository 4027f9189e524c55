"""A data directory in the earlier layout, moved once into the current one when a collector starts.

Earlier collectors wrote ``<dataset>/date=D/hour=HH/part-<uuid>.parquet`` and ``compacted-<uuid>.parquet``
files (in hour folders, and a past day's in its date folder), kept the duplicates of a call inline in
``llm_calls`` with ``duplicate_of`` set, and could hold a record twice (a replay after a crash), which their
views removed in the query. Such a day is rewritten as the current layout reads it: its records once each,
the calls in one ``day-legacy.parquet`` of ``llm_calls``, the duplicates in one of ``llm_calls_duplicates``,
and the folder swapped in one step as compaction swaps it. A crash in the middle leaves the day in the
earlier layout; the next start does it again (the duplicates' file is replaced under the same name).
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pyarrow.compute as pc

from .compaction import one_upkeep, read_unique, swap_day
from .layout import CALLS, DUPLICATES, SPANS, days, internal
from .parquet import SCHEMA, SPANS_SCHEMA, encode, put, temporary

log = logging.getLogger(__name__)

LEGACY_NAME = "day-legacy.parquet"
# how the earlier layout told one stored record from another
_LEGACY_KEYS = {CALLS: ("trace_id", "span_id", "duplicate_of"), SPANS: ("trace_id", "span_id")}


def legacy_files(folder: Path) -> list[Path]:
    """The earlier layout's data files in a day's folder (its own and its hour folders')."""
    found: list[Path] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir() and entry.name.startswith("hour="):
            found.extend(
                Path(e.path)
                for e in sorted(os.scandir(entry.path), key=lambda e: e.name)
                if _legacy_name(e.name)
            )
        elif entry.is_file() and _legacy_name(entry.name):
            found.append(Path(entry.path))
    return found


def _legacy_name(name: str) -> bool:
    if not name.endswith(".parquet") or name.startswith("."):
        return False
    stem = name[: -len(".parquet")]
    return stem.startswith("compacted-") or (stem.startswith("part-") and "-" not in stem[5:])


def _is_legacy(folder: Path) -> bool:
    return any(e.name.startswith((".", "hour=")) for e in os.scandir(folder)) or bool(legacy_files(folder))


def needs_migration(data_dir: str | Path) -> bool:
    """Whether a day of the data directory is in the earlier layout (a collector has not started on it)."""
    folders = [folder for dataset in (CALLS, SPANS) for _, folder in days(Path(data_dir), dataset)]
    return any(_is_legacy(folder) for folder in folders)


def migrate(data_dir: str | Path) -> int:
    """Move every day in the earlier layout into the current one; returns the number of days moved."""
    data_dir = Path(data_dir)
    moved = 0
    with one_upkeep(data_dir):
        for dataset, schema in ((CALLS, SCHEMA), (SPANS, SPANS_SCHEMA)):
            root = data_dir / dataset
            for leftover in root.glob(".*") if root.is_dir() else ():
                # the earlier retention's hidden folders, and temporary files: out of the dataset
                os.rename(leftover, internal(data_dir, "trash") / f"{dataset}-{uuid.uuid4().hex}")
            for day, folder in days(data_dir, dataset):
                if not _is_legacy(folder):
                    continue
                sources = legacy_files(folder)
                rows = (
                    read_unique(sources, schema, _LEGACY_KEYS[dataset]) if sources else schema.empty_table()
                )
                if dataset == CALLS:
                    duplicate = pc.is_valid(rows.column("duplicate_of"))
                    duplicates = rows.filter(duplicate)
                    rows = rows.filter(pc.invert(duplicate))
                    if duplicates.num_rows:
                        tmp = temporary(data_dir, LEGACY_NAME)
                        encode(duplicates, tmp)
                        put(data_dir, DUPLICATES, str(day), tmp, LEGACY_NAME)
                # the earlier layout's files lie in hour folders, which the swap leaves behind; the day's
                # files already in the current layout are carried over
                swap_day(data_dir, dataset, day, folder, rows, LEGACY_NAME, {})
                moved += 1
    if moved:
        log.info("storage: %d days moved from the earlier layout (hour folders, inline duplicates)", moved)
    return moved
