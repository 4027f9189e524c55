"""Hostile requests for a running collector, each made from a random source (so a seed replays it).

A case is valid OTLP protobuf, OTLP/JSON or a ``/v1/events`` body, mutated: bits flipped, bytes set,
truncated, spliced with another body, random bytes inserted; values replaced by hostile ones (infinite,
NaN, negative and huge numbers, numbers as strings, wrong types, deep nesting, lone surrogates and other
unicode edges, megabyte strings); wrapped in gzip (valid, corrupt, or a bomb) or a wrong content type or
encoding. The same cases go over OTLP/HTTP and OTLP/gRPC. :mod:`tests.fuzz.driver` sends them.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
GRPC_METHODS = {
    "traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}
LIMIT = 20 * 1024 * 1024  # the collector's default request size limit


@dataclass
class Case:
    """One request: over ``http`` (``path``, ``headers``) or ``grpc`` (``path`` is the method)."""

    transport: str
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    grpc_gzip: bool = False
    what: str = ""  # the mutation, for the report of a failing case


# -- the valid bodies that mutations start from ---------------------------------------------------------

# attribute keys whose values costspan reads and prices, in every dialect
VALUE_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.cost.amount",
    "gen_ai.usage.cost.source",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.operation.name",
    "gen_ai.response.id",
    "gen_ai.conversation.id",
    "gen_ai.response.time_to_first_chunk",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.prompt_details.cache_read",
    "llm.model_name",
    "llm.provider",
    "openinference.span.kind",
    "langfuse.observation.type",
    "langfuse.observation.usage_details",
    "langfuse.observation.cost_details",
    "ai.usage.promptTokens",
    "ai.usage.completionTokens",
    "ai.operationId",
    "ai.response.msToFirstChunk",
    "openai.response.service_tier",
    "server.address",
    "url.full",
    "http.url",
    "costspan.feature",
    "costspan.team",
    "costspan.user_id",
    "costspan.tag.region",
    "service.name",
    "error.type",
    "gen_ai.input.messages",
)


def _chat_span(n: int, dialect: int) -> dict[str, AnyValue]:
    if dialect == 0:  # the GenAI semantic conventions
        return {
            "gen_ai.operation.name": AnyValue(string_value="chat"),
            "gen_ai.provider.name": AnyValue(string_value="openai"),
            "gen_ai.request.model": AnyValue(string_value="gpt-4o-mini"),
            "gen_ai.usage.input_tokens": AnyValue(int_value=1000 + n),
            "gen_ai.usage.output_tokens": AnyValue(int_value=100),
            "gen_ai.usage.cache_read.input_tokens": AnyValue(int_value=200),
            "costspan.feature": AnyValue(string_value="search"),
            "costspan.tag.region": AnyValue(string_value="eu"),
        }
    if dialect == 1:  # OpenInference
        return {
            "openinference.span.kind": AnyValue(string_value="LLM"),
            "llm.provider": AnyValue(string_value="anthropic"),
            "llm.model_name": AnyValue(string_value="claude-3-5-haiku-20241022"),
            "llm.token_count.prompt": AnyValue(int_value=500),
            "llm.token_count.completion": AnyValue(int_value=50),
        }
    # an OpenRouter-style call whose cost the provider billed
    return {
        "gen_ai.operation.name": AnyValue(string_value="chat"),
        "gen_ai.system": AnyValue(string_value="openai"),
        "gen_ai.request.model": AnyValue(string_value="gpt-4o"),
        "gen_ai.usage.prompt_tokens": AnyValue(int_value=10),
        "gen_ai.usage.completion_tokens": AnyValue(int_value=5),
        "gen_ai.usage.cost.amount": AnyValue(double_value=0.0012),
        "gen_ai.usage.cost.source": AnyValue(string_value="provider"),
        "gen_ai.input.messages": AnyValue(
            array_value={
                "values": [
                    AnyValue(
                        kvlist_value={"values": [KeyValue(key="role", value=AnyValue(string_value="user"))]}
                    )
                ]
            }
        ),
    }


def traces_request(rng: random.Random, spans: int = 3) -> ExportTraceServiceRequest:
    """A valid request of ``spans`` chat calls in the three dialects, with random ids."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "fuzz"
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "fuzz"
    for n in range(spans):
        span = scope_spans.spans.add(
            name="chat gpt-4o-mini",
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
            kind=3,
            start_time_unix_nano=1_763_000_000_000_000_000 + n,
            end_time_unix_nano=1_763_000_001_000_000_000 + n,
        )
        if n:
            span.parent_span_id = scope_spans.spans[0].span_id
        for key, value in _chat_span(n, n % 3).items():
            span.attributes.add(key=key).value.CopyFrom(value)
        span.events.add(name="gen_ai.choice", time_unix_nano=span.end_time_unix_nano)
        span.links.add(trace_id=rng.randbytes(16), span_id=rng.randbytes(8))
    return request


