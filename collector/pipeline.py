"""The pipeline runtime: receivers -> write-ahead log -> worker processes -> exporters.

A receiver's request is acknowledged once it is in the write-ahead log (fsynced, group-committed). Worker
processes (:mod:`.worker`), each owning a partition of the traces, read the log from their positions,
decode and process their spans, write them to Parquet, and report each batch back here; the pipeline then
counts the batch's Prometheus sums, queues it to the secondary exporters, and only then checkpoints the
worker's position. After a crash the records after a worker's position are processed again; what the
worker had stored from them is taken out first (:mod:`costspan.exporters.replay`), so nothing is stored
twice. When the log holds more unprocessed bytes than allowed, receivers are answered retryably (HTTP 503 /
gRPC UNAVAILABLE) instead of the process growing; so are they when the log cannot be written (a full or
failing disk: :class:`~.wal.DiskError`), until a write succeeds again.

A stop (:meth:`Pipeline.stop`, once the receivers have answered what they accepted) first closes the intake:
a request still arriving is refused retryably, and one being logged is waited for. Only then does it read the
end of the log, which the workers drain to. Otherwise a request between its append and its answer would be
acknowledged after the workers had stopped short of it and the log was closed. Nothing is appended after
:meth:`WriteAheadLog.close`.

Parquet is the primary store and owns the checkpoint. Secondary exporters (OTLP forward) sit behind their
own persistent queues (:mod:`costspan.collector.queued_exporter`): each processed batch is queued, enriched,
to each of them before the checkpoint advances, and their consumers send on their own time, so a target that
is down holds back neither Parquet nor the log.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.exporters.layout import WriterTag
from costspan.exporters.migrate import migrate
from costspan.exporters.prometheus import CostMetrics
from costspan.exporters.replay import Checkpoints, discard_unsettled, highest_record

from .content_filter import ContentFilter
from .queued_exporter import QueuedExporter
from .receivers._sink import Backpressure
from .wal import DiskError, WriteAheadLog, start_new_log_at
from .worker import (
    MAX_WORKERS,
    STOP,
    STOP_NOW,
    BatchReport,
    Partition,
    PartitionProcessor,
    WorkerSettings,
    run_worker,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING_BYTES = 256 * 1024 * 1024
DRAIN_TIMEOUT_S = 30.0  # at stop, processing what the log holds takes at most this long
EXIT_WAIT_S = 5.0  # past a stop's time: for a worker to finish the batch in hand, the listener to apply it
FINISH_BATCH_S = 5.0  # at most this much of a stop's time is left for the workers' batches in hand
RESTART_DELAY_S = 1.0  # before a worker process that died is started again
DISK_RETRY_AFTER_S = 2.0  # what a request refused for a failing disk is told to wait
DISK_PROBE_INTERVAL_S = 1.0
# Requests are refused (reason disk) while less than this share of the data directory's file system is free
# (at most DISK_RESERVE_MAX_BYTES): what is left lets the workers store what the log holds, and checkpoint, so
# that the log drains and frees its segments instead of filling the disk until nothing can move.
DISK_RESERVE_SHARE = 0.02
DISK_RESERVE_MAX_BYTES = 256 * 1024 * 1024
SPACE_CHECK_INTERVAL_S = 0.05


def default_workers() -> int:
    """One worker per core (the receivers' process takes its share besides), at most :data:`MAX_WORKERS`."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


class Pipeline:
    def __init__(
        self,
        data_dir: str | Path,
        processors: Mapping[str, Any] | None = None,
        order: Sequence[str] | None = None,
        *,
        workers: int | None = None,
        metrics: CostMetrics | None = None,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        exporters: Sequence[QueuedExporter] = (),
    ) -> None:
        """``processors`` and ``order``: the processor chain, as :func:`costspan.processors.chain_from_config`
        takes it (each worker builds its own)."""
        self.data_dir = Path(data_dir)
        # a log made anew beside stored files (its folder removed) numbers its records after theirs: the
        # replay's rule tells files apart by the log records they came from
        start_new_log_at(self.data_dir / "wal", highest_record(self.data_dir))
        self.wal = WriteAheadLog(self.data_dir / "wal")
        self.processors = dict(processors or {})
        self.order = list(order) if order is not None else None
        self.content_filter = ContentFilter.for_chain(self.processors, self.order)
        self.workers = workers or default_workers()
        self.metrics = metrics or CostMetrics()
        self.max_pending_bytes = max_pending_bytes
        self.exporters = list(exporters)  # the secondary ones, each behind its queue
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()  # receivers submit from many threads
        self._disk_failed_at: float | None = None  # when a write to the log last failed (monotonic clock)
        self._space_checked_at = float("-inf")
        # the free bytes above the reserve as last looked at, less what the log took since: between two looks
        # a burst of requests must not write the reserve away (the workers need it to drain the log)
        self._space_above_reserve: int | None = None
        self._space_lock = threading.Lock()
        self._context = mp.get_context("spawn")  # never fork a process that runs gRPC's threads
        self._committed = self._context.RawValue("q", self.wal.committed_seq)  # read by every worker
        self._committed_lock = threading.Lock()  # only this process writes it, from many threads
        self._intake = threading.Condition()  # guards the two below
        self._intake_closed = False
        self._in_flight = 0  # submits between their check of the intake and their commit
        self.positions = self.wal.reader_positions(self.workers)  # where each worker is in the log
        self._processes: list[BaseProcess | None] = [None] * self.workers
        self._conns: list[Connection | None] = [None] * self.workers
        self._stopped: set[int] = set()
        # per worker, its stored batches not yet queued to every forward exporter (a full disk), in order,
        # each with the exporters it has still to reach: the worker's position waits for them
        self._held: list[deque[tuple[BatchReport, list[QueuedExporter]]]] = [
            deque() for _ in range(self.workers)
        ]
        self._stop = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="costspan-pipeline", daemon=True)

    # -- the sink receivers call --------------------------------------------------------------------------

    def submit(self, request: ExportTraceServiceRequest, encoded: bytes | None = None) -> None:
        """Log a request durably; returns once it is on disk (the receiver then acknowledges it). ``encoded``:
        the request's protobuf encoding, when the receiver has it. Once the pipeline is stopping it refuses
        (Backpressure: the client retries, against the next start)."""
        with self._intake:
            if self._intake_closed:
                raise Backpressure(1.0, "the collector is stopping; retry shortly")
            self._in_flight += 1
        try:
            if self.wal.pending_bytes > self.max_pending_bytes:
                with self._counts_lock:
                    self.counts["refused_backpressure"] += 1
                raise Backpressure(1.0, "the collector's write-ahead log is full; retry shortly")
            short = self._space_left(taking=len(encoded) if encoded is not None else request.ByteSize())
            if short is not None:
                self._disk_refused(DiskError(short))
                raise Backpressure(DISK_RETRY_AFTER_S, f"the collector's disk is full: {short}")
            request, encoded = self.content_filter.before_log(request, encoded)  # no content rests in the log
            try:
                ticket = self.wal.append(request.SerializeToString() if encoded is None else encoded)
                self.wal.commit(ticket)
            except DiskError as exc:
                self._disk_refused(exc)
                raise Backpressure(DISK_RETRY_AFTER_S, f"the collector cannot write its log: {exc}") from exc
            if self._disk_failed_at is not None:
                self._disk_failed_at = None
                log.info("pipeline: the write-ahead log takes requests again")
            self._publish(self.wal.committed_seq)
        finally:
            with self._intake:
                self._in_flight -= 1
                if not self._in_flight:
                    self._intake.notify_all()
        spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._counts_lock:
            self.counts["requests_logged"] += 1
            self.counts["spans_received"] += spans

    def _disk_refused(self, exc: DiskError) -> None:
        with self._counts_lock:
            self.counts["refused_disk"] += 1
        if self._disk_failed_at is None:  # once per episode: under load every request fails alike
            log.error("pipeline: refusing requests (retryably) for the disk: %s", exc)
        self._disk_failed_at = time.monotonic()

    def _space_left(self, *, fresh: bool = False, taking: int = 0) -> str | None:
        """Why the data directory's file system has too little space left (:data:`DISK_RESERVE_SHARE`) for
        ``taking`` more bytes, or None (then they are counted as taken); the file system is looked at no more
        than every :data:`SPACE_CHECK_INTERVAL_S` unless ``fresh``."""
        now = time.monotonic()
        with self._space_lock:
            if fresh or now - self._space_checked_at >= SPACE_CHECK_INTERVAL_S:
                self._space_checked_at = now
                try:
                    fs = os.statvfs(self.data_dir)
                except OSError:  # cannot tell: the writes will
                    self._space_above_reserve = None
                else:
                    free = fs.f_bavail * fs.f_frsize
                    reserve = min(int(fs.f_blocks * fs.f_frsize * DISK_RESERVE_SHARE), DISK_RESERVE_MAX_BYTES)
                    self._space_above_reserve = free - reserve
            above = self._space_above_reserve
            if above is None:
                return None
            if above < taking or above <= 0:
                return f"{max(0, above)} bytes free above the reserve kept for storing what the log holds"
            self._space_above_reserve = above - taking
            return None

    @property
    def disk_failing(self) -> bool:
        """Whether the last write to the log failed (its disk is full or failing). Cleared by the next request
        the log takes, or by a probe write that succeeds (at most one a second): a collector that ``/readyz``
        took out of a load balancer's rotation gets no request to clear it with."""
        failed_at = self._disk_failed_at
        if failed_at is None:
            return False
        if time.monotonic() - failed_at >= DISK_PROBE_INTERVAL_S:
            if self._space_left(fresh=True) is None and self.wal.writable():
                self._disk_failed_at = None
                log.info("pipeline: the write-ahead log's disk takes writes again")
                return False
            self._disk_failed_at = time.monotonic()
        return True

    def _publish(self, committed: int) -> None:
        """Let the workers go on to ``committed``. Receivers' threads commit concurrently, and one that read
        an older end of the log must not write it over a newer one: the workers would stop short of records
        already acknowledged."""
        with self._committed_lock:
            if committed > self._committed.value:
                self._committed.value = committed

    def close_intake(self, timeout: float) -> bool:
        """Refuse new requests (retryably) and wait up to ``timeout`` for those being logged; returns whether
        none is left. After it, the log's end is final: no record is acknowledged that the stop does not
        see."""
        with self._intake:
            self._intake_closed = True
            return self._intake.wait_for(lambda: self._in_flight == 0, max(0.0, timeout))

    # -- the workers --------------------------------------------------------------------------------------

    def live_workers(self) -> int:
        return sum(1 for p in self._processes if p is not None and p.is_alive())

    def start(self) -> None:
        migrate(self.data_dir)  # a data directory of an earlier version, once
        self._recover()
        for index in range(self.workers):
            self._start_worker(index)
        self._listener.start()
        for exporter in self.exporters:
            exporter.start()

    def settled(self, tag: WriterTag) -> bool:
        """Whether a worker's file holds only records before the worker's durable checkpoint (compaction
        merges only those: a replay after a crash writes the others again)."""
        return Checkpoints(self.wal.checkpoint, self.wal.stored_positions).settled(tag)

    def _recover(self) -> None:
        """Before the workers start: take out what any worker stored past its checkpoint (the workers store
        it again), and when the number of workers changed, bring the old partitions up to one position."""
        stored = self.wal.stored_positions
        discard_unsettled(self.data_dir, Checkpoints(self.wal.checkpoint, stored).position)
        if len(stored) > 1 and len(stored) != self.workers and len(set(stored)) > 1:
            self._finish_old_partitions(stored)
            self.positions = self.wal.reader_positions(self.workers)

    def _finish_old_partitions(self, stored: list[int]) -> None:
        """Process each old partition from its position up to the furthest one, with the old number of
        partitions, here and now: afterwards every stored file lies wholly before one position, from which
        the new partitions go on. (Starting them all at the lowest position instead would process again,
        for every trace, records that some old worker had stored past it.)"""
        target = max(stored)
        log.info(
            "pipeline: %d workers, %d before: the old partitions first go on to %d",
            self.workers,
            len(stored),
            target,
        )
        for index, position in enumerate(stored):
            processor = PartitionProcessor(self._settings(Partition(index, len(stored))))
            while position < target:
                report = processor.process(position, target)
                if report.end_seq <= position:
                    break  # the log ends before (it cannot: records after the checkpoint are kept)
                self._count(report)
                position = report.end_seq
        self.wal.advance(target, [target] * self.workers)

    def _settings(self, partition: Partition) -> WorkerSettings:
        return WorkerSettings(
            str(self.data_dir), partition, self.processors, self.order, forwarding=bool(self.exporters)
        )

    def _start_worker(self, index: int) -> None:
        settings = self._settings(Partition(index, self.workers))
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=run_worker,
            args=(settings, theirs, self._committed, self.positions[index], os.getpid()),
            name=f"costspan-worker-{index}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._processes[index], self._conns[index] = process, ours
        if self._stop.is_set():  # stop() may have told the others before this one was there
            ours.send(STOP)

    def stop(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Stop within ``timeout`` seconds, once the receivers have answered what they accepted: refuse new
        requests, let the workers process what the log holds, and close the log. When the time runs short,
        each worker stops after the batch in hand (its position is checkpointed; the rest of the log is
        processed after the next start); a worker that does not is killed. Returns whether the log was
        processed to its end."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._listener.ident is None:  # never started
            self.close_intake(0.0)
            self.wal.close()
            return True
        if not self.close_intake(deadline - time.monotonic()):
            log.warning("pipeline: a request was still being logged at stop")
        self._publish(self.wal.committed_seq)  # the end of the log, final: the workers drain to it
        self._stop.set()
        self._tell_workers(STOP)
        # the batch in hand takes a worker about a second; keep a share of the time for it
        finish = min(FINISH_BATCH_S, (deadline - time.monotonic()) / 4)
        self._listener.join(max(0.0, deadline - finish - time.monotonic()))
        drained = not self._listener.is_alive()
        if not drained:
            log.warning("pipeline: still processing at the end of the grace period; the rest stays logged")
            self._tell_workers(STOP_NOW)
            self._listener.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process is None:
                continue
            process.join(max(EXIT_WAIT_S, deadline - time.monotonic()))  # it said STOP and is exiting
            if process.is_alive():
                log.error("pipeline: worker %s did not stop in time; killed", process.name)
                process.kill()
        self._listener.join(EXIT_WAIT_S)  # it applies the last reports and checkpoints them
        with self._intake:
            logging_done = self._in_flight == 0
        if logging_done:
            self.wal.close()  # nothing can append any more: the intake is closed and empty
        else:
            log.error("pipeline: a request is still being logged; the log is left open")
        for exporter in self.exporters:
            exporter.stop()
        return drained

    def _tell_workers(self, message: str) -> None:
        for conn in self._conns:
            if conn is not None:
                with contextlib.suppress(OSError):  # that worker is gone; its records stay in the log
                    conn.send(message)

    def _listen(self) -> None:
        """Apply the workers' reports as they come; restart a worker whose process died."""
        while len(self._stopped) < self.workers:
            live = {conn: index for index, conn in enumerate(self._conns) if conn is not None}
            for conn in wait(list(live), timeout=1.0):
                index = live[conn]  # type: ignore[index]
                try:
                    message = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    self._worker_died(index)
                    continue
                if message == STOP:
                    self._stopped.add(index)
                    self._conns[index] = None
                elif isinstance(message, BatchReport):
                    self._apply(message)  # a batch it cannot queue yet is held (the worker's position stays)
            self._queue_held()
            # One checkpoint per round, after the round's batches are counted and queued (nothing is written
            # when no worker moved); one that fails is written by the next round.
            try:
                self.wal.advance(min(self.positions), self.positions)
            except DiskError as exc:  # a full disk: the same each round until space returns
                log.warning("pipeline: checkpointing failed (%s); trying again", exc)
                with self._counts_lock:
                    self.counts["processing_errors"] += 1
            except Exception:
                log.exception("pipeline: checkpointing failed; trying again")
                with self._counts_lock:
                    self.counts["processing_errors"] += 1

    def _worker_died(self, index: int) -> None:
        self._conns[index] = None
        process = self._processes[index]
        code = process.exitcode if process is not None else None
        with self._counts_lock:
            self.counts["processing_errors"] += 1
        if self._stop.is_set():
            log.error("pipeline worker %d exited (%s) at stop; its records stay in the log", index, code)
            self._stopped.add(index)
            return
        log.error("pipeline worker %d exited (%s); starting it again", index, code)
        if self._stop.wait(RESTART_DELAY_S):  # stopping meanwhile
            self._stopped.add(index)
            return
        self._start_worker(index)
        with self._counts_lock:
            self.counts["worker_restarts"] += 1

    def _apply(self, report: BatchReport) -> None:
        if report.error is not None:
            with self._counts_lock:
                self.counts["processing_errors"] += 1
            return
        self._count_stored(report)
        forward_to = list(self.exporters) if report.spans and report.forward is not None else []
        self._held[report.partition].append((report, forward_to))
        self._queue_held(report.partition)

    def _queue_held(self, partition: int | None = None) -> None:
        """Queue each worker's held batches, oldest first, to the exporters they have not reached; a worker's
        position (checkpointed by _listen) passes a batch once every exporter has it. A queue that cannot be
        written (a full disk) holds the rest back until a later round: nothing is skipped or queued twice."""
        for index in range(self.workers) if partition is None else (partition,):
            held = self._held[index]
            try:
                while held:
                    report, forward_to = held[0]
                    while forward_to:
                        forward_to[0].enqueue(report.forward, report.spans)  # type: ignore[arg-type]
                        forward_to.pop(0)
                    held.popleft()
                    self.positions[index] = report.end_seq
            except Exception as exc:
                log.warning(
                    "pipeline: queueing worker %d's batch to forward failed (%s); trying again", index, exc
                )
                with self._counts_lock:
                    self.counts["processing_errors"] += 1

    def _count_stored(self, report: BatchReport) -> None:
        """A stored batch's sums to Prometheus."""
        with self._counts_lock:
            self.counts["spans_rejected"] += report.rejected
            self.counts["spans_unreadable"] += report.unreadable
        if report.spans:
            self.metrics.add(report.tally)
        with self._counts_lock:
            self.counts["spans_processed"] += report.spans

    def _count(self, report: BatchReport) -> None:
        """A stored batch's sums to Prometheus, its enriched spans to the forward exporters' queues."""
        self._count_stored(report)
        if report.spans and report.forward is not None:
            for exporter in self.exporters:
                exporter.enqueue(report.forward, report.spans)
