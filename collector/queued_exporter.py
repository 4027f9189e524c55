"""A secondary exporter behind a persistent queue, with retries: the OpenTelemetry Collector's exporterhelper.

Parquet is the primary store and owns the pipeline's checkpoint. Every other exporter (the OTLP forward
exporter) gets a :class:`QueuedExporter`: the pipeline worker appends each processed batch, encoded once,
to the exporter's own write-ahead log (``<data>/queues/<name>/``, fsynced before the pipeline's checkpoint
advances), and a consumer thread sends the records in order from the queue's own checkpoint. So a target
that is slow or down holds back nothing but its own queue:

- a retryable failure (connection refused, timeout, HTTP 429/502/503/504, gRPC UNAVAILABLE) is retried with
  exponential backoff, or after the target's ``Retry-After`` / ``RetryInfo``; the record stays queued;
- a permanent failure (HTTP 400, gRPC INVALID_ARGUMENT ...) drops that record for this exporter, counted;
- past ``max_elapsed_time`` of retries a record is dropped and counted (0: retry for ever);
- past ``max_bytes`` of queued data the oldest records are dropped, counted and logged as an error, so a
  target down for days cannot fill the disk.

Delivery is at least once: after a crash the record being sent is sent again, and the pipeline may queue a
batch again if it crashed between queueing it and its checkpoint. OTLP receivers (costspan's own included)
identify spans by trace and span id, so a repeat is recognisable downstream.
"""

from __future__ import annotations

import logging
import random
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from costspan.processors import PermanentError, RetryableError

from .wal import RECORD_OVERHEAD, WALError, WriteAheadLog

log = logging.getLogger(__name__)

QUEUE_SEGMENT_BYTES = 8 * 1024 * 1024
# a queued record is the span count (so drops and sends are counted without decoding) and the payload
_SPANS = struct.Struct("<I")
DEFAULT_QUEUE_BYTES = 256 * 1024 * 1024


class Exporter(Protocol):
    """What a queue sends to: raises RetryableError or PermanentError when a record is not delivered."""

    def export(self, payload: bytes) -> None: ...

    def close(self) -> None: ...


@dataclass
class RetrySettings:
    """The OpenTelemetry Collector's ``retry_on_failure``, with its defaults (seconds)."""

    enabled: bool = True
    initial_interval: float = 5.0
    max_interval: float = 30.0
    max_elapsed_time: float = 300.0  # 0: never give up on a record
    multiplier: float = 1.5
    randomization_factor: float = 0.5

    def delays(self) -> Callable[[], float]:
        """A function returning the next backoff delay, growing from ``initial_interval``."""
        interval = self.initial_interval

        def next_delay() -> float:
            nonlocal interval
            spread = interval * self.randomization_factor
            delay = random.uniform(interval - spread, interval + spread)
            interval = min(interval * self.multiplier, self.max_interval)
            return delay

        return next_delay


