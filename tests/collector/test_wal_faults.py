"""The write-ahead log when writes and fsyncs fail (a full disk, a quota, an I/O error).

A fault-injecting layer replaces ``os.pwrite``, ``os.fsync`` and ``os.open`` for chosen calls: a write that
stores part of a record and then fails with ENOSPC, an fsync that fails with EIO, a segment that cannot be
created. What must hold: nothing is acknowledged that is not durable, the log never holds a torn record
followed by good ones, a failed append's waiter gets the error, the log goes on once the fault is gone, and
reopening it finds exactly the acknowledged records. The last test fills a real (tmpfs) file system.
"""

from __future__ import annotations

import errno
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from costspan.collector.pipeline import Pipeline
from costspan.collector.queued_exporter import QueuedExporter, RetrySettings
from costspan.collector.receivers._sink import Backpressure
from costspan.collector.wal import DiskError, WriteAheadLog
from costspan.collector.worker import BatchReport
from costspan.exporters.otlp_forward import ForwardSettings, OTLPForwarder
from costspan.exporters.prometheus import CostTally
from tests.support.collector import free_port
from tests.support.full_disk import MountRefused, fill, small_filesystem
from tests.support.health import wait_until
from tests.support.otlp_requests import chat_request
from tests.support.otlp_sink import OTLPSink


