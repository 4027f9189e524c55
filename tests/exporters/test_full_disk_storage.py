"""Storage on a real file system that is full (a small tmpfs; the tests need root to mount it).

A Parquet write that fails leaves no file a reader lists, and no partial file taking the space a retry needs;
a worker's batch that failed is stored whole, once, when it is done again after space returned; compaction
leaves the day exactly as it was and goes on at its next run.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime

import pytest

from costspan.collector.worker import Partition, PartitionProcessor, WorkerSettings
from costspan.exporters.compaction import compact
from costspan.exporters.duckdb_views import connect
from tests.collector.test_workers import TRACES, logged, requests  # noqa: F401  (a fixture)
from tests.exporters.test_compaction import checksum, files
from tests.exporters.test_compaction import fill as store_a_day
from tests.support.full_disk import MountRefused, fill, small_filesystem


@pytest.fixture
def small_fs(tmp_path):
    try:
        with small_filesystem(tmp_path / "fs", "4m") as mount:
            yield mount
    except MountRefused as exc:
        pytest.skip(f"a small tmpfs cannot be mounted here (needs root): {exc}")


def leftovers(data_dir):
    """Files in the writers' and compaction's work folders (temporary files, staging)."""
    work = data_dir / ".storage"
    return [p for name in ("tmp", "staging") for p in (work / name).rglob("*") if p.is_file()]


def test_a_worker_batch_that_cannot_be_stored_is_stored_once_when_space_returns(small_fs, requests):  # noqa: F811
    data = small_fs / "data"
    wal = logged(data, requests)
    settings = WorkerSettings(str(data), Partition(0, 1))
    ballast = small_fs / "ballast"
    fill(ballast)
    processor = PartitionProcessor(settings)
    with pytest.raises(OSError, match="No space left"):
        processor.process(0, wal.committed_seq)
    assert files(data) == [] and leftovers(data) == []  # nothing half-written is visible or kept
    ballast.unlink()
    # what the worker's loop does after a failed batch: a new processor, the batch's files taken out
    again = PartitionProcessor(settings)
    again.discard_unreported(0)
    report = again.process(0, wal.committed_seq)
    assert report.end_seq == wal.committed_seq
    con = connect(data)
    try:
        assert con.execute("SELECT count(*), count(DISTINCT span_id) FROM llm_calls").fetchone() == (
            2 * TRACES,
            2 * TRACES,
        )
    finally:
        con.close()


def test_a_parquet_file_whose_fsync_fails_is_not_kept(tmp_path, requests, monkeypatch):  # noqa: F811
    # the bytes were written, the fsync says they may not be on disk: the file is neither renamed into its
    # partition nor left in the work folder
    data = tmp_path / "data"
    wal = logged(data, requests)
    processor = PartitionProcessor(WorkerSettings(str(data), Partition(0, 1)))

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        processor.process(0, wal.committed_seq)
    assert files(data) == [] and leftovers(data) == []


def test_compaction_on_a_full_disk_leaves_the_day_as_it_was(small_fs):
    data = small_fs / "data"
    store_a_day(data)
    before, names = checksum(data), files(data)
    fill(small_fs / "ballast")
    stats = compact(data, now=datetime(2025, 10, 10, 0, 30, tzinfo=UTC))
    assert stats.partitions_compacted == 0 and stats.errors  # each day's failure is reported, not raised
    assert files(data) == names and checksum(data) == before and leftovers(data) == []
    (small_fs / "ballast").unlink()
    stats = compact(data, now=datetime(2025, 10, 10, 0, 30, tzinfo=UTC))
    assert stats.errors == [] and stats.partitions_compacted > 0
    assert files(data) != names and checksum(data) == before
