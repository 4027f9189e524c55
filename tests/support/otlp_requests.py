"""OTLP trace requests built from the protobuf messages, for tests that send bytes themselves."""

from __future__ import annotations

import itertools

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

_ids = itertools.count(1)


def chat_request(spans: int, padding: int = 0) -> ExportTraceServiceRequest:
    """``spans`` priced chat calls (gpt-4o-mini, 1000 in / 100 out: $0.00021 each), each in its own
    trace; ``padding`` bytes of a non-content attribute on each make the request as large as a test needs."""
    out = []
    for _ in range(spans):
        n = next(_ids)
        attrs = {
            "gen_ai.operation.name": AnyValue(string_value="chat"),
            "gen_ai.provider.name": AnyValue(string_value="openai"),
            "gen_ai.request.model": AnyValue(string_value="gpt-4o-mini"),
            "gen_ai.usage.input_tokens": AnyValue(int_value=1000),
            "gen_ai.usage.output_tokens": AnyValue(int_value=100),
            "app.padding": AnyValue(string_value="x" * padding),
        }
        out.append(
            Span(
                trace_id=n.to_bytes(16, "big"),
                span_id=n.to_bytes(8, "big"),
                name="chat gpt-4o-mini",
                start_time_unix_nano=1_760_000_000_000_000_000 + n,
                end_time_unix_nano=1_760_000_001_000_000_000 + n,
                attributes=[KeyValue(key=k, value=v) for k, v in attrs.items()],
            )
        )
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=out)])])
