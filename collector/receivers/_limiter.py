"""The memory limiter: a bound on the bytes of requests the receivers hold at once.

Like the OpenTelemetry Collector's ``memory_limiter``, it sits first and refuses retryably (HTTP 503 with
``Retry-After``, gRPC UNAVAILABLE with ``RetryInfo``) instead of letting the process grow; standard OTLP
exporters retry, so nothing is lost. Where the Go limiter samples the heap, this one counts what the
receivers hold: a request's body from the moment its size is known (``Content-Length``, then the size after
decompression; the message size over gRPC), then once decoded the memory it takes as estimated by
:mod:`._decoded_size`, until it is durable in the write-ahead log. A single request larger than the whole
limit is admitted when nothing else is in flight, so the body-size limit alone decides it.
"""

from __future__ import annotations

import threading
from collections import Counter

from ._sink import Backpressure

DEFAULT_MAX_IN_FLIGHT_BYTES = 128 * 1024 * 1024


class MemoryLimiter:
    def __init__(self, max_in_flight_bytes: int = DEFAULT_MAX_IN_FLIGHT_BYTES) -> None:
        self.max_in_flight_bytes = max_in_flight_bytes
        self.in_flight_bytes = 0
        self.counts: Counter[str] = Counter()  # refused requests
        self._lock = threading.Lock()

    def acquire(self, nbytes: int) -> None:
        """Hold ``nbytes`` more, or raise :class:`Backpressure` when that would pass the limit."""
        if nbytes <= 0:
            return
        with self._lock:
            if self.in_flight_bytes and self.in_flight_bytes + nbytes > self.max_in_flight_bytes:
                self.counts["memory_limit"] += 1
                raise Backpressure(1.0, "the collector holds too many requests in memory; retry shortly")
            self.in_flight_bytes += nbytes

    def release(self, nbytes: int) -> None:
        if nbytes <= 0:
            return
        with self._lock:
            self.in_flight_bytes -= nbytes


class Reservation:
    """The bytes one request holds; grows as its size becomes known, released once."""

    def __init__(self, limiter: MemoryLimiter | None) -> None:
        self.limiter = limiter
        self.held = 0

    def grow_to(self, nbytes: int) -> None:
        if self.limiter is not None and nbytes > self.held:
            self.limiter.acquire(nbytes - self.held)
            self.held = nbytes

    def release(self) -> None:
        if self.limiter is not None:
            self.limiter.release(self.held)
        self.held = 0
