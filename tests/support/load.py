"""Load from real OpenTelemetry SDK exporters: batches of priced GenAI spans with unique ids, through OTLP
over gRPC or HTTP, keeping what was sent and what the collector acknowledged.

A batch counts as acknowledged only when the exporter's ``export()`` returned SUCCESS; the exporters retry
on their own (a collector that is down, or answers retryably, is tried again until their timeout).
"""

from __future__ import annotations

import threading
from decimal import Decimal

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

# gpt-4o on OpenAI's price list (https://openai.com/api/pricing): $2.50 input, $10.00 output per 1M tokens
INPUT_PRICE = Decimal("2.50") / 1_000_000
OUTPUT_PRICE = Decimal("10.00") / 1_000_000

SpanKey = tuple[str, str]  # (trace id, span id) as lower-case hex


def tokens(n: int) -> tuple[int, int]:
    """Token counts of the n-th span of a sender: every span has its own, so its cost identifies it."""
    return 100 + n % 997, 1 + n % 211


def exporter(protocol: str, port: int, timeout: float = 15) -> SpanExporter:
    """A real OTLP exporter (``grpc`` or ``http``) to a collector on 127.0.0.1:``port``."""
    if protocol == "grpc":
        return GrpcExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=timeout)
    return HttpExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=timeout)


class Sender(threading.Thread):
    """Sends batches of GenAI spans through one real OTLP exporter; keeps what was sent and acknowledged."""

    def __init__(
        self,
        index: int,
        exporter: SpanExporter,
        start_ns: int | None = None,
        *,
        batches: int = 50,
        spans_per_batch: int = 40,
    ) -> None:
        super().__init__(name=f"sender-{index}", daemon=True)
        self.index = index
        self.exporter = exporter
        self.batches = batches
        self.spans_per_batch = spans_per_batch
        self.sent: dict[SpanKey, Decimal] = {}
        self.acknowledged: dict[SpanKey, Decimal] = {}
        self.failed_batches = 0
        self.start_ns = start_ns  # the spans' start, a millisecond apart (default: now)

    def run(self) -> None:
        finished = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": f"load-{self.index}"}))
        provider.add_span_processor(SimpleSpanProcessor(finished))
        tracer = provider.get_tracer("costspan.instrumentation")
        n = 0
        for _ in range(self.batches):
            finished.clear()
            costs = []
            for _ in range(self.spans_per_batch):
                inp, out = tokens(n)
                n += 1
                attributes = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.id": f"chatcmpl-{self.index}-{n}",
                    "gen_ai.usage.input_tokens": inp,
                    "gen_ai.usage.output_tokens": out,
                }
                if self.start_ns is None:
                    with tracer.start_as_current_span("chat gpt-4o", attributes=attributes):
                        pass
                else:
                    start = self.start_ns + n * 1_000_000
                    tracer.start_span("chat gpt-4o", attributes=attributes, start_time=start).end(
                        start + 500_000
                    )
                costs.append(inp * INPUT_PRICE + out * OUTPUT_PRICE)
            spans = finished.get_finished_spans()
            batch = {
                (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): cost
                for s, cost in zip(spans, costs, strict=True)
            }
            self.sent.update(batch)
            if self.exporter.export(spans) is SpanExportResult.SUCCESS:
                self.acknowledged.update(batch)
            else:
                self.failed_batches += 1
        self.exporter.shutdown()
        provider.shutdown()


def stored_once(rows: list[str]) -> tuple[dict[SpanKey, Decimal], int]:
    """``costspan sql`` CSV rows of ``trace_id,span_id,cost_usd``: each span's stored cost, and how many rows
    repeat a span already seen (doubled)."""
    stored: dict[SpanKey, Decimal] = {}
    doubled = 0
    for row in rows:
        trace_id, span_id, cost = row.split(",")
        if (trace_id, span_id) in stored:
            doubled += 1
        stored[(trace_id, span_id)] = Decimal(cost)
    return stored, doubled
