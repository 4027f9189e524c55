"""The decoded-size rule (collector/receivers/_decoded_size.py): its estimate against what upb really
takes, the requests real exporters send within the bound, and every kind of flood over it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.collector.receivers._decoded_size import MAX_EXPANSION, inspect, limit, too_large
from tests.fuzz.cases import FLOOD_BYTES, protobuf_floods
from tests.support.otlp_requests import chat_request


def sdk_batch(spans: int, padding: int = 0) -> ExportTraceServiceRequest:
    """``spans`` calls under one resource and one scope, as an SDK's batch processor sends them."""
    calls = chat_request(spans, padding)
    out = ExportTraceServiceRequest()
    resource_spans = out.resource_spans.add()
    resource_spans.resource.CopyFrom(calls.resource_spans[0].resource)
    scope_spans = resource_spans.scope_spans.add()
    for rs in calls.resource_spans:
        for ss in rs.scope_spans:
            scope_spans.spans.extend(ss.spans)
    return out


@pytest.mark.parametrize("shape", ["sdk batch", "one resource per span"])
@pytest.mark.parametrize("padding", [0, 2000])
def test_real_requests_are_priced_at_a_few_times_their_size(shape, padding):
    request = sdk_batch(512, padding) if shape == "sdk batch" else chat_request(512, padding)
    wire = request.ByteSize()
    inspection = inspect(request, wire)
    assert inspection.invalid_spans == 0 and inspection.reason == ""
    assert wire < inspection.decoded_bytes < 5 * wire
    assert too_large(inspection, wire) is None


@pytest.mark.parametrize("kind", list(protobuf_floods()))
def test_floods_of_empty_messages_are_over_the_bound(kind):
    flood = protobuf_floods()[kind]
    assert len(flood) <= FLOOD_BYTES + 64
    inspection = inspect(ExportTraceServiceRequest.FromString(flood), len(flood))
    assert inspection.decoded_bytes > limit(len(flood)) > MAX_EXPANSION * len(flood)
    assert "mostly empty messages" in (too_large(inspection, len(flood)) or "")


def test_spans_without_valid_ids_are_counted_with_the_reason():
    request = sdk_batch(10)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].trace_id = b"\x01" * 15
    spans[3].span_id = b""
    inspection = inspect(request, request.ByteSize())
    assert inspection.invalid_spans == 2
    assert inspection.reason == "2 span(s) without a 16-byte trace id and an 8-byte span id"


MEASURE = """
import sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from costspan.collector.receivers._decoded_size import inspect
body = open(sys.argv[1], "rb").read()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
before = rss()
request = ExportTraceServiceRequest.FromString(body)
taken = rss() - before
print(taken, inspect(request, len(body)).decoded_bytes)
"""


@pytest.mark.parametrize("kind", ["sdk batch", "sdk batch with padding", "spans", "attributes", "links"])
def test_the_estimate_is_close_to_what_decoding_takes(kind, tmp_path):
    """Measured in a fresh process, so the allocator has no freed memory to reuse. Empty attributes are
    priced with the value they lack, twice what they take: real ones have a value."""
    if kind.startswith("sdk batch"):
        body = sdk_batch(20_000, 2000 if "padding" in kind else 0).SerializeToString()
    else:
        body = protobuf_floods()[kind]
    (tmp_path / "body").write_bytes(body)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(tmp_path / "body")], capture_output=True, text=True, check=True
    )
    taken, estimated = map(int, out.stdout.split())
    assert 0.8 * taken <= estimated <= (2.1 if kind == "attributes" else 1.3) * taken, (taken, estimated)
