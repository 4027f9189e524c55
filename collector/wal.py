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
"""

from __future__ import annotations

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
MAX_RECORD_BYTES = 256 * 1024 * 1024


class WALError(RuntimeError):
    """The log cannot be written; receivers answer retryably."""


class WriteAheadLog:
    def __init__(self, directory: str | Path, *, segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
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
        self._file = None
        self._file_first = 0
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
            if path.stat().st_size < segment_bytes:
                self._file = path.open("ab")
                self._file_first = first

    # -- writing ---------------------------------------------------------------------------------------

    def append(self, payload: bytes) -> int:
        """Add a record; returns its sequence number. Durable only after :meth:`commit`."""
        if len(payload) > MAX_RECORD_BYTES:
            raise WALError(f"a record of {len(payload)} bytes is over {MAX_RECORD_BYTES}")
        record = _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._closed:
                raise WALError("the write-ahead log is closed: the collector is stopping")
            if self._file is None or (
                self._file.tell() + len(record) > self.segment_bytes and self._file.tell()
            ):
                self._rotate()
            assert self._file is not None
            try:
                self._file.write(record)
            except OSError as exc:
                raise WALError(f"write-ahead log write failed: {exc}") from exc
            seq = self.next_seq
            self.next_seq += 1
            self._unprocessed.append((seq, len(record), time.time()))
            self.pending_bytes += len(record)
            return seq

    def commit(self, seq: int) -> None:
        """Return once record ``seq`` and every record before it are on disk."""
        if seq < self._synced_seq:
            return
        with self._sync_lock:  # one fsync serves every append made before it
            if seq < self._synced_seq:
                return
            with self._lock:
                target = self.next_seq
                # A duplicate of the descriptor: an append may rotate (and close) the segment while this
                # fsync runs outside the lock; rotation fsyncs the segment it closes, and the duplicate
                # keeps this fsync's file open until it is done.
                fd = -1
                if self._file is not None:
                    self._file.flush()
                    fd = os.dup(self._file.fileno())
            if fd >= 0:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise WALError(f"write-ahead log fsync failed: {exc}") from exc
                finally:
                    os.close(fd)
            self._synced_seq = target

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        self._file_first = self.next_seq
        path = self.dir / f"wal-{self.next_seq:020d}.log"
        self._file = path.open("ab")
        fsync_path(self.dir)

    # -- reading ---------------------------------------------------------------------------------------

    def replay(self, start: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Records from ``start`` (default: the checkpoint) to the last committed one, in order."""
        start = self.checkpoint if start is None else start
        with self._lock:
            if self._file is not None:
                self._file.flush()
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
        tmp.write_text(f"{seq}\n{' '.join(map(str, reader_positions))}\n" if reader_positions else str(seq))
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(self._checkpoint_path)
        fsync_path(self.dir)
        self.checkpoint = seq
        self._reader_positions = reader_positions
        with self._lock:
            while self._unprocessed and self._unprocessed[0][0] < seq:
                self.pending_bytes -= self._unprocessed.popleft()[1]
        segments = _segments(self.dir)
        # a segment is finished when the next one starts at or before the checkpoint
        for (first, path), (next_first, _) in pairwise(segments):
            if next_first <= seq and not (self._file is not None and self._file_first == first):
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
        with self._lock:
            self._closed = True
            if self._file is not None:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
                self._file = None

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
