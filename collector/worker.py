"""Pipeline workers: processes that turn the write-ahead log into Parquet rows and cost metrics.

The receivers' process only logs and acknowledges requests; decoding spans, the processor chain and writing
Parquet take most of a span's time, and run in worker processes, so that more than one core works (Python
runs one thread of a process at a time). Each worker owns a partition of the traces, by a hash of the trace
id: every worker reads every committed record of the log, parses it (protobuf's parser, cheap), and decodes,
processes and stores only the spans of its own traces. A trace's spans all go through the same worker, so
the processors that look across spans (dedupe by trace and span id, attribution from an enclosing agent,
the ancestry of GenAI spans) see what they would see in one process.

A worker reports each batch it has stored (:class:`BatchReport`) to the pipeline, over a pipe: where it is
in the log, what it counted, the Prometheus sums of the batch and, when spans are forwarded, the enriched
request. The pipeline applies the report and checkpoints the worker's position (:mod:`.pipeline`); a worker
keeps no state on disk but its Parquet files. After a crash each worker goes on from its checkpointed
position; its files name the log records they came from, and what it had stored from records past that
position is taken out before it is stored again (:mod:`costspan.exporters.replay`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
import zlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.exporters.ancestry import AncestryWindow
from costspan.exporters.otlp_forward import enriched_request
from costspan.exporters.parquet import ParquetWriter
from costspan.exporters.prometheus import CostTally
from costspan.exporters.replay import discard_unsettled
from costspan.processors import SpanBatch, chain_from_config

from .otlp import batch_from_request
from .receivers._sink import valid_spans
from .runtime import configure_gc
from .wal import WALReader

log = logging.getLogger(__name__)

MAX_WORKERS = 8
WARM_UP_SPANS = 50_000  # a new worker's dedupe window is filled with this many of the spans before it
MAX_BATCH_SPANS = 4096  # a worker's spans per batch: one Parquet file per table and hour
IDLE_POLL_S = 0.01  # how often an idle worker looks for newly committed records
RETRY_AFTER_ERROR_S = 1.0  # after a batch failed; doubled at each failure in a row, up to the next
MAX_RETRY_DELAY_S = 5.0  # a full disk is retried this often until space returns
STOP = "stop"  # process what is committed, then exit
STOP_NOW = "stop now"  # the stop's grace is running out: exit after the batch in hand (the rest stays logged)


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` of ``count``: the traces whose id hashes to it."""

    index: int = 0
    count: int = 1

    def holds(self, trace_id: bytes) -> bool:
        # batch_from_request has this inline
        return self.count == 1 or zlib.crc32(trace_id) % self.count == self.index


@dataclass
class WorkerSettings:
    """What a worker process is built from (picklable: it crosses to a new process)."""

    data_dir: str
    partition: Partition
    processors: Mapping[str, Any] = field(default_factory=dict)
    order: Sequence[str] | None = None
    forwarding: bool = False  # whether to build the enriched request for the OTLP forward exporters


@dataclass
class BatchReport:
    """A batch a worker has stored: every record before ``end_seq`` is done for its partition."""

    partition: int
    end_seq: int
    spans: int
    rejected: int
    tally: CostTally
    forward: bytes | None = None  # the enriched request, serialized, when forwarding
    error: str | None = None  # processing failed; the same records are tried again
    unreadable: int = 0  # spans normalize could not read (a conversion error), left out of the batch


