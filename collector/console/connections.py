"""One read-only connection per state of the data directory, shared by the console's pages.

Opening a connection lists every file and builds the views over them (:func:`duckdb_views.connect`): on a
data directory of thousands of files not yet compacted it took more than a second, longer than the page's
queries. The files change only when the collector writes, compacts or rewrites one, so the connection is
kept while they stay as they were: each page first lists the data files with their sizes and modification
times (a ``stat`` each, milliseconds for thousands) and opens a new connection only when that list changed.
A file rewritten in place (a supersede) changes it too, so a rollup is never read for a file it no longer
sums (:mod:`costspan.exporters.rollups`).

Each page gets a cursor of the kept connection (its own DuckDB connection to the same in-memory database,
so pages may run at once); the settings that lock it are the database's and hold for every cursor. The
views' empty stand-ins are tables of that database, not Python objects registered with one connection, which
a cursor would not see.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from costspan.exporters import answer_tables
from costspan.exporters.duckdb_views import connect
from costspan.exporters.layout import DATASETS, days
from costspan.exporters.rollups import ROLLUPS

Signature = tuple[tuple[str, int, int], ...]


def signature(data_dir: Path) -> Signature:
    """Every file the views read (or could), with its size and modification time."""
    found: list[tuple[str, int, int]] = []
    for dataset in (*DATASETS, ROLLUPS):
        for _, folder in days(data_dir, dataset):
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                found.append((entry.path, st.st_size, st.st_mtime_ns))
    for name in answer_tables.SCHEMAS:
        path = answer_tables.path(data_dir, name)
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        found.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(sorted(found))


class Connections:
    """The kept connection to ``data_dir``'s views, made again when its files change. A connection replaced
    while pages still read through it is closed when the last of them is done (closing it closes its
    cursors)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._signature: Signature | None = None
        self._readers: dict[int, int] = {}  # id of a connection -> cursors of it in use

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        now = signature(self.data_dir)
        with self._lock:
            if self._con is None or now != self._signature:
                old, self._con = self._con, connect(self.data_dir)
                self._signature = now
                if old is not None and id(old) not in self._readers:
                    old.close()
            con = self._con
            self._readers[id(con)] = self._readers.get(id(con), 0) + 1
            cursor = con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
            with self._lock:
                self._readers[id(con)] -= 1
                if not self._readers[id(con)]:
                    del self._readers[id(con)]
                    if con is not self._con:
                        con.close()

    def close(self) -> None:
        with self._lock:
            if self._con is not None and id(self._con) not in self._readers:
                self._con.close()
            self._con = None
