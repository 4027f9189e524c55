"""Where each file of the stored datasets lives, what its name says, and the lock of each partition.

The data directory holds one folder per dataset, and nothing in a dataset's folder but its data:

```
<data dir>/llm_calls/date=YYYY-MM-DD/<file>.parquet              one row per call
<data dir>/llm_calls_duplicates/date=YYYY-MM-DD/<file>.parquet   the other records of a call (duplicate_of)
<data dir>/genai_spans/date=YYYY-MM-DD/<file>.parquet            agent, tool, workflow ... spans
<data dir>/.storage/                                             the writers' own: temporary files, locks,
                                                                 compaction's staging, undo copies
```

One partition level (the UTC date of the rows' start) and only whole Parquet files in it, because Hive-aware
readers differ in what they skip: pyarrow (and pandas through it) skips names that start with ``.`` or ``_``,
but DuckDB's and polars' globs (``**/*.parquet``) list hidden files and folders too, and fail on a partition
depth that differs between files. So temporary files, locks and folders being built live under
``.storage/``, outside every dataset.

A file's name says what it holds (``HH`` is the UTC hour of every row in it):

- ``part-HH-<uuid>.parquet``: a flush by a writer outside the pipeline (tests, benchmarks, imports);
- ``part-HH-w<i>of<n>-s<first>-<end>-<uuid>.parquet``: a flush by pipeline worker ``i`` of ``n``, of the
  write-ahead log's records ``first`` to ``end`` (exclusive). After a crash the worker processes the records
  past its checkpoint again; its files from those records are taken out first (:mod:`.replay`);
- ``hour-HH-<uuid>.parquet``: an hour of today, compacted;
- ``day-<token>.parquet``: a past day, compacted (any hour).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

CALLS = "llm_calls"
DUPLICATES = "llm_calls_duplicates"
SPANS = "genai_spans"
DATASETS = (CALLS, DUPLICATES, SPANS)
INTERNAL = ".storage"  # the writers' own folder in the data directory, never inside a dataset

_NAME = re.compile(
    r"^(?:(?P<kind>part|hour)-(?P<hour>\d\d)-(?:w(?P<worker>\d+)of(?P<workers>\d+)-s(?P<first>\d+)-(?P<end>\d+)-)?"
    r"|(?P<day>day)-)[0-9A-Za-z]+\.parquet$"
)


@dataclass(frozen=True, order=True)
class WriterTag:
    """Pipeline worker ``worker`` of ``workers``, and the log records ``first`` to ``end`` of a file."""

    workers: int
    worker: int
    first: int
    end: int

    def name_part(self) -> str:
        return f"w{self.worker}of{self.workers}-s{self.first}-{self.end}-"

    @classmethod
    def parse(cls, text: str) -> WriterTag | None:
        match = re.fullmatch(r"w(\d+)of(\d+)-s(\d+)-(\d+)", text)
        if match is None:
            return None
        worker, workers, first, end = map(int, match.groups())
        return cls(workers, worker, first, end)


@dataclass(frozen=True)
class DataFile:
    """What a data file's name says."""

    path: Path
    kind: str  # part, hour or day
    hour: int | None  # the UTC hour of every row (part and hour files)
    writer: WriterTag | None  # the pipeline worker and log records it came from (a worker's part file)


def describe(path: Path) -> DataFile | None:
    """The file's kind, hour and writer; None for a name that is not a data file of ours."""
    match = _NAME.match(path.name)
    if match is None:
        return None
    if match["day"]:
        return DataFile(path, "day", None, None)
    writer = None
    if match["worker"] is not None:
        writer = WriterTag(
            int(match["workers"]), int(match["worker"]), int(match["first"]), int(match["end"])
        )
    return DataFile(path, match["kind"], int(match["hour"]), writer)


def is_data_file(name: str) -> bool:
    return _NAME.match(name) is not None


def partition(data_dir: Path, dataset: str, day: str | date) -> Path:
    return data_dir / dataset / f"date={day}"


def days(data_dir: Path, dataset: str) -> list[tuple[date, Path]]:
    """(UTC day, folder) of each partition of a dataset, oldest first."""
    root = data_dir / dataset
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(root):
            if entry.name.startswith("date=") and entry.is_dir():
                try:
                    found.append((date.fromisoformat(entry.name[5:]), Path(entry.path)))
                except ValueError:
                    continue  # not ours
    return sorted(found)


def files_in(folder: Path) -> list[Path]:
    """The data files of a partition folder, by name."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if is_data_file(e.name))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / n for n in names]


def dataset_files(data_dir: Path, dataset: str) -> list[Path]:
    """Every data file of a dataset, partition by partition."""
    return [f for _, folder in days(data_dir, dataset) for f in files_in(folder)]


def internal(data_dir: Path, *parts: str) -> Path:
    """A folder of the writers' own under the data directory (created)."""
    folder = Path(data_dir, INTERNAL, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def partition_lock(data_dir: Path, dataset: str, day: str | date, *, exclusive: bool) -> Iterator[None]:
    """The lock of one partition (``fcntl.flock`` on a file under ``.storage/locks``). Writers that add,
    replace or remove a file in it hold it shared; compaction and retention, which replace the whole folder,
    hold it exclusive, so that no file written meanwhile is left behind in the folder they replace."""
    path = internal(data_dir, "locks", dataset) / f"date={day}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock
