"""The write-ahead log: a request is acknowledged only once its spans are on disk.

Receivers append each request's spans (as OTLP protobuf bytes) and wait for :meth:`WriteAheadLog.commit`,
which fsyncs once for every append made before it (group commit: concurrent requests share one fsync).
The pipeline reads records back from its checkpoint, processes and exports them, then advances the
checkpoint. After a crash, everything after the checkpoint is replayed; exports are idempotent by trace and
span id, so a record replayed after it was exported is not counted twice.

Several readers may process the log, each its own share of it (the pipeline's workers, one per trace
partition, in processes of their own: :class:`WALReader`). Each has a position; the checkpoint is the lowest
of them, and a segment is deleted once every reader is past it.

Layout: ``<dir>/wal-<first sequence number>.log`` segments of records ``MAGIC | length u32 | crc32 u32 |
payload``, and ``<dir>/checkpoint`` holding the next sequence number to process on its first line and, on a
second line, each reader's position. A record cut short by a crash was never committed, so it was never
acknowledged: replay stops there and the tail is cut off.

A write, fsync or new segment that fails (a full disk, a quota, an I/O error) leaves the log as it was at its
last durable point: the segment is truncated back to it, every record appended since is forgotten (its
waiter's :meth:`~WriteAheadLog.commit` raises :class:`DiskError`, and its request is refused retryably), and
the next append simply tries again. So the log never holds a torn record followed by good ones, and a record
is acknowledged only once an fsync that covered it succeeded. A failed fsync is never retried and taken for
success: Linux may drop the pages it could not write back and report that to one fsync only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import pairwise
from pathlib import Path

from costspan.exporters.files import fsync_path

log = logging.getLogger(__name__)

MAGIC = b"\xc5\x70"
_HEADER = struct.Struct("<2sII")  # magic, payload length, crc32 of the payload
RECORD_OVERHEAD = _HEADER.size
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
# A segment is removed only once the next one has started and the checkpoint passed it: on a small file system
# one segment of the default size could take the whole disk and never be freed. Segments are at most this
# share of the file system (but not under MIN_SEGMENT_BYTES).
SEGMENT_SHARE_OF_DISK = 16
MIN_SEGMENT_BYTES = 1024 * 1024
MAX_RECORD_BYTES = 256 * 1024 * 1024


class WALError(RuntimeError):
    """The log cannot be written; receivers answer retryably."""


class DiskError(WALError):
    """A write, fsync or new segment of the log failed (a full disk, a quota, an I/O error): nothing of the
    records since the last durable point is kept, and the next append tries again."""


class Ticket(int):
    """An appended record's sequence number, with the epoch it was appended in. A failed write or fsync cuts
    the log back to its last durable point and starts a new epoch, in which the lost records' sequence
    numbers are used again: the epoch tells a waiter for a lost record from one for the record that now has
    its number."""

    epoch: int

    def __new__(cls, seq: int, epoch: int) -> Ticket:
        ticket = super().__new__(cls, seq)
        ticket.epoch = epoch
        return ticket


_MAX_FAILED_EPOCHS = 4096  # a waiter for a record of an epoch older than these is told it failed


class WriteAheadLog:
    def __init__(self, directory: str | Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = _fit_segment(self.dir, segment_bytes)
        self._lock = threading.Lock()
        # held while the segment is fsynced (a commit), rotated or closed: one fsync of a file at a time, so
        # that no second fsync is told "done" for pages whose write-back failed and was reported to the first
        self._sync_lock = threading.Lock()
        self._advance_lock = threading.Lock()  # a queue's producer may drop records its consumer passes
        self._checkpoint_path = self.dir / "checkpoint"
        self.checkpoint, self._reader_positions = self._read_checkpoint()
        self.next_seq = self.checkpoint
        self._synced_seq = 0
        self._reader = WALReader(self.dir)
        segments = _segments(self.dir)
        # find the end of the log: the number of whole records, cutting off a torn tail
        for first, path in segments:
            count, good_bytes = _scan(path)
            if good_bytes < path.stat().st_size:
                log.warning("write-ahead log %s: cutting a torn record at byte %d", path, good_bytes)
                with path.open("r+b") as fh:
                    fh.truncate(good_bytes)
                    os.fsync(fh.fileno())
            self.next_seq = max(self.next_seq, first + count)
        self._synced_seq = self.next_seq
        # The segment written to: a raw descriptor (a buffered file reports a failed write on some later
        # flush, when it can no longer be told which record it tore), the end of what is written to it, and
        # the end of what is durable in it (the records before _synced_seq). A failure cuts it back there.
        self._fd = -1
        self._file_first = 0
        self._offset = self._durable_offset = 0
        self._epoch = 0
        self._failed_epochs: dict[int, int] = {}  # a failed epoch -> the end of its durable records
        self._broken: OSError | None = None  # the cut after a failure did not succeed: try it again first
        self._closed = False  # at stop: an append after it would open a segment nobody processes or closes
        # sequence number, size and arrival time (wall clock; records found at start count as arriving then)
        # of the records after the checkpoint: what the pipeline still has to process
        started = time.time()
        self._unprocessed: deque[tuple[int, int, float]] = deque(
            (seq, _HEADER.size + len(payload), started) for seq, payload in self.replay(self.checkpoint)
        )
        self.pending_bytes = sum(size for _, size, _ in self._unprocessed)
        if segments:
            first, path = segments[-1]
            size = path.stat().st_size
            if size < self.segment_bytes:
                self._fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.fsync(self._fd)  # what an earlier process wrote and did not sync is durable from here
                except OSError:
                    os.close(self._fd)
                    raise
                self._file_first = first
                self._offset = self._durable_offset = size

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, payload: bytes) -> Ticket:
        """Add a record; returns its ticket (its sequence number). Durable only after :meth:`commit`.
        Raises :class:`DiskError` when it cannot be written (the log is left as it was)."""
        if len(payload) > MAX_RECORD_BYTES:
            raise WALError(f"a record of {len(payload)} bytes is over {MAX_RECORD_BYTES}")
        record = _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._closed:
                raise WALError("the write-ahead log is closed: the collector is stopping")
            if not self._needs_rotation(len(record)):
                return self._write(record)
        with self._sync_lock, self._lock:  # a rotation fsyncs the segment it closes
            if self._closed:
                raise WALError("the write-ahead log is closed: the collector is stopping")
            if self._needs_rotation(len(record)):
                self._rotate()
            return self._write(record)

    def _needs_rotation(self, size: int) -> bool:
        return self._fd < 0 or (self._offset + size > self.segment_bytes and self._offset > 0)

    def _repair(self) -> None:
        """Cut the segment back to its durable end if a failure left it longer (holding the lock): nothing is
        written after, and no segment is closed on, bytes that are not durable records."""
        if self._broken is not None:
            self._cut()
            if self._broken is not None:
                raise DiskError(f"write-ahead log cannot be cut back after a failure: {self._broken}")

    def _write(self, record: bytes) -> Ticket:
        """Write a record at the segment's end (holding the lock)."""
        self._repair()
        try:
            written = 0
            while written < len(record):  # a write to a file that is filling up may be short
                written += os.pwrite(self._fd, record[written:], self._offset + written)
        except OSError as exc:
            self._fail()
            raise DiskError(f"write-ahead log write failed: {exc}") from exc
        seq = self.next_seq
        self.next_seq += 1
        self._offset += len(record)
        self._unprocessed.append((seq, len(record), time.time()))
        self.pending_bytes += len(record)
        return Ticket(seq, self._epoch)

    def commit(self, seq: int) -> None:
        """Return once record ``seq`` (a :class:`Ticket`; a plain number is taken as of the current epoch)
        and every record before it are on disk. Raises :class:`DiskError` when a write or fsync failed
        before that: the record is not in the log, and its request is refused (retryably)."""
        with self._lock:
            if self._done(seq):
                return
        with self._sync_lock:  # one fsync serves every append made before it
            with self._lock:
                if self._done(seq):
                    return
                if self._broken is not None:
                    raise DiskError(f"write-ahead log cannot be cut back after a failure: {self._broken}")
                target, offset, first, epoch = self.next_seq, self._offset, self._file_first, self._epoch
                fd = self._fd
            error: OSError | None = None
            if fd >= 0:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    error = exc
            with self._lock:
                if error is not None:
                    # Linux may have dropped the pages it could not write, and tells only one fsync: never
                    # sync again and take it for done. What is not known to be durable is cut off.
                    self._fail()
                elif epoch == self._epoch and target > self._synced_seq:
                    self._synced_seq = target
                    if first == self._file_first:
                        self._durable_offset = offset
                if self._done(seq):
                    return
            raise DiskError(f"write-ahead log fsync failed: {error or 'a write failed meanwhile'}")

    def _done(self, seq: int) -> bool:
        """Whether a record is durable (holding the lock); raises DiskError when it was lost."""
        epoch = getattr(seq, "epoch", self._epoch)
        if epoch == self._epoch:
            return seq < self._synced_seq
        if seq < self._failed_epochs.get(epoch, -1):
            return True
        raise DiskError("write-ahead log write or fsync failed; the record is not in the log")

    def _fail(self) -> None:
        """After a failed write or fsync (holding the lock): forget every record since the last durable point
        (their waiters are told), and cut the segment back to it, so that no torn record is ever followed by
        good ones. The next append goes on from there."""
        if self.next_seq > self._synced_seq:
            self._failed_epochs[self._epoch] = self._synced_seq
            if len(self._failed_epochs) > _MAX_FAILED_EPOCHS:
                del self._failed_epochs[min(self._failed_epochs)]
            self._epoch += 1
            while self._unprocessed and self._unprocessed[-1][0] >= self._synced_seq:
                self.pending_bytes -= self._unprocessed.pop()[1]
            self.next_seq = self._synced_seq
        self._cut()

    def _cut(self) -> None:
        """Truncate the segment to its durable end (holding the lock); on failure, remember to try again."""
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, self._durable_offset)
            os.fsync(self._fd)
        except OSError as exc:
            log.error("write-ahead log: cannot cut the segment back to its durable end: %s", exc)
            self._broken = exc
            return
        self._offset = self._durable_offset
        self._broken = None

    def _rotate(self) -> None:
        """Close the segment (durable first) and start the next (holding both locks). On failure the log is
        as it was: the full segment stays open, and the next append tries again."""
        self._repair()
        if self._fd >= 0 and self.next_seq > self._synced_seq:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._fail()
                raise DiskError(f"write-ahead log fsync failed: {exc}") from exc
            self._synced_seq, self._durable_offset = self.next_seq, self._offset
        path = self.dir / f"wal-{self.next_seq:020d}.log"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DiskError(f"write-ahead log cannot start a new segment: {exc}") from exc
        try:
            fsync_path(self.dir)
        except OSError as exc:
            os.close(fd)
            # a segment that is not the last must never be empty of the records its name promises
            with contextlib.suppress(OSError):
                path.unlink()
            raise DiskError(f"write-ahead log cannot start a new segment: {exc}") from exc
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._file_first = fd, self.next_seq
        self._offset = self._durable_offset = 0
        self._broken = None

    def writable(self, size: int = 64 * 1024) -> bool:
        """Whether ``size`` bytes can be written and synced in the log's folder now (a probe, removed)."""
        probe = self.dir / "probe.tmp"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, b"\0" * size)
                os.fsync(fd)
            finally:
                os.close(fd)
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()

    # -- reading ---------------------------------------------------------------------------------------

    def replay(self, start: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Records from ``start`` (default: the checkpoint) to the last committed one, in order."""
        start = self.checkpoint if start is None else start
        return self._reader.replay(start, self._synced_seq)

    @property
    def committed_seq(self) -> int:
        """The sequence number after the last committed (durable, acknowledged) record."""
        return self._synced_seq

    @property
    def stored_positions(self) -> list[int]:
        """Each reader's position as last checkpointed (empty when none were kept)."""
        return list(self._reader_positions)

    def reader_positions(self, readers: int) -> list[int]:
        """Where each of ``readers`` readers goes on from: as last checkpointed when the log had as many
        readers, else the checkpoint for every one (what a reader had done past it is done again)."""
        if len(self._reader_positions) == readers:
            return [max(p, self.checkpoint) for p in self._reader_positions]
        return [self.checkpoint] * readers

    def advance(self, seq: int, reader_positions: Sequence[int] = ()) -> None:
        """Everything before ``seq`` is processed and exported: checkpoint, and drop finished segments.
        ``reader_positions``: each reader's own position (none before ``seq``), kept with the checkpoint."""
        with self._advance_lock:
            self._advance(seq, list(reader_positions))

    def _advance(self, seq: int, reader_positions: list[int]) -> None:
        if seq <= self.checkpoint and reader_positions == self._reader_positions:
            return
        seq = max(seq, self.checkpoint)
        tmp = self._checkpoint_path.with_suffix(".tmp")
        try:
            positions = " ".join(map(str, reader_positions))
            tmp.write_text(f"{seq}\n{positions}\n" if reader_positions else str(seq))
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
            tmp.replace(self._checkpoint_path)
            fsync_path(self.dir)
        except OSError as exc:
            # The checkpoint stays where it was (a replay does the records since again; nothing is lost),
            # and so does every segment; the caller tries again later.
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise DiskError(f"write-ahead log checkpoint cannot be written: {exc}") from exc
        self.checkpoint = seq
        self._reader_positions = reader_positions
        with self._lock:
            while self._unprocessed and self._unprocessed[0][0] < seq:
                self.pending_bytes -= self._unprocessed.popleft()[1]
        segments = _segments(self.dir)
        # a segment is finished when the next one starts at or before the checkpoint
        for (first, path), (next_first, _) in pairwise(segments):
            if next_first <= seq and not (self._fd >= 0 and self._file_first == first):
                path.unlink()

    @property
    def pending_records(self) -> int:
        """Committed or appended records after the checkpoint."""
        return len(self._unprocessed)

    def oldest_pending_age(self, now: float | None = None) -> float:
        """Seconds since the oldest record after the checkpoint arrived; 0 when there is none."""
        with self._lock:
            oldest = self._unprocessed[0][2] if self._unprocessed else None
        return 0.0 if oldest is None else max(0.0, (now or time.time()) - oldest)

    def disk_bytes(self) -> int:
        """The size of the log's segments on disk (processed records stay until their segment is done)."""
        total = 0
        for _, path in _segments(self.dir):
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # removed by a concurrent advance
                continue
        return total

    def close(self) -> None:
        with self._sync_lock, self._lock:
            self._closed = True
            if self._fd < 0:
                return
            try:
                if self.next_seq > self._synced_seq:
                    os.fsync(self._fd)
                    self._synced_seq, self._durable_offset = self.next_seq, self._offset
            except OSError as exc:  # nobody waits for those records any more: they are not kept
                log.error("write-ahead log: the last records could not be synced at close: %s", exc)
                self._fail()
            finally:
                os.close(self._fd)
                self._fd = -1

    # -- helpers ---------------------------------------------------------------------------------------

    def _read_checkpoint(self) -> tuple[int, list[int]]:
        """The checkpoint, and each reader's position when they were kept (else none)."""
        try:
            first, _, rest = self._checkpoint_path.read_text().partition("\n")
        except FileNotFoundError:
            return 0, []
        try:
            checkpoint = int(first.strip() or 0)
        except ValueError as exc:
            raise WALError(f"{self._checkpoint_path}: not a sequence number") from exc
        try:
            return checkpoint, [int(p) for p in rest.split()]
        except ValueError:  # none kept: every reader starts at the checkpoint
            return checkpoint, []


def start_new_log_at(directory: str | Path, seq: int) -> bool:
    """Number a log that does not exist yet from ``seq`` (its first record gets that sequence number); a log
    that exists is left as it is. Returns whether it was numbered. Storage names files by the records they
    came from, so a log made anew (its folder removed) must not number records as the earlier one did."""
    folder = Path(directory)
    checkpoint = folder / "checkpoint"
    if seq <= 0 or checkpoint.exists() or (folder.is_dir() and _segments(folder)):
        return False
    folder.mkdir(parents=True, exist_ok=True)
    tmp = checkpoint.with_suffix(".tmp")
    tmp.write_text(str(seq))
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(checkpoint)
    fsync_path(folder)
    return True


class WALReader:
    """Reads committed records of a log that another process (or object) writes.

    It reads on from where its last replay stopped: a cursor lets it seek there instead of reading (and
    checking) every record of the segment again, which grew quadratic with the segment's size."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        # where the record after the last one replayed starts: (its sequence number, segment, byte offset)
        self._cursor: tuple[int, int, int] | None = None

    def replay(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Records ``start`` to ``end`` (exclusive, at most the committed end of the log), in order."""
        cursor = self._cursor if self._cursor is not None and self._cursor[0] == start else None
        for first, path in _segments(self.dir):
            if first >= end:
                break
            if cursor is not None and first < cursor[1]:
                continue
            seq, offset = (cursor[0], cursor[2]) if cursor is not None and first == cursor[1] else (first, 0)
            for payload, next_offset in _records(path, offset):
                if seq >= end:
                    return
                if seq >= start:
                    self._cursor = (seq + 1, first, next_offset)
                    yield seq, payload
                seq += 1


def _fit_segment(directory: Path, segment_bytes: int) -> int:
    """``segment_bytes``, or less on a file system too small for it (:data:`SEGMENT_SHARE_OF_DISK`)."""
    try:
        fs = os.statvfs(directory)
    except OSError:
        return segment_bytes
    share = fs.f_blocks * fs.f_frsize // SEGMENT_SHARE_OF_DISK
    return min(segment_bytes, max(share, MIN_SEGMENT_BYTES))


def _segments(directory: Path) -> list[tuple[int, Path]]:
    out = []
    for path in directory.glob("wal-*.log"):
        try:
            out.append((int(path.stem.split("-", 1)[1]), path))
        except ValueError:
            continue
    return sorted(out)


def _records(path: Path, offset: int = 0) -> Iterator[tuple[bytes, int]]:
    """The whole records of a segment from byte ``offset``, each with the offset where the next begins."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:  # a finished segment, removed by a concurrent advance
        return
    with fh:
        fh.seek(offset)
        while True:
            header = fh.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            magic, length, crc = _HEADER.unpack(header)
            if magic != MAGIC or length > MAX_RECORD_BYTES:
                return
            payload = fh.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return
            offset += _HEADER.size + length
            yield payload, offset


def _scan(path: Path) -> tuple[int, int]:
    """How many whole records a segment holds, and where the last one ends."""
    count = end = 0
    for _, offset in _records(path):
        count += 1
        end = offset
    return count, end