class QueuedExporter:
    """An exporter fed from its own persistent queue by a consumer thread."""

    def __init__(
        self,
        name: str,
        exporter: Exporter,
        directory: str | Path,
        *,
        retry: RetrySettings | None = None,
        max_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.name = name
        self.exporter = exporter
        self.queue = WriteAheadLog(directory, segment_bytes=QUEUE_SEGMENT_BYTES)
        self.retry = retry or RetrySettings()
        self.max_bytes = max_bytes
        # sent_spans, sent_records, dropped_spans:<reason>, errors:<kind>
        self.counts: Counter[str] = Counter()
        # the records before this one are sent; the queue's checkpoint catches up when it can be written
        self._sent_end = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"costspan-export-{name}", daemon=True)

    # -- the producer side (the pipeline worker) ---------------------------------------------------------

    def enqueue(self, payload: bytes, spans: int) -> None:
        """Queue a payload of ``spans`` spans durably (returns once it is on disk); past the byte limit,
        drop the oldest."""
        self.queue.commit(self.queue.append(_SPANS.pack(spans) + payload))  # raises DiskError: not queued
        if self.queue.pending_bytes > self.max_bytes:
            try:
                self._drop_oldest()
            except WALError as exc:  # the record is queued: this must not raise (it would be queued again)
                log.warning("exporter %s: cannot drop the oldest records yet (%s)", self.name, exc)
        self._wake.set()

    def _drop_oldest(self) -> None:
        dropped_records = dropped_spans = 0
        target = self.queue.checkpoint
        size = self.queue.pending_bytes
        for seq, record in self.queue.replay(self.queue.checkpoint):
            if size <= self.max_bytes or seq + 1 >= self.queue.next_seq:
                break  # the newest record stays
            size -= RECORD_OVERHEAD + len(record)
            dropped_records += 1
            dropped_spans += _SPANS.unpack_from(record)[0]
            target = seq + 1
        if not dropped_records:
            return
        self.queue.advance(target)
        self.counts["dropped_spans:queue_full"] += dropped_spans
        log.error(
            "exporter %s: queue over %d bytes; dropped its %d oldest record(s), %d span(s), unsent",
            self.name,
            self.max_bytes,
            dropped_records,
            dropped_spans,
        )

    def pending(self) -> Iterator[tuple[int, bytes]]:
        """The queued records, oldest first, as (span count, payload)."""
        for _, record in self.queue.replay(self.queue.checkpoint):
            yield _SPANS.unpack_from(record)[0], record[_SPANS.size :]

    # -- the consumer side -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self.exporter.close()
        self.queue.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.send_pending():
                    self._wake.wait(0.5)
                    self._wake.clear()
            except Exception:  # keep serving; the record stays queued
                log.exception("exporter %s: sending failed unexpectedly; retrying", self.name)
                self.counts["errors:internal"] += 1
                self._stop.wait(1.0)

    def send_pending(self) -> int:
        """Send what the queue holds, oldest first; returns how many records left the queue."""
        done = 0
        self._checkpoint()
        for seq, record in self.queue.replay(self.queue.checkpoint):
            if self._stop.is_set():
                break
            if seq < max(self.queue.checkpoint, self._sent_end):  # dropped while this loop ran, or sent
                continue
            (spans,) = _SPANS.unpack_from(record)
            outcome = self._send_with_retry(seq, record[_SPANS.size :], spans)
            if outcome is None:  # stopping: the record stays queued
                break
            self._sent_end = seq + 1
            self._checkpoint()
            done += 1
        return done

    def _checkpoint(self) -> None:
        """Checkpoint what is sent. One that cannot be written (a full disk) is tried again before the next
        send, and meanwhile nothing is sent twice; a crash before it sends those records again."""
        if self._sent_end <= self.queue.checkpoint:
            return
        try:
            self.queue.advance(self._sent_end)
        except WALError as exc:
            log.warning("exporter %s: cannot checkpoint its queue yet (%s)", self.name, exc)

    def _send_with_retry(self, seq: int, payload: bytes, spans: int) -> str | None:
        """Send one record until it is delivered or dropped; returns which, or None when stopping."""
        started = time.monotonic()
        next_delay = self.retry.delays()
        while True:
            try:
                self.exporter.export(payload)
            except PermanentError as exc:
                self.counts["errors:permanent"] += 1
                self.counts["dropped_spans:permanent_error"] += spans
                log.error("exporter %s: the target refused a record for good, dropped: %s", self.name, exc)
                return "dropped"
            except RetryableError as exc:
                self.counts["errors:retryable"] += 1
                delay = next_delay()
                retry_after = getattr(exc, "retry_after_s", None)
                if retry_after is not None:
                    delay = min(max(delay, retry_after), 300.0)
                elapsed = time.monotonic() - started
                if not self.retry.enabled or (
                    self.retry.max_elapsed_time and elapsed + delay > self.retry.max_elapsed_time
                ):
                    self.counts["dropped_spans:retries_exhausted"] += spans
                    log.error(
                        "exporter %s: gave up on a record after %.0f s of retries: %s",
                        self.name,
                        elapsed,
                        exc,
                    )
                    return "dropped"
                log.warning("exporter %s: %s; retrying in %.1f s", self.name, exc, delay)
                if self._stop.wait(delay):
                    return None
                if seq < self.queue.checkpoint:  # dropped from a full queue meanwhile
                    return "dropped"
                continue
            self.counts["sent_records"] += 1
            self.counts["sent_spans"] += spans
            return "sent"
