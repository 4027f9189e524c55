"""The pipeline runtime: receivers -> write-ahead log -> processor chain -> exporters.

A receiver's request is acknowledged once it is in the write-ahead log (fsynced, group-committed). A worker
thread reads the log from its checkpoint, decodes and processes batches of spans, writes them to Parquet
and the Prometheus counters, and only then advances the checkpoint. After a crash the records after the
checkpoint are processed again; storage keeps at most one row per trace and span id in the ``llm_calls``
view, so nothing is counted twice. When the log holds more unprocessed bytes than allowed, receivers are
answered retryably (HTTP 503 / gRPC UNAVAILABLE) instead of the process growing.

Parquet is the primary store and owns the checkpoint. Secondary exporters (OTLP forward) sit behind their
own persistent queues (:mod:`costspan.collector.queued_exporter`): the worker queues each processed batch,
enriched, to each of them before advancing the checkpoint, and their consumers send on their own time, so a
target that is down holds back neither Parquet nor the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.exporters.ancestry import AncestryWindow
from costspan.exporters.otlp_forward import enriched_request
from costspan.exporters.parquet import ParquetWriter
from costspan.exporters.prometheus import CostMetrics
from costspan.processors import Chain, SpanBatch, build_chain

from .otlp import batch_from_request
from .queued_exporter import QueuedExporter
from .receivers._sink import Backpressure, valid_spans
from .wal import WriteAheadLog

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING_BYTES = 256 * 1024 * 1024
MAX_BATCH_SPANS = 4096
FLUSH_INTERVAL_S = 0.2
DRAIN_TIMEOUT_S = 30.0  # at stop, processing what the log holds takes at most this long


class Pipeline:
    def __init__(
        self,
        data_dir: str | Path,
        chain: Chain | None = None,
        *,
        metrics: CostMetrics | None = None,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        exporters: Sequence[QueuedExporter] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.wal = WriteAheadLog(self.data_dir / "wal")
        self.chain = chain or build_chain()
        self.writer = ParquetWriter(self.data_dir)
        self.ancestry = AncestryWindow()
        self.metrics = metrics or CostMetrics()
        self.max_pending_bytes = max_pending_bytes
        self.exporters = list(exporters)  # the secondary ones, each behind its queue
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()  # receivers submit from many threads
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="costspan-pipeline", daemon=True)
        self.processed_seq = self.wal.checkpoint

    # -- the sink receivers call --------------------------------------------------------------------------

    def submit(self, request: ExportTraceServiceRequest) -> None:
        """Log a request durably; returns once it is on disk (the receiver then acknowledges it)."""
        if self.wal.pending_bytes > self.max_pending_bytes:
            with self._counts_lock:
                self.counts["refused_backpressure"] += 1
            raise Backpressure(1.0, "the collector's write-ahead log is full; retry shortly")
        seq = self.wal.append(request.SerializeToString())
        self.wal.commit(seq)
        spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._counts_lock:
            self.counts["requests_logged"] += 1
            self.counts["spans_received"] += spans
        self._wake.set()

    # -- the worker -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()
        for exporter in self.exporters:
            exporter.start()

    def stop(self, timeout: float = DRAIN_TIMEOUT_S + 5) -> None:
        """Stop after processing what the log holds (for up to :data:`DRAIN_TIMEOUT_S`), so that a graceful
        stop leaves every acknowledged span queryable; what is left stays in the log for the next start."""
        self._stop.set()
        self._wake.set()
        self._worker.join(timeout)
        if self._worker.is_alive():
            # the log is still in use: left open; the process exits and the next start goes on from the
            # checkpoint
            log.warning("pipeline: still processing at stop; the rest stays in the write-ahead log")
        else:
            self.wal.close()
        for exporter in self.exporters:
            exporter.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.process_pending():
                    self._wake.wait(FLUSH_INTERVAL_S)
                    self._wake.clear()
            except Exception:  # keep serving; the records stay in the log and are tried again
                log.exception("pipeline: processing failed; retrying")
                self.counts["processing_errors"] += 1
                time.sleep(1.0)
        self._drain()

    def _drain(self) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            while time.monotonic() < deadline and self.process_pending():
                pass
        except Exception:  # stopping all the same; the records stay in the log
            log.exception("pipeline: processing failed while stopping")
            self.counts["processing_errors"] += 1

    def process_pending(self) -> int:
        """Process what the log holds after the checkpoint; returns how many spans were processed."""
        spans = 0
        batches: list[SpanBatch] = []
        requests: list[ExportTraceServiceRequest] = []
        last = None
        for seq, payload in self.wal.replay(self.processed_seq):
            request = ExportTraceServiceRequest.FromString(payload)
            batch, rejected, _ = valid_spans(batch_from_request(request))
            self.counts["spans_rejected"] += rejected
            batches.append(batch)
            if self.exporters:
                requests.append(request)
            spans += len(batch)
            last = seq
            if spans >= MAX_BATCH_SPANS:
                break
        if last is None:
            return 0
        received = SpanBatch.concat(batches)
        done = self.chain(received)
        calls = [c for c in done.calls if c is not None]
        # calls to llm_calls; agent, tool ... spans, and the plain spans above them, to genai_spans
        self.writer.write([*calls, *self.ancestry.bridge_spans(done)])
        self.metrics.observe(calls)
        if self.exporters and len(done):
            forward = enriched_request(requests, received, done).SerializeToString()
            for exporter in self.exporters:
                exporter.enqueue(forward, len(done))
        self.processed_seq = last + 1
        self.wal.advance(self.processed_seq)
        self.counts["spans_processed"] += spans
        return spans
