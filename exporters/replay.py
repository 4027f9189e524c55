"""A replay after a crash stores nothing twice.

A pipeline worker processes the write-ahead log's records after its checkpointed position again when it
starts, and writes their rows again. Its files say which log records they came from
(``part-HH-w<i>of<n>-s<first>-<end>-...``, :mod:`costspan.exporters.layout`), and a batch's files start at
a position the worker reported, so every file of a worker is either wholly before its checkpoint (kept) or
wholly after it (written again by the replay). Before the replay, :func:`discard_unsettled` takes the files
after it out of every dataset, and puts back the versions of files that a supersede in those batches
rewrote (a worker keeps the version it replaced, as a hard link under ``.storage/undo/``, until the batch is
checkpointed). Compaction merges only files wholly before their writer's checkpoint (:class:`Checkpoints`),
so what a replay writes again is always still there to be taken out.

When the number of workers changes between runs, the old partitioning is first carried up to the furthest
worker's position (``costspan.collector.pipeline``), so that every old file is again wholly before or after
one position.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .files import fsync_path
from .layout import DATASETS, INTERNAL, WriterTag, days, describe, files_in, partition_lock

log = logging.getLogger(__name__)

# where a worker goes on from, for the files of a writer; None: none of that writer's files are concerned
Position = Callable[[WriterTag], int | None]


@dataclass(frozen=True)
class Checkpoints:
    """The log's durable checkpoint and each reader's position (as the write-ahead log keeps them)."""

    checkpoint: int
    positions: Sequence[int] = ()

    def position(self, tag: WriterTag) -> int:
        """Where the worker that wrote a file goes on from after a crash: its own position when the log has
        as many readers as it had, else the checkpoint."""
        if tag.workers == len(self.positions) and tag.worker < len(self.positions):
            return max(self.positions[tag.worker], self.checkpoint)
        return self.checkpoint

    def settled(self, tag: WriterTag) -> bool:
        """Whether a file's records are all before its writer's checkpoint: no replay writes them again."""
        return tag.end <= self.position(tag)


def highest_record(data_dir: str | Path) -> int:
    """The end of the last log record any worker's file came from (0: none)."""
    highest = 0
    for dataset in DATASETS:
        for _, folder in days(Path(data_dir), dataset):
            for path in files_in(folder):
                described = describe(path)
                if described is not None and described.writer is not None:
                    highest = max(highest, described.writer.end)
    return highest


def discard_unsettled(data_dir: str | Path, position: Position) -> int:
    """Take out of every dataset the files that a worker wrote from log records at or after
    ``position(writer)``, and put back what its supersedes in those batches replaced. Returns the number of
    files taken out."""
    data_dir = Path(data_dir)
    _put_back(data_dir, position)
    removed = 0
    for dataset in DATASETS:
        for day, folder in days(data_dir, dataset):
            doomed = []
            for path in files_in(folder):
                described = describe(path)
                if described is None or described.writer is None:
                    continue
                start = position(described.writer)
                if start is not None and described.writer.first >= start:
                    doomed.append(path)
            if not doomed:
                continue
            with partition_lock(data_dir, dataset, day, exclusive=False):
                for path in doomed:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                        removed += 1
                fsync_path(folder)
    if removed:
        log.info(
            "storage: %d files written after their writer's checkpoint are taken out for the replay", removed
        )
    return removed


def _undo_batches(data_dir: Path) -> list[tuple[str, WriterTag, Path]]:
    found = []
    root = data_dir / INTERNAL / "undo"
    for dataset in DATASETS:
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(root / dataset):
                tag = WriterTag.parse(entry.name)
                if tag is not None:
                    found.append((dataset, tag, Path(entry.path)))
    # the latest batch first: putting back in reverse order leaves the version before the earliest
    return sorted(found, key=lambda found: found[1].first, reverse=True)


def _put_back(data_dir: Path, position: Position) -> None:
    for dataset, tag, folder in _undo_batches(data_dir):
        start = position(tag)
        if start is None:
            continue
        if tag.first >= start:
            for day_folder in sorted(folder.glob("date=*")):
                target = data_dir / dataset / day_folder.name
                with partition_lock(data_dir, dataset, day_folder.name[5:], exclusive=False):
                    for copy in sorted(day_folder.iterdir()):
                        if (target / copy.name).exists():
                            os.replace(copy, target / copy.name)
                    if target.is_dir():
                        fsync_path(target)
        if tag.first >= start or tag.end <= start:
            shutil.rmtree(folder, ignore_errors=True)


def forget_settled(data_dir: str | Path, settled: Callable[[WriterTag], bool]) -> None:
    """Drop the kept versions of files whose replacing batch is checkpointed."""
    for _, tag, folder in _undo_batches(Path(data_dir)):
        if settled(tag):
            shutil.rmtree(folder, ignore_errors=True)


def pending_rewrites(data_dir: str | Path, settled: Callable[[WriterTag], bool]) -> set[tuple[str, str, str]]:
    """(dataset, partition folder name, file name) of the files a batch not yet checkpointed rewrote:
    compaction leaves them as they are, so that a crash can still put their earlier version back."""
    pending = set()
    for dataset, tag, folder in _undo_batches(Path(data_dir)):
        if not settled(tag):
            for copy in folder.glob("date=*/*"):
                pending.add((dataset, copy.parent.name, copy.name))
    return pending
