"""OTLP protobuf and OTLP/JSON decode to the same batch, with the real SDK's encoder."""

from __future__ import annotations

import base64

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from costspan.collector.otlp import OTLPDecodeError, batch_from_request, request_from_json


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "svc", "deployment.environment.name": "dev"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("costspan.instrumentation", "1.0")
    with (
        tracer.start_as_current_span(
            "invoke_agent planner", attributes={"gen_ai.operation.name": "invoke_agent"}
        ),
        tracer.start_as_current_span(
            "chat gpt-4o",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.request.temperature": 0.5,
                "gen_ai.response.finish_reasons": ["stop"],
                "flag": True,
            },
        ) as span,
    ):
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "hi"})
        span.set_status(Status(StatusCode.ERROR))
    return exporter.get_finished_spans()


def otlp_json(request) -> dict:
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return doc


def test_protobuf_and_json_decode_alike(spans):
    request = encode_spans(spans)
    from_proto = batch_from_request(request)
    from_json = batch_from_request(request_from_json(otlp_json(request)))
    assert len(from_proto) == 2
    for column in ("trace_id", "span_id", "parent_span_id", "name", "start_ns", "end_ns", "status_code",
                   "scope_name", "attributes", "resource", "events"):  # fmt: skip
        assert getattr(from_proto, column) == getattr(from_json, column), column
    chat = from_proto.name.index("chat gpt-4o")
    assert from_proto.trace_id[chat] == format(spans[0].context.trace_id, "032x")
    assert from_proto.parent_span_id[chat] == from_proto.span_id[1 - chat]
    assert from_proto.attributes[chat]["gen_ai.usage.input_tokens"] == 12
    assert from_proto.attributes[chat]["gen_ai.response.finish_reasons"] == ["stop"]
    assert from_proto.attributes[chat]["flag"] is True
    assert from_proto.status_code[chat] == 2
    assert from_proto.events[chat] == (("gen_ai.content.prompt", {"gen_ai.prompt": "hi"}),)
    assert from_proto.resource[chat]["service.name"] == "svc"
    assert from_proto.scope_name[chat] == "costspan.instrumentation"


def test_bad_json_is_a_decode_error():
    with pytest.raises(OTLPDecodeError, match="not hex"):
        request_from_json(
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "00"}]}]}]}
        )
    with pytest.raises(OTLPDecodeError):
        request_from_json({"resourceSpans": "nope"})
    with pytest.raises(OTLPDecodeError, match="JSON object"):
        request_from_json([1, 2])
    # unknown fields are ignored, as OTLP/JSON requires
    assert len(batch_from_request(request_from_json({"resourceSpans": [], "somethingNew": 1}))) == 0


@pytest.mark.parametrize(
    "doc",
    [
        {"resourceSpans": ["x"]},
        {"resourceSpans": [{"scopeSpans": "x"}]},
        {"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]},
    ],
)
def test_structure_is_checked(doc):
    with pytest.raises(OTLPDecodeError):
        request_from_json(doc)


def test_every_attribute_value_kind_and_scopes_keep_their_spans():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
                "scopeSpans": [
                    {"scope": {"name": "one", "version": "1"}, "spans": [_span(1), _span(2)]},
                    {"scope": {"name": "two"}, "spans": [_span(3)]},
                ],
            },
            {"resource": {}, "scopeSpans": [{"spans": [_span(4)]}]},
        ]
    }
    batch = batch_from_request(
        ExportTraceServiceRequest.FromString(request_from_json(doc).SerializeToString())
    )
    assert batch.span_id == [f"{i:016x}" for i in (1, 2, 3, 4)]
    assert batch.scope_name == ["one", "one", "two", None]
    assert batch.scope_version == ["1", "1", None, None]
    assert batch.resource == [{"service.name": "a"}] * 3 + [{}]
    assert batch.attributes[0] == {
        "s": "text",
        "i": 42,
        "d": 0.25,
        "b": False,
        "raw": b"\x00\x01",
        "list": ["x", 2, [True]],
        "map": {"k": "v", "n": {"deep": 1.5}},
        "empty": None,
    }
    assert batch.events[0] == ()
    assert batch.events[3] == (("retry", {"attempt": 2}),)


def _span(n: int) -> dict:
    return {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": f"{n:016x}",
        "name": f"span {n}",
        "attributes": [
            {"key": "s", "value": {"stringValue": "text"}},
            {"key": "i", "value": {"intValue": "42"}},
            {"key": "d", "value": {"doubleValue": 0.25}},
            {"key": "b", "value": {"boolValue": False}},
            {"key": "raw", "value": {"bytesValue": base64.b64encode(b"\x00\x01").decode()}},
            {
                "key": "list",
                "value": {
                    "arrayValue": {
                        "values": [
                            {"stringValue": "x"},
                            {"intValue": "2"},
                            {"arrayValue": {"values": [{"boolValue": True}]}},
                        ]
                    }
                },
            },
            {
                "key": "map",
                "value": {
                    "kvlistValue": {
                        "values": [
                            {"key": "k", "value": {"stringValue": "v"}},
                            {
                                "key": "n",
                                "value": {
                                    "kvlistValue": {
                                        "values": [{"key": "deep", "value": {"doubleValue": 1.5}}]
                                    }
                                },
                            },
                        ]
                    }
                },
            },
            {"key": "empty", "value": {}},
        ],
        "events": [{"name": "retry", "attributes": [{"key": "attempt", "value": {"intValue": "2"}}]}]
        if n == 4
        else [],
    }
