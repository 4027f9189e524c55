"""OTLP trace data to a :class:`~costspan.processors.SpanBatch`, from protobuf or from OTLP/JSON.

OTLP/JSON differs from protobuf's canonical JSON mapping: trace and span ids are hex strings, not base64
(protobuf's ``json_format`` would silently mis-decode them), 64-bit integers are strings, enums are
integers, and unknown fields are ignored. :func:`request_from_json` turns the ids back into bytes before
handing the document to protobuf's parser, so both encodings share :func:`batch_from_request`.

Every JSON body (OTLP/JSON and ``/v1/events``) is read by :func:`decode_json`, with the rules of
:mod:`costspan.semconv.json_text`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from zlib import crc32

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from costspan.processors import SpanBatch
from costspan.semconv import json_text

if TYPE_CHECKING:
    from .worker import Partition

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
M = TypeVar("M", bound=Message)


class OTLPDecodeError(ValueError):
    """A request body that is not valid OTLP; the receiver answers 400 with this message."""


def decode_json(body: bytes) -> Any:
    """A JSON request body as Python values (:func:`costspan.semconv.json_text.loads`, the one reader of
    JSON text), or :class:`OTLPDecodeError` saying why it cannot be one."""
    try:
        return json_text.loads(body)
    except json_text.JSONTextError as exc:
        raise OTLPDecodeError(str(exc)) from None


def request_from_json(doc: Mapping[str, Any]) -> ExportTraceServiceRequest:
    """Parse an OTLP/JSON ``ExportTraceServiceRequest`` document."""
    if not isinstance(doc, Mapping):
        raise OTLPDecodeError("an OTLP/JSON traces request is a JSON object")
    resource_spans = doc.get("resourceSpans") or []
    if not isinstance(resource_spans, list):
        raise OTLPDecodeError("resourceSpans is a list")
    converted = {**doc, "resourceSpans": [_resource_spans(rs) for rs in resource_spans]}
    return message_from_json(converted, ExportTraceServiceRequest(), "traces")


def message_from_json(doc: Any, message: M, kind: str) -> M:
    """``message`` filled from a decoded OTLP/JSON document (unknown fields ignored)."""
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    # protobuf's parser lets some bad values out as other errors: a JSON integer too large for a double
    # field (OverflowError), a list where a map is (TypeError) ...
    except (json_format.ParseError, ValueError, TypeError, OverflowError) as exc:
        raise OTLPDecodeError(f"not an OTLP/JSON {kind} request: {exc}") from None
    return message


def _resource_spans(rs: Any) -> Any:
    if not isinstance(rs, Mapping):
        raise OTLPDecodeError("each of resourceSpans is an object")
    scope_spans = rs.get("scopeSpans") or []
    if not isinstance(scope_spans, list) or not all(isinstance(ss, Mapping) for ss in scope_spans):
        raise OTLPDecodeError("scopeSpans is a list of objects")
    converted = []
    for ss in scope_spans:
        spans = ss.get("spans") or []
        if not isinstance(spans, list) or not all(isinstance(span, Mapping) for span in spans):
            raise OTLPDecodeError("spans is a list of objects")
        converted.append({**ss, "spans": [_hex_ids_to_base64(span) for span in spans]})
    return {**rs, "scopeSpans": converted}


def _hex_ids_to_base64(span: Any) -> Any:
    if not isinstance(span, Mapping):
        return span
    out = dict(span)
    for name in _ID_FIELDS:
        value = span.get(name)
        if isinstance(value, str) and value:
            try:
                raw = bytes.fromhex(value)
            except ValueError as exc:
                raise OTLPDecodeError(f"{name} is not hex: {value!r}") from exc
            out[name] = base64.b64encode(raw).decode()
    # links carry ids too
    if isinstance(span.get("links"), list):
        out["links"] = [_hex_ids_to_base64(link) for link in span["links"]]
    return out


def batch_from_request(
    request: ExportTraceServiceRequest, partition: Partition | None = None, *, roots_of_others: bool = False
) -> SpanBatch:
    """The spans of a request as a batch: ids as lower-case hex, attribute values as Python values; with a
    ``partition``, only the spans of the traces it holds, or (``roots_of_others``) only the root spans of
    the traces it does not hold."""
    index, count = (partition.index, partition.count) if partition is not None else (0, 1)
    trace_id: list[str] = []
    span_id: list[str] = []
    parent_span_id: list[str | None] = []
    name: list[str] = []
    kind: list[int] = []
    start_ns: list[int] = []
    end_ns: list[int] = []
    status_code: list[int] = []
    scope_name: list[str | None] = []
    scope_version: list[str | None] = []
    attributes: list[Mapping[str, Any]] = []
    resource: list[Mapping[str, Any]] = []
    events: list[tuple[tuple[str, Mapping[str, Any]], ...]] = []
    for rs in request.resource_spans:
        resource_attrs = attributes_of(rs.resource.attributes)
        for ss in rs.scope_spans:
            # a partition's spans: Partition.holds, inline (a call per span costs as much as the hash)
            if count == 1:
                spans = ss.spans
            elif roots_of_others:
                spans = [s for s in ss.spans if not s.parent_span_id and crc32(s.trace_id) % count != index]
            else:
                spans = [s for s in ss.spans if crc32(s.trace_id) % count == index]
            n = len(spans)
            # the columns a whole scope shares are extended at once; per span, one pass over its fields
            scope_name.extend([ss.scope.name or None] * n)
            scope_version.extend([ss.scope.version or None] * n)
            resource.extend([resource_attrs] * n)
            for span in spans:
                trace_id.append(span.trace_id.hex())
                span_id.append(span.span_id.hex())
                parent_span_id.append(span.parent_span_id.hex() or None)
                name.append(span.name)
                kind.append(span.kind)
                start_ns.append(span.start_time_unix_nano)
                end_ns.append(span.end_time_unix_nano)
                status_code.append(span.status.code)
                attributes.append(attributes_of(span.attributes))
                span_events = span.events
                events.append(
                    tuple((e.name, attributes_of(e.attributes)) for e in span_events) if span_events else ()
                )
    return SpanBatch(
        trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns, status_code, scope_name,
        scope_version, attributes, resource, events, [None] * len(span_id),
    )  # fmt: skip


# AnyValue fields whose value is the Python value itself (most attributes: no recursion, no conversion)
_SCALARS = frozenset(("string_value", "int_value", "double_value", "bool_value", "bytes_value"))


def attributes_of(pairs: Any) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        value = kv.value
        which = value.WhichOneof("value")
        out[kv.key] = getattr(value, which) if which in _SCALARS else value_of(value)
    return out


def value_of(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return getattr(value, which)
    if which == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return None


__all__ = [
    "OTLPDecodeError",
    "attributes_of",
    "batch_from_request",
    "decode_json",
    "message_from_json",
    "request_from_json",
    "value_of",
]
