"""The collector's own health on the admin ``/metrics``, under ``costspan_collector_*``.

Read from the pipeline, its queues and the receivers at scrape time (a prometheus-client custom collector),
so the hot path only bumps plain counters:

- ``costspan_collector_spans_received_total``: spans in requests made durable (acknowledged);
- ``costspan_collector_spans_rejected_total``: spans without valid ids (partial success);
- ``costspan_collector_spans_unreadable_total``: spans left out because they could not be read into a call
  record (a conversion error: a defect to report, with the span logged at debug level);
- ``costspan_collector_requests_refused_total{reason}``: requests refused, retryably for ``memory_limit``
  (the receivers hold too many bytes), ``wal_full`` (too many unprocessed bytes in the log) and ``disk`` (the
  log could not be written, or its disk is under the free space kept in reserve), for good for
  ``invalid`` (HTTP 400, gRPC INVALID_ARGUMENT), ``unauthenticated``, ``too_large`` (HTTP 413, or gRPC
  RESOURCE_EXHAUSTED for a request that would take over 16 times its size decoded) and ``unsupported``
  (HTTP 415);
- ``costspan_collector_spans_written_total``: spans processed into Parquet and the cost counters;
- ``costspan_collector_wal_pending_bytes`` / ``costspan_collector_wal_disk_bytes``: the log's unprocessed
  bytes, and its size on disk;
- ``costspan_collector_data_dir_free_bytes`` / ``costspan_collector_data_dir_size_bytes``: space left to
  the collector (not to root) on the data directory's file system, and its size;
- ``costspan_collector_in_flight_bytes``: what the requests the receivers hold take now (decoded, as
  estimated);
- ``costspan_collector_exporter_queue_bytes{exporter}`` / ``..._queue_records{exporter}``: what waits to be
  sent (for ``parquet``, the log after its checkpoint);
- ``costspan_collector_exporter_sent_spans_total{exporter}``;
- ``costspan_collector_exporter_errors_total{exporter,kind}``: ``retryable`` or ``permanent`` failures;
- ``costspan_collector_exporter_dropped_spans_total{exporter,reason}``: ``permanent_error``,
  ``retries_exhausted`` or ``queue_full``;
- ``costspan_collector_export_lag_seconds{exporter}``: the age of the oldest record not yet exported;
- ``costspan_collector_pipeline_workers``: the pipeline's worker processes alive now, and
  ``costspan_collector_pipeline_worker_restarts_total``: how often one died and was started again.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .pipeline import Pipeline
from .receivers._limiter import MemoryLimiter

PREFIX = "costspan_collector_"
PRIMARY = "parquet"
# refusals the receivers count, by the reason they are reported under
_RECEIVER_REFUSALS = (
    ("invalid", ("refused_400", "refused_invalid_argument")),
    ("unauthenticated", ("refused_401", "refused_unauthenticated")),
    ("too_large", ("refused_413", "refused_resource_exhausted")),
    ("unsupported", ("refused_415",)),
)


class HealthMetrics(Collector):
    def __init__(
        self,
        pipeline: Pipeline,
        limiter: MemoryLimiter | None = None,
        receivers: Sequence[Counter[str]] = (),
    ) -> None:
        self.pipeline = pipeline
        self.limiter = limiter
        self.receivers = receivers  # each receiver's counts

    def collect(self) -> Iterator[Metric]:
        pipeline = self.pipeline
        counts = pipeline.counts
        wal = pipeline.wal

        def counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(PREFIX + name, help_text, value=value)

        yield counter(
            "spans_received", "Spans in requests made durable and acknowledged.", counts["spans_received"]
        )
        yield counter(
            "spans_rejected", "Spans refused for invalid trace or span ids.", counts["spans_rejected"]
        )
        yield counter(
            "spans_unreadable",
            "Spans left out because they could not be read into a call record (a conversion error; logged "
            "at debug level).",
            counts["spans_unreadable"],
        )
        yield counter(
            "spans_written", "Spans processed into Parquet and the cost metrics.", counts["spans_processed"]
        )
        refused = CounterMetricFamily(
            PREFIX + "requests_refused", "Requests refused retryably, by reason.", labels=["reason"]
        )
        refused.add_metric(["wal_full"], counts["refused_backpressure"])
        refused.add_metric(["disk"], counts["refused_disk"])
        refused.add_metric(["memory_limit"], self.limiter.counts["memory_limit"] if self.limiter else 0)
        for reason, keys in _RECEIVER_REFUSALS:
            refused.add_metric([reason], sum(counts[key] for counts in self.receivers for key in keys))
        yield refused
        yield GaugeMetricFamily(
            PREFIX + "wal_pending_bytes", "Unprocessed bytes in the write-ahead log.", value=wal.pending_bytes
        )
        yield GaugeMetricFamily(
            PREFIX + "wal_disk_bytes", "The write-ahead log's size on disk.", value=wal.disk_bytes()
        )
        yield from _data_dir_space(pipeline.data_dir)
        yield GaugeMetricFamily(
            PREFIX + "in_flight_bytes",
            "Request bytes the receivers hold now (bounded by the memory limiter).",
            value=self.limiter.in_flight_bytes if self.limiter else 0,
        )

        queue_bytes = GaugeMetricFamily(
            PREFIX + "exporter_queue_bytes", "Bytes waiting to be exported, by exporter.", labels=["exporter"]
        )
        queue_records = GaugeMetricFamily(
            PREFIX + "exporter_queue_records",
            "Records waiting to be exported, by exporter.",
            labels=["exporter"],
        )
        lag = GaugeMetricFamily(
            PREFIX + "export_lag_seconds",
            "Age of the oldest record not yet exported, by exporter (0 when none waits).",
            labels=["exporter"],
        )
        sent = CounterMetricFamily(
            PREFIX + "exporter_sent_spans", "Spans exported, by exporter.", labels=["exporter"]
        )
        errors = CounterMetricFamily(
            PREFIX + "exporter_errors",
            "Failed export attempts, by exporter and kind.",
            labels=["exporter", "kind"],
        )
        dropped = CounterMetricFamily(
            PREFIX + "exporter_dropped_spans",
            "Spans an exporter gave up on, by exporter and reason.",
            labels=["exporter", "reason"],
        )
        queue_bytes.add_metric([PRIMARY], wal.pending_bytes)
        queue_records.add_metric([PRIMARY], wal.pending_records)
        lag.add_metric([PRIMARY], wal.oldest_pending_age())
        sent.add_metric([PRIMARY], counts["spans_processed"])
        errors.add_metric([PRIMARY, "retryable"], counts["processing_errors"])
        for exporter in pipeline.exporters:
            queue = exporter.queue
            queue_bytes.add_metric([exporter.name], queue.pending_bytes)
            queue_records.add_metric([exporter.name], queue.pending_records)
            lag.add_metric([exporter.name], queue.oldest_pending_age())
            sent.add_metric([exporter.name], exporter.counts["sent_spans"])
            for kind in ("retryable", "permanent", "internal"):
                errors.add_metric([exporter.name, kind], exporter.counts[f"errors:{kind}"])
            for reason in ("permanent_error", "retries_exhausted", "queue_full"):
                dropped.add_metric([exporter.name, reason], exporter.counts[f"dropped_spans:{reason}"])
        yield from (queue_bytes, queue_records, lag, sent, errors, dropped)
        yield GaugeMetricFamily(
            PREFIX + "pipeline_workers", "Pipeline worker processes alive.", value=pipeline.live_workers()
        )
        yield counter(
            "pipeline_worker_restarts",
            "Pipeline worker processes that died and were started again.",
            counts["worker_restarts"],
        )


def _data_dir_space(data_dir: Path) -> Iterator[Metric]:
    """The data directory's file system: bytes free to an unprivileged writer, and its size."""
    try:
        fs = os.statvfs(data_dir)
    except OSError:  # gone or unreadable: no sample rather than a wrong one
        return
    yield GaugeMetricFamily(
        PREFIX + "data_dir_free_bytes",
        "Bytes free on the data directory's file system (to the collector, not to root).",
        value=fs.f_bavail * fs.f_frsize,
    )
    yield GaugeMetricFamily(
        PREFIX + "data_dir_size_bytes",
        "Size of the data directory's file system.",
        value=fs.f_blocks * fs.f_frsize,
    )