class Faults:
    """Makes chosen ``os.pwrite`` / ``os.fsync`` / ``os.open`` calls fail, as a full or failing disk does."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.write_error: int | None = None  # errno of the next writes
        self.short_first = False  # a failing write stores half the data first (a short write), then fails
        self.fsync_error: int | None = None
        self.create_error: int | None = None  # creating a file fails
        self.should_fail: Callable[[str], bool] = lambda _call: True  # which calls the errors apply to
        self.writes = self.fsyncs = 0
        real_pwrite, real_fsync, real_open = os.pwrite, os.fsync, os.open

        def pwrite(fd: int, data: bytes, offset: int) -> int:
            self.writes += 1
            if self.write_error is not None and self.should_fail("write"):
                if self.short_first and len(data) > 1:
                    self.short_first = False
                    return real_pwrite(fd, data[: len(data) // 2], offset)
                raise OSError(self.write_error, os.strerror(self.write_error))
            return real_pwrite(fd, data, offset)

        def fsync(fd: int) -> None:
            self.fsyncs += 1
            if self.fsync_error is not None and self.should_fail("fsync"):
                raise OSError(self.fsync_error, os.strerror(self.fsync_error))
            real_fsync(fd)

        def open_(path: str | os.PathLike[str], flags: int, *args: int, **kwargs: int) -> int:
            if self.create_error is not None and flags & os.O_CREAT and self.should_fail("create"):
                raise OSError(self.create_error, os.strerror(self.create_error))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "open", open_)

    def clear(self) -> None:
        self.write_error = self.fsync_error = self.create_error = None
        self.short_first = False
        self.should_fail = lambda _call: True


@pytest.fixture
def faults(monkeypatch):
    return Faults(monkeypatch)


def stored(directory: Path, **kwargs: int) -> list[tuple[int, bytes]]:
    """What a fresh process finds in the log (reopened from disk)."""
    reopened = WriteAheadLog(directory, **kwargs)
    try:
        return list(reopened.replay(0))
    finally:
        reopened.close()


def segment_sizes(directory: Path) -> list[int]:
    return [p.stat().st_size for p in sorted(directory.glob("wal-*.log"))]


def test_a_torn_write_is_cut_and_the_log_goes_on_when_space_returns(tmp_path, faults):
    wal = WriteAheadLog(tmp_path)
    wal.commit(wal.append(b"first"))
    size = segment_sizes(tmp_path)
    faults.write_error, faults.short_first = errno.ENOSPC, True
    with pytest.raises(DiskError, match="No space left"):
        wal.append(b"torn" * 100)
    assert segment_sizes(tmp_path) == size  # the half record written before ENOSPC is cut off
    assert wal.next_seq == 1 and wal.pending_records == 1
    with pytest.raises(DiskError):  # still full
        wal.append(b"refused")
    faults.clear()
    ticket = wal.append(b"second")
    assert ticket == 1
    wal.commit(ticket)
    assert [p for _, p in wal.replay(0)] == [b"first", b"second"]
    wal.close()
    assert stored(tmp_path) == [(0, b"first"), (1, b"second")]


def test_a_failed_fsync_fails_every_append_since_the_last_durable_point(tmp_path, faults):
    wal = WriteAheadLog(tmp_path)
    wal.commit(wal.append(b"durable"))
    size = segment_sizes(tmp_path)
    lost = [wal.append(f"lost-{i}".encode()) for i in range(3)]
    assert lost == [1, 2, 3]
    faults.fsync_error = errno.EIO
    faults.should_fail = lambda call: faults.fsyncs == 1  # only the commit's fsync; the cut's succeeds
    faults.fsyncs = 0
    with pytest.raises(DiskError, match="fsync failed"):
        wal.commit(lost[1])
    faults.clear()
    for ticket in lost:  # every waiter since the durable point is told, though the next fsync would pass
        with pytest.raises(DiskError):
            wal.commit(ticket)
    assert segment_sizes(tmp_path) == size and wal.next_seq == 1 and wal.committed_seq == 1
    # the lost records' numbers are used again: their old waiters are still told they failed
    again = [wal.append(f"again-{i}".encode()) for i in range(3)]
    assert again == [1, 2, 3]
    wal.commit(again[-1])
    for ticket in lost:
        with pytest.raises(DiskError):
            wal.commit(ticket)
    wal.commit(0)  # a record durable before the failure stays acknowledged
    wal.close()
    assert [p for _, p in stored(tmp_path)] == [b"durable", b"again-0", b"again-1", b"again-2"]


def test_a_commit_never_retries_a_failed_fsync_as_success(tmp_path, faults):
    # Two waiters share one group commit; its fsync fails. The second waiter must not run an fsync of its
    # own, get success (Linux reports a write-back error once), and acknowledge a record that was dropped.
    wal = WriteAheadLog(tmp_path)
    a, b = wal.append(b"a"), wal.append(b"b")
    faults.fsync_error = errno.EIO
    faults.should_fail = lambda call: faults.fsyncs == 1
    faults.fsyncs = 0
    with pytest.raises(DiskError):
        wal.commit(a)
    with pytest.raises(DiskError):
        wal.commit(b)
    faults.clear()
    assert stored(tmp_path) == []


def test_a_segment_that_cannot_be_created_refuses_and_leaves_the_log_whole(tmp_path, faults):
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    wal.commit(wal.append(b"x" * 60))  # the segment is full: the next append starts a new one
    faults.create_error = errno.ENOSPC
    with pytest.raises(DiskError, match="new segment"):
        wal.append(b"y" * 10)
    assert len(segment_sizes(tmp_path)) == 1
    faults.clear()
    wal.commit(wal.append(b"y" * 10))
    wal.close()
    assert stored(tmp_path, segment_bytes=64) == [(0, b"x" * 60), (1, b"y" * 10)]


def test_a_failed_fsync_at_rotation_fails_the_records_of_the_closed_segment(tmp_path, faults):
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    wal.commit(wal.append(b"a" * 20))
    unsynced = wal.append(b"b" * 20)
    faults.fsync_error = errno.EIO
    faults.should_fail = lambda call: faults.fsyncs == 1
    faults.fsyncs = 0
    with pytest.raises(DiskError):
        wal.append(b"c" * 30)  # rotates: the segment it closes cannot be synced
    with pytest.raises(DiskError):
        wal.commit(unsynced)
    faults.clear()
    wal.commit(wal.append(b"d" * 30))
    wal.close()
    assert stored(tmp_path, segment_bytes=64) == [(0, b"a" * 20), (1, b"d" * 30)]


def test_a_checkpoint_that_cannot_be_written_keeps_the_old_one_and_every_segment(tmp_path, faults):
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    for i in range(6):
        wal.commit(wal.append(bytes([i]) * 40))
    segments = len(segment_sizes(tmp_path))
    faults.fsync_error = errno.ENOSPC
    with pytest.raises(DiskError, match="checkpoint"):
        wal.advance(4, [4])
    assert wal.checkpoint == 0 and len(segment_sizes(tmp_path)) == segments
    assert not (tmp_path / "checkpoint.tmp").exists()
    faults.clear()
    assert WriteAheadLog(tmp_path, segment_bytes=64).checkpoint == 0
    wal.advance(4, [4])
    assert wal.checkpoint == 4 and len(segment_sizes(tmp_path)) < segments


def test_under_random_faults_from_many_threads_the_log_holds_exactly_what_was_acknowledged(tmp_path, faults):
    wal = WriteAheadLog(tmp_path, segment_bytes=2048)  # rotations happen under the faults too
    chance = random.Random(7)
    lock = threading.Lock()

    def should_fail(call: str) -> bool:
        with lock:
            return chance.random() < {"write": 0.05, "fsync": 0.08, "create": 0.3}[call]

    faults.write_error, faults.fsync_error, faults.create_error = errno.ENOSPC, errno.EIO, errno.ENOSPC
    faults.should_fail = should_fail
    acknowledged: list[bytes] = []
    refused = 0

    def writer(n: int) -> None:
        nonlocal refused
        for i in range(150):
            payload = f"{n}-{i}-".encode() * (1 + i % 9)
            try:
                wal.commit(wal.append(payload))
            except DiskError:
                with lock:
                    refused += 1
                continue
            with lock:
                acknowledged.append(payload)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    faults.clear()
    assert refused > 0 and len(acknowledged) > 0
    wal.close()
    found = stored(tmp_path, segment_bytes=2048)
    assert [seq for seq, _ in found] == list(range(len(found)))  # no gap, no number twice
    assert sorted(p for _, p in found) == sorted(acknowledged)  # nothing lost, nothing extra, nothing twice


def _request(span_id: int) -> ExportTraceServiceRequest:
    span = Span(trace_id=b"\x01" * 16, span_id=span_id.to_bytes(8, "big"), name="chat")
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


def test_the_pipeline_refuses_retryably_counts_and_recovers(tmp_path, faults):
    pipeline = Pipeline(tmp_path, workers=1)
    pipeline.submit(_request(1))
    assert not pipeline.disk_failing
    faults.write_error = errno.ENOSPC
    with pytest.raises(Backpressure) as refused:
        pipeline.submit(_request(2))
    assert refused.value.retry_after_s > 0 and "No space left" in str(refused.value)
    assert pipeline.counts["refused_disk"] == 1 and pipeline.counts["requests_logged"] == 1
    assert pipeline.disk_failing  # /readyz answers 503
    faults.clear()
    pipeline.submit(_request(3))
    assert not pipeline.disk_failing and pipeline.counts["requests_logged"] == 2
    pipeline.wal.close()
    assert len(stored(tmp_path / "wal")) == 2


def test_with_no_request_coming_a_probe_clears_the_failing_disk(tmp_path, faults, monkeypatch):
    # a load balancer that /readyz took the collector out of sends nothing to clear it with
    monkeypatch.setattr("costspan.collector.pipeline.DISK_PROBE_INTERVAL_S", 0.0)
    pipeline = Pipeline(tmp_path, workers=1)
    faults.fsync_error = errno.ENOSPC
    with pytest.raises(Backpressure):
        pipeline.submit(_request(1))
    assert pipeline.disk_failing  # the probe's fsync fails too
    faults.clear()
    assert not pipeline.disk_failing
    assert not list((tmp_path / "wal").glob("probe*"))


@pytest.fixture
def small_fs(tmp_path):
    """A real 1 MiB tmpfs (root only)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_really_full_file_system(small_fs):
    wal = WriteAheadLog(small_fs / "wal", segment_bytes=128 * 1024)
    ballast = small_fs / "ballast"
    ballast.write_bytes(b"\0" * (800 * 1024))  # about 200 KiB are left
    acknowledged = []
    causes: list[BaseException | None] = []
    errors = 0
    i = 0
    while errors < 20:
        payload = f"record-{i}-".encode() * 40
        i += 1
        try:
            wal.commit(wal.append(payload))
            acknowledged.append(payload)
        except DiskError as exc:
            causes.append(exc.__cause__)
            errors += 1
        assert i < 5000, "the file system never filled up"
    full = len(acknowledged)
    ballast.unlink()  # space returns: the next appends go on
    for j in range(50):
        payload = f"after-{j}-".encode() * 40
        wal.commit(wal.append(payload))
        acknowledged.append(payload)
    assert full > 20
    assert all(isinstance(c, OSError) and c.errno == errno.ENOSPC for c in causes)
    wal.close()
    found = stored(small_fs / "wal", segment_bytes=128 * 1024)
    assert [p for _, p in found] == acknowledged
    assert [seq for seq, _ in found] == list(range(len(acknowledged)))