class PartitionProcessor:
    """Decode, process and store one partition's spans of a range of log records."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.partition = settings.partition
        self.reader = WALReader(Path(settings.data_dir) / "wal")
        self.chain = chain_from_config(settings.processors, settings.order)
        self.writer = ParquetWriter(settings.data_dir, worker=(self.partition.index, self.partition.count))
        self.ancestry = AncestryWindow()

    def warm_up(self, position: int) -> int:
        """Fill dedupe's window from the log records before ``position`` that are still on disk (at most the
        last :data:`WARM_UP_SPANS` of this partition's spans), through normalize and dedupe only, storing
        nothing: after a restart, a re-sent span, or a record of a call whose twin was stored before it,
        is still recognised. Returns the spans replayed."""
        steps = [p for p in self.chain.processors if p.name in ("normalize", "dedupe")]
        if [p.name for p in steps] != ["normalize", "dedupe"] or position <= 0:
            return 0
        partition = self.partition
        reader = WALReader(self.reader.dir)
        own: list[tuple[int, int]] = []  # (sequence number, this partition's spans) of each record
        for seq, payload in reader.replay(0, position):
            request = ExportTraceServiceRequest.FromString(payload)
            own.append((seq, sum(partition.holds(s.trace_id) for rs in request.resource_spans
                                 for ss in rs.scope_spans for s in ss.spans)))  # fmt: skip
        start, total = position, 0
        for seq, count in reversed(own):
            if total + count > WARM_UP_SPANS:
                break
            start, total = seq, total + count
        for _, payload in reader.replay(start, position):
            request = ExportTraceServiceRequest.FromString(payload)
            batch = valid_spans(batch_from_request(request, partition))[0]
            if partition.count > 1:
                foreign = valid_spans(batch_from_request(request, partition, roots_of_others=True))[0]
                batch = SpanBatch.concat([batch, foreign])
            for step in steps:
                batch = step.function(batch, Counter())
        return total

    def discard_unreported(self, position: int) -> int:
        """Take out what this worker stored from log records at or after ``position`` (a process of it that
        crashed, or a batch that failed half-written), before they are processed again."""
        me = (self.partition.count, self.partition.index)
        return discard_unsettled(
            self.settings.data_dir, lambda tag: position if (tag.workers, tag.worker) == me else None
        )

    def process(self, start: int, end: int) -> BatchReport:
        """Records from ``start`` on (before ``end``, the committed end of the log), until the batch holds
        :data:`MAX_BATCH_SPANS` of this partition's spans."""
        spans = rejected = 0
        batches: list[SpanBatch] = []
        foreign: list[SpanBatch] = []
        requests: list[ExportTraceServiceRequest] = []
        forwarding = self.settings.forwarding
        partition = self.partition
        last = start - 1
        for seq, payload in self.reader.replay(start, end):
            request = ExportTraceServiceRequest.FromString(payload)
            batch, invalid, _ = valid_spans(batch_from_request(request, partition))
            rejected += invalid
            batches.append(batch)
            if partition.count > 1:
                # The root spans of the other partitions' traces. An instrumentation that never makes its
                # span current traces a call outside any span as a root beside the root of another
                # instrumentation's trace of it, which dedupe pairs across traces; these go through the
                # chain beside this partition's spans (so that a twin of one of ours is seen, and the twins'
                # owners decide alike), and are not stored here.
                foreign.append(valid_spans(batch_from_request(request, partition, roots_of_others=True))[0])
            if forwarding:
                requests.append(request)
            spans += len(batch)
            last = seq
            if spans >= MAX_BATCH_SPANS:
                break
        tally = CostTally()
        forward = None
        unreadable = 0
        if spans:
            received = SpanBatch.concat(batches)
            errors_before = self._normalize_errors()
            done = self.chain(SpanBatch.concat([received, *foreign]))
            unreadable = self._normalize_errors() - errors_before
            if len(done) > len(received):  # the other partitions' roots were there to be compared with
                done = done.head(len(received))
            calls = [c for c in done.calls if c is not None]
            # a record of another partition's trace that a record of ours supersedes is stored, and moved,
            # by its own worker, which sees ours among its foreign roots and decides alike
            superseded = [c for c in done.superseded if partition.holds(bytes.fromhex(c.trace_id))]
            # calls to llm_calls; agent, tool ... spans, and the plain spans above them, to genai_spans
            self.writer.write([*calls, *self.ancestry.bridge_spans(done)], superseded, seq=(start, last + 1))
            # Prometheus counted the superseded record's call when it was stored; counters cannot go down,
            # so the record that replaces it adds nothing
            replacing = {c.duplicate_of for c in done.superseded}
            tally = CostTally.of([c for c in calls if c.span_id not in replacing] if replacing else calls)
            if forwarding:
                forward = enriched_request(requests, received, done, partition).SerializeToString()
        return BatchReport(partition.index, last + 1, spans, rejected, tally, forward, unreadable=unreadable)

    def _normalize_errors(self) -> int:
        counts = self.chain.counts().get("normalize")
        return counts["errors"] if counts is not None else 0


def run_worker(
    settings: WorkerSettings, conn: Connection, committed: Any, start: int, parent_pid: int
) -> None:
    """A worker process's main loop: process what is committed after ``start``, report each batch, and at
    :data:`STOP` process what is left (the receivers have stopped) and exit; at :data:`STOP_NOW`, exit once
    the batch in hand is stored and reported. ``committed`` is a shared integer, the sequence number after
    the last committed record, which the pipeline raises."""
    _die_with_parent(parent_pid)
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the pipeline stops its workers
    # itself, once the receivers are closed, so that they drain the log first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    processor = PartitionProcessor(settings)
    processor.discard_unreported(start)
    processor.warm_up(start)
    configure_gc()
    conn.send(None)  # ready
    position = start
    stopping = False
    failures = 0  # batches failed in a row
    while True:
        end = committed.value
        if position < end:
            try:
                report = processor.process(position, end)
            except Exception as exc:  # the records stay in the log and are tried again
                failures += 1
                delay = min(RETRY_AFTER_ERROR_S * 2 ** (failures - 1), MAX_RETRY_DELAY_S)
                if failures == 1:
                    log.exception("pipeline worker %d: processing failed; retrying", settings.partition.index)
                else:  # a full disk fails every try alike: one traceback is enough
                    log.warning(
                        "pipeline worker %d: processing failed again (%s); retrying in %.0f s",
                        settings.partition.index,
                        exc,
                        delay,
                    )
                conn.send(BatchReport(settings.partition.index, position, 0, 0, CostTally(), error=str(exc)))
                time.sleep(delay)
                # The batch is done again as after a crash: what it wrote is taken out, and the processors
                # start afresh (their windows hold its records, which would be taken for re-sends). A failure
                # here ends the process; the pipeline starts it again, and the new one does the same.
                processor = PartitionProcessor(settings)
                processor.discard_unreported(position)
                processor.warm_up(position)
                continue
            position = report.end_seq
            failures = 0
            conn.send(report)
            if not conn.poll(0):
                continue
        elif stopping:
            break
        elif not conn.poll(IDLE_POLL_S):
            continue
        try:
            message = conn.recv()
        except EOFError:  # the pipeline's process is gone
            return
        if message == STOP:
            stopping = True
        elif message == STOP_NOW:
            break
    conn.send(STOP)


def _die_with_parent(parent_pid: int) -> None:
    """Be killed with the collector's process (Linux), so that a ``kill -9`` of it leaves no worker writing
    on while a restarted collector starts its own."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before that took effect
        os._exit(1)
