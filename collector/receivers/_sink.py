"""What receivers hand spans to, and how the pipeline says it is full."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.processors import SpanBatch


class Backpressure(Exception):
    """Raised by a sink that cannot take more now; the client is told to retry after ``retry_after_s``."""

    def __init__(self, retry_after_s: float = 1.0, message: str = "the collector is at capacity") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# Receives a decoded request once its spans are checked; returns once they are durable (it may block),
# or raises Backpressure. The request is handed over whole: the pipeline logs it, then decodes its spans. The
# second argument is the request's protobuf encoding when it came as protobuf (logged as it is, without
# encoding it again), else None.
Sink = Callable[[ExportTraceServiceRequest, bytes | None], None]

INVALID_IDS = "{} span(s) without a 16-byte trace id and an 8-byte span id"


def valid_spans(batch: SpanBatch) -> tuple[SpanBatch, int, str]:
    """The spans with a 16-byte trace id and an 8-byte span id; how many others there were, and why."""
    keep = [i for i in range(len(batch)) if len(batch.trace_id[i]) == 32 and len(batch.span_id[i]) == 16]
    rejected = len(batch) - len(keep)
    if not rejected:
        return batch, 0, ""

    subset = batch.take(keep)
    return subset, rejected, INVALID_IDS.format(rejected)