def forwarder(directory: Path, endpoint: str) -> QueuedExporter:
    fast = RetrySettings(initial_interval=0.02, max_interval=0.05, max_elapsed_time=0)
    return QueuedExporter(
        "otlp", OTLPForwarder(ForwardSettings(endpoint=endpoint, timeout_s=5)), directory, retry=fast
    )


def test_a_batch_the_forward_queue_cannot_take_is_held_not_skipped(tmp_path, faults):
    exporter = forwarder(tmp_path / "q", f"http://127.0.0.1:{free_port()}")  # not started: it keeps all
    pipeline = Pipeline(tmp_path / "data", workers=1, exporters=[exporter])
    payloads = [chat_request(3).SerializeToString() for _ in range(3)]
    faults.write_error = errno.ENOSPC
    pipeline._apply(BatchReport(0, 4, 3, 0, CostTally(), forward=payloads[0]))
    pipeline._apply(BatchReport(0, 7, 3, 0, CostTally(), forward=payloads[1]))
    assert pipeline.positions == [0]  # the worker's position waits: a checkpoint now would lose them
    assert exporter.queue.pending_records == 0 and pipeline.counts["processing_errors"] == 2
    faults.clear()
    pipeline._apply(BatchReport(0, 9, 3, 0, CostTally(), forward=payloads[2]))
    assert pipeline.positions == [9]
    assert [p for _, p in exporter.pending()] == payloads  # each once, in order
    assert pipeline.counts["spans_processed"] == 9  # counted once each, when stored