def to_otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON: protobuf's JSON mapping with the ids as hex (the OTLP specification's difference)."""
    doc = json_format.MessageToDict(request)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for item in (span, *span.get("links", [])):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = base64.b64decode(item[key]).hex()
    return doc


def event(rng: random.Random) -> dict[str, Any]:
    return {
        "model": rng.choice(["gpt-4o", "claude-3-5-sonnet-20241022", "gemini-1.5-pro", "unknown-model"]),
        "provider": rng.choice(["openai", "anthropic", "google", "x"]),
        "input_tokens": rng.randrange(0, 5000),
        "output_tokens": rng.randrange(0, 500),
        "cache_read_tokens": 0,
        "timestamp": "2025-11-02T10:00:00Z",
        "duration_ms": 850,
        "feature": "search",
        "team": "discovery",
        "customer_id": "acme",
        "user_id": "u-42",
        "tags": {"region": "eu"},
        "trace_id": rng.randbytes(16).hex(),
        "span_id": rng.randbytes(8).hex(),
    }


@cache
def metrics_body() -> bytes:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="m", unit="1")
    metric.gauge.data_points.add(as_double=1.5, time_unix_nano=1)
    return request.SerializeToString()


@cache
def logs_body() -> bytes:
    request = ExportLogsServiceRequest()
    record = request.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=1)
    record.body.string_value = "a log line"
    return request.SerializeToString()


@cache
def gzip_bomb() -> bytes:
    """Three times the size limit of zeros in about 60 KiB of gzip."""
    return gzip.compress(b"\0" * (3 * LIMIT), compresslevel=9)


@cache
def json_bomb() -> bytes:
    """A JSON traces body that decompresses past the size limit (spaces inside a valid document)."""
    return gzip.compress(b'{"resourceSpans": [' + b" " * (LIMIT + 1024) + b"]}", compresslevel=9)


@cache
def json_flood() -> bytes:
    """A JSON array of six million empty objects: 18 MiB, within the size limit."""
    return b"[" + b"{}," * 6_000_000 + b"{}]"


FLOOD_BYTES = 2 * 1024 * 1024


@cache
def protobuf_floods() -> dict[str, bytes]:
    """Trace requests of ``FLOOD_BYTES`` that are nothing but empty messages, each two bytes on the wire and
    45 to 177 bytes decoded: resource spans, spans, and a span's attributes, events and links (that span
    with valid ids, so only its size tells it from a real one)."""
    n = FLOOD_BYTES // 2
    ids = _field(1, b"\1" * 16) + _field(2, b"\2" * 8)  # trace_id, span_id

    def in_one_span(repeated: bytes) -> bytes:
        return _field(1, _field(2, _field(2, ids + repeated * n)))  # resource_spans.scope_spans.spans

    return {
        "resource spans": b"\x0a\x00" * n,
        "spans": _field(1, _field(2, b"\x12\x00" * n)),
        "attributes": in_one_span(b"\x4a\x00"),
        "events": in_one_span(b"\x5a\x00"),
        "links": in_one_span(b"\x6a\x00"),
    }


# -- hostile values --------------------------------------------------------------------------------------

_UNICODE = (
    "",
    "\x00",
    "\ufffd",
    "\uffff",
    "\U0010ffff",
    "\u202e\u0645\u0631\u062d\u0628\u0627",
    "e\u0301" * 50,
    "\U0001f600" * 10,
    "\uff11\uff12\uff13",  # fullwidth digits, which int() accepts
    "٣",
    "\u2028\u2029",
    "a\x00b",
    " 12 ",
    "1_000",
    "0x10",
    "-5",
    "1e999",
    "9" * 30,
    "9" * 5000,
    "NaN",
    "inf",
    "-0",
    "x" * 70_000,
)
_SURROGATES = ("\ud800", "\udfff", "a\udc00b", "\ud83d", "\ude00\ud83d")


def hostile_json_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value built to break a reader: for a place that wants a count, a string, an object or a list."""
    kind = rng.randrange(14)
    if kind == 0:
        return rng.choice([float("inf"), float("-inf"), float("nan"), -1, -(2**63) - 1, 2**64, 10**30])
    if kind == 1:
        return rng.choice([1e308, -1e308, 5e-324, -0.0, 0.5, 1.0e20, 123.0])
    if kind == 2:
        return 10 ** rng.randrange(15, 4200)
    if kind == 3:
        return rng.choice(_UNICODE)
    if kind == 4:
        return rng.choice(_SURROGATES)
    if kind == 5:
        return rng.choice([True, False, None])
    if kind == 6 or depth > 2:
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2FFFF)])) for _ in range(8)
        )
    if kind == 7:
        return [hostile_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 8:
        return {
            str(hostile_json_value(rng, 3)): hostile_json_value(rng, depth + 1)
            for _ in range(rng.randrange(4))
        }
    if kind == 9:
        return NESTED  # replaced by deep nesting when encoded
    if kind == 10:
        return {"intValue": rng.choice(["1e999", "9" * 40, "-1", "abc", 1.5, "NaN"])}
    if kind == 11:
        return {"doubleValue": rng.choice(["Infinity", "-Infinity", "NaN", 1e308, "1e999", -5])}
    if kind == 12:
        return {"stringValue": rng.choice(_SURROGATES + _UNICODE[:8])}
    return rng.randrange(-(2**64), 2**64)


class _Nested:
    """Where a JSON body gets deep nesting, written into the text (a tree that deep cannot be built)."""


NESTED = _Nested()


def encode_json(rng: random.Random, doc: Any) -> bytes:
    """``doc`` as JSON text. Infinity and NaN are written as Python writes them; a lone surrogate either as a
    ``\\ud800`` escape or as its (invalid) UTF-8 bytes; :data:`NESTED` as a few thousand brackets."""
    depth = rng.choice([50, 130, 170, 1000, 5000, 20_000])

    def default(value: Any) -> Any:
        if value is NESTED:
            return "__NESTED__"
        raise TypeError

    ascii_only = rng.random() < 0.7
    text = json.dumps(doc, ensure_ascii=ascii_only, default=default)
    if "__NESTED__" in text:
        opener = rng.choice(["[", '{"a":', '{"kvlistValue":{"values":[{"key":"k","value":'])
        closer = {"[": "]", '{"a":': "}", '{"kvlistValue":{"values":[{"key":"k","value":': "}]}}"}[opener]
        text = text.replace('"__NESTED__"', opener * depth + "1" + closer * depth, 1)
    return text.encode("utf-8", "surrogatepass")


def _json_paths(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out.extend(_json_paths(value, (*path, key)))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out.extend(_json_paths(value, (*path, i)))
    return out


def mutate_json(rng: random.Random, doc: Any) -> Any:
    """``doc`` with one to three of its nodes (values or whole subtrees) replaced by hostile values."""
    for _ in range(rng.randrange(1, 4)):
        paths = _json_paths(doc)
        path = rng.choice(paths)
        value = hostile_json_value(rng)
        if not path:
            doc = value
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.2:
            parent[rng.choice(["extra", "\ud800", "", "resourceSpans", "model"])] = value
        else:
            parent[path[-1]] = value
    return doc


def _hostile_any_value(rng: random.Random) -> AnyValue:
    kind = rng.randrange(8)
    if kind == 0:
        return AnyValue(int_value=rng.choice([-(2**63), 2**63 - 1, -1, 0, 10**12, 100_000_001]))
    if kind == 1:
        doubles = [float("inf"), float("-inf"), float("nan"), 1e308, -1.0, 5e-324, 1e19, 2.5, 1e30]
        return AnyValue(double_value=rng.choice(doubles))
    if kind == 2:
        return AnyValue(string_value=rng.choice(_UNICODE))
    if kind == 3:
        return AnyValue(bool_value=rng.random() < 0.5)
    if kind == 4:
        return AnyValue(bytes_value=rng.randbytes(rng.randrange(20)))
    if kind == 5:
        return AnyValue(array_value={"values": [_hostile_any_value(rng) for _ in range(rng.randrange(4))]})
    if kind == 6:
        pairs = [
            KeyValue(key=rng.choice(VALUE_KEYS), value=_hostile_any_value(rng))
            for _ in range(rng.randrange(4))
        ]
        return AnyValue(kvlist_value={"values": pairs})
    return AnyValue()  # no value at all


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    size, varint = len(payload), bytearray()
    while True:
        varint.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    return bytes([number << 3 | 2]) + bytes(varint) + payload


def deep_span(rng: random.Random, levels: int) -> bytes:
    """A ``resource_spans`` entry (appended to a request, it adds a span) whose one attribute nests
    ``levels`` kvlist values: written as bytes, since protobuf refuses to build what it would not parse."""
    value = b"\x18\x01"  # AnyValue.int_value = 1
    for _ in range(levels):
        value = _field(6, _field(1, _field(1, b"k") + _field(2, value)))  # kvlist_value.values[0].value
    attribute = _field(1, rng.choice(VALUE_KEYS).encode()) + _field(2, value)
    span = _field(1, rng.randbytes(16)) + _field(2, rng.randbytes(8)) + _field(9, attribute)
    return _field(1, _field(2, _field(2, span)))  # resource_spans.scope_spans.spans


def mutate_request(rng: random.Random, request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    """A valid request whose values are hostile: attribute values, ids, times, kinds, deep nesting."""
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    for _ in range(rng.randrange(1, 6)):
        span = rng.choice(spans)
        kind = rng.randrange(9)
        if kind <= 4:
            key = rng.choice(VALUE_KEYS)
            for kv in span.attributes:
                if kv.key == key:
                    kv.value.CopyFrom(_hostile_any_value(rng))
                    break
            else:
                span.attributes.add(key=key).value.CopyFrom(_hostile_any_value(rng))
        elif kind == 5:
            span.trace_id = rng.randbytes(rng.choice([0, 1, 15, 16, 17, 32]))
            span.span_id = rng.randbytes(rng.choice([0, 7, 8, 9]))
            span.parent_span_id = rng.randbytes(rng.choice([0, 8, 3]))
        elif kind == 6:
            span.start_time_unix_nano = rng.choice([0, 1, 2**64 - 1, 2**63, 1_000_000_000])
            span.end_time_unix_nano = rng.choice(
                [0, 2**64 - 1, span.start_time_unix_nano - 1 if span.start_time_unix_nano else 0]
            )
        elif kind == 7:
            span.kind = rng.choice([-1, 0, 99, 2**31 - 1])
            span.status.code = rng.choice([0, 2, 7, -5])
            span.name = rng.choice(_UNICODE)
        elif rng.random() < 0.2:  # the same keys many times over
            for _ in range(rng.choice([50, 500])):
                span.attributes.add(key=rng.choice(VALUE_KEYS)).value.int_value = rng.randrange(
                    -(2**63), 2**63
                )
    return request


# -- byte-level mutations ---------------------------------------------------------------------------------


def mutate_bytes(rng: random.Random, body: bytes, other: bytes) -> tuple[bytes, str]:
    data = bytearray(body)
    kind = rng.randrange(7)
    if not data:
        return rng.randbytes(rng.randrange(1, 64)), "random"
    if kind == 0:
        for _ in range(rng.randrange(1, 9)):
            i = rng.randrange(len(data) * 8)
            data[i // 8] ^= 1 << (i % 8)
        return bytes(data), "bitflip"
    if kind == 1:
        for _ in range(rng.randrange(1, 5)):
            data[rng.randrange(len(data))] = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x22, 0x5C, 0x7B, 0x5B])
        return bytes(data), "byteset"
    if kind == 2:
        return bytes(data[: rng.randrange(len(data))]), "truncate"
    if kind == 3:
        return bytes(data[: rng.randrange(len(data))]) + other[rng.randrange(len(other) or 1) :], "splice"
    if kind == 4:
        at = rng.randrange(len(data) + 1)
        return bytes(data[:at]) + rng.randbytes(rng.randrange(1, 32)) + bytes(data[at:]), "insert"
    if kind == 5:
        at = rng.randrange(len(data))
        chunk = data[at : at + rng.randrange(1, 64)]
        return bytes(data[:at]) + bytes(chunk) * rng.randrange(2, 50) + bytes(data[at:]), "repeat"
    return rng.randbytes(rng.randrange(1, 4096)), "random"


# -- whole cases -------------------------------------------------------------------------------------------

_CONTENT_TYPES = (
    "",
    "text/plain",
    "application/json; charset=utf-8",
    "application/x-protobuf; proto=x",
    "APPLICATION/JSON",
    "application/grpc",
    "multipart/form-data; boundary=x",
    "application/json\x7f",
    "x" * 5000,
)
_ENCODINGS = ("deflate", "br", "gzip, gzip", "x-gzip", "GZIP", "identity", "zstd", "\x01")


def _trace_body(rng: random.Random, encoding: str) -> tuple[bytes, str]:
    request = traces_request(rng, rng.randrange(1, 5))
    structural = rng.random() < 0.5
    if structural:
        request = mutate_request(rng, request)
    if encoding == PROTOBUF:
        body = request.SerializeToString()
        if rng.random() < 0.05:
            body += deep_span(rng, rng.choice([20, 31, 33, 40, 200, 5000]))
        if not structural or rng.random() < 0.3:
            body, what = mutate_bytes(rng, body, traces_request(rng, 1).SerializeToString())
            return body, what
        return body, "values"
    doc = to_otlp_json(request)
    if not structural or rng.random() < 0.7:
        doc = mutate_json(rng, doc)
    body = encode_json(rng, doc)
    if rng.random() < 0.2:
        body, what = mutate_bytes(rng, body, json.dumps(to_otlp_json(traces_request(rng, 1))).encode())
        return body, f"json {what}"
    return body, "json values"


def _events_body(rng: random.Random) -> tuple[bytes, str]:
    events: Any = [event(rng) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.3:
        events = events[0]
    if rng.random() < 0.85:
        events = mutate_json(rng, events)
    body = encode_json(rng, events)
    if rng.random() < 0.2:
        body, what = mutate_bytes(rng, body, json.dumps(event(rng)).encode())
        return body, f"events {what}"
    return body, "events values"


def http_case(rng: random.Random) -> Case:
    roll = rng.random()
    if roll < 0.45:
        encoding = PROTOBUF if rng.random() < 0.55 else JSON
        body, what = _trace_body(rng, encoding)
        case = Case("http", "/v1/traces", body, {"content-type": encoding}, what=what)
    elif roll < 0.75:
        body, what = _events_body(rng)
        case = Case("http", "/v1/events", body, {"content-type": JSON}, what=what)
    elif roll < 0.85:
        path, base = rng.choice([("/v1/metrics", metrics_body()), ("/v1/logs", logs_body())])
        encoding = PROTOBUF if rng.random() < 0.7 else JSON
        if encoding == JSON:
            base = json.dumps(json.loads(b'{"resourceMetrics": [{"scopeMetrics": [{}]}]}')).encode()
        body, what = mutate_bytes(rng, base, base)
        case = Case("http", path, body, {"content-type": encoding}, what=f"{path} {what}")
    else:
        return _envelope_case(rng)
    if rng.random() < 0.1:
        case.body = gzip.compress(case.body, compresslevel=1)
        case.headers["content-encoding"] = "gzip"
        case.what += " gzip"
    return case


def _envelope_case(rng: random.Random) -> Case:
    """Wrong content types and encodings, corrupt gzip, gzip bombs, odd paths and methods."""
    path = rng.choice(["/v1/traces", "/v1/events", "/v1/traces", "/v1/metrics"])
    body = traces_request(rng, 1).SerializeToString()
    kind = rng.randrange(7)
    if kind == 0:
        return Case("http", path, body, {"content-type": rng.choice(_CONTENT_TYPES)}, what="content-type")
    if kind == 1:
        headers = {"content-type": PROTOBUF, "content-encoding": rng.choice(_ENCODINGS)}
        return Case("http", path, body, headers, what="content-encoding")
    if kind == 2:
        squeezed = bytearray(gzip.compress(body))
        squeezed[rng.randrange(len(squeezed))] ^= 0xFF
        corrupt = bytes(squeezed[: rng.randrange(1, len(squeezed) + 1)])
        return Case(
            "http", path, corrupt, {"content-type": PROTOBUF, "content-encoding": "gzip"}, what="bad gzip"
        )
    if kind == 3:
        bomb = rng.choice([gzip_bomb, json_bomb])()
        content = JSON if bomb is json_bomb() or path == "/v1/events" else PROTOBUF
        return Case(
            "http", path, bomb, {"content-type": content, "content-encoding": "gzip"}, what="gzip bomb"
        )
    if kind == 4:
        twice = gzip.compress(gzip.compress(body))
        return Case(
            "http", path, twice, {"content-type": PROTOBUF, "content-encoding": "gzip"}, what="gzip twice"
        )
    if kind == 5:
        odd = rng.choice(["/", "/v1", "/v1/traces/", "/v1/traces?x=1", "/%ff", "/v1/" + "a" * 3000])
        return Case("http", odd, body, {"content-type": PROTOBUF}, what="path")
    return Case("http", path, b"", {"content-type": rng.choice([PROTOBUF, JSON])}, what="empty")


def grpc_case(rng: random.Random) -> Case:
    roll = rng.random()
    if roll < 0.75:
        body, what = _trace_body(rng, PROTOBUF)
        case = Case("grpc", GRPC_METHODS["traces"], body, what=f"grpc {what}")
    else:
        signal, base = rng.choice([("metrics", metrics_body()), ("logs", logs_body())])
        body, what = mutate_bytes(rng, base, base)
        case = Case("grpc", GRPC_METHODS[signal], body, what=f"grpc {signal} {what}")
    case.grpc_gzip = rng.random() < 0.15
    return case


def case(rng: random.Random, grpc_share: float = 0.3) -> Case:
    """One hostile request: over gRPC with probability ``grpc_share``, else over HTTP."""
    return grpc_case(rng) if rng.random() < grpc_share else http_case(rng)