def test_a_sent_record_whose_checkpoint_cannot_be_written_is_not_sent_again(tmp_path, faults):
    sink = OTLPSink().start()
    exporter = forwarder(tmp_path / "q", sink.endpoint)
    try:
        exporter.enqueue(chat_request(2).SerializeToString(), 2)
        faults.fsync_error = errno.ENOSPC  # the queue's checkpoint cannot be written
        exporter.start()
        wait_until(lambda: len(sink.spans) == 2)
        time.sleep(1.2)  # the consumer goes round a few times meanwhile
        assert exporter.queue.checkpoint == 0 and len(sink.spans) == 2
        faults.clear()
        wait_until(lambda: exporter.queue.checkpoint == 1)
        assert len(sink.spans) == 2 and exporter.counts["sent_spans"] == 2
    finally:
        exporter.stop()
        sink.stop()


def test_on_a_small_file_system_segments_are_small_enough_to_be_freed(tmp_path):
    # one segment of the default 64 MiB would take a 16 MiB disk whole, and a segment is removed only once
    # the next one starts: the log could not free what it had processed
    try:
        with small_filesystem(tmp_path / "fs", "16m") as mount:
            wal = WriteAheadLog(mount / "wal")
            assert wal.segment_bytes == 1024 * 1024  # a sixteenth of the disk
            for i in range(320):  # 19 MB in all
                wal.commit(wal.append(bytes([i % 256]) * 60_000))
                wal.advance(i + 1)  # processed as it comes: finished segments go
            wal.close()
            assert sum(segment_sizes(mount / "wal")) <= 1024 * 1024
    except MountRefused as exc:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {exc}")


def test_requests_are_refused_while_the_disk_is_nearly_full_so_the_log_can_drain(tmp_path):
    # with 2% of the disk kept free, the workers can still store what the log holds and checkpoint
    try:
        with small_filesystem(tmp_path / "fs", "16m") as mount:
            pipeline = Pipeline(mount / "data", workers=1)
            pipeline.submit(_request(1))
            ballast = mount / "ballast"
            fill(ballast)
            with ballast.open("r+b") as fh:  # leave 128 KiB: a request fits, but it is under the reserve
                fh.truncate(ballast.stat().st_size - 128 * 1024)
            time.sleep(0.1)
            with pytest.raises(Backpressure, match="reserve"):
                pipeline.submit(_request(2))
            assert pipeline.counts["refused_disk"] == 1 and pipeline.disk_failing
            ballast.unlink()
            time.sleep(0.1)
            pipeline.submit(_request(3))
            assert not pipeline.disk_failing
            pipeline.wal.close()
            assert len(stored(mount / "data" / "wal")) == 2
    except MountRefused as exc:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {exc}")


def test_a_segment_that_cannot_be_cut_back_is_neither_written_on_nor_closed(tmp_path, faults, monkeypatch):
    # the fsync fails, and so does the truncation after it: the segment holds whole records that were never
    # durable. No append may follow them, and no rotation may close the segment on them: a reopened log
    # would count them and number the next segment's records twice.
    wal = WriteAheadLog(tmp_path, segment_bytes=64)
    wal.commit(wal.append(b"a" * 20))
    lost = wal.append(b"b" * 20)
    real_ftruncate = os.ftruncate
    truncate_fails = True

    def ftruncate(fd: int, length: int) -> None:
        if truncate_fails:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_ftruncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", ftruncate)
    faults.fsync_error = errno.EIO
    with pytest.raises(DiskError):
        wal.commit(lost)
    faults.clear()
    for payload in (b"c" * 5, b"d" * 40):  # one that fits, one that would rotate
        with pytest.raises(DiskError, match="cut back"):
            wal.append(payload)
    truncate_fails = False
    wal.commit(wal.append(b"e" * 40))  # rotates, after the cut
    wal.close()
    assert stored(tmp_path, segment_bytes=64) == [(0, b"a" * 20), (1, b"e" * 40)]
