"""OTLP trace data to a :class:`~costspan.processors.SpanBatch`, from protobuf or from OTLP/JSON.

OTLP/JSON differs from protobuf's canonical JSON mapping: trace and span ids are hex strings, not base64
(protobuf's ``json_format`` would silently mis-decode them), 64-bit integers are strings, enums are
integers, and unknown fields are ignored. :func:`request_from_json` turns the ids back into bytes before
handing the document to protobuf's parser, so both encodings share :func:`batch_from_request`.

:func:`decode_json` is how every JSON body is read (OTLP/JSON and ``/v1/events``), with one set of rules:
UTF-8 (RFC 8259, section 8.1), at most :data:`MAX_JSON_DEPTH` levels of nesting, no ``NaN`` or ``Infinity``
literals (which RFC 8259 does not allow), and a ``\\u`` escape of a lone UTF-16 surrogate (valid JSON
syntax, but no character) read as U+FFFD, as Go's ``encoding/json`` reads it: the call is kept, and no
string that cannot be encoded as UTF-8 reaches protobuf or Parquet.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar
from zlib import crc32

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from costspan.processors import SpanBatch

if TYPE_CHECKING:
    from .worker import Partition

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")
M = TypeVar("M", bound=Message)


# An OTLP/JSON span attribute nested 30 deep (as deep as protobuf's own limit lets a binary request nest
# AnyValues) is about 130 levels of JSON: each AnyValue takes four (value, kvlistValue, values, the pair).
MAX_JSON_DEPTH: Final = 160

# Escapes are read left to right: an escaped backslash, a surrogate pair (one character), a lone surrogate.
_SURROGATE_ESCAPE: Final = re.compile(rb"\\u[dD][89a-fA-F]")
_ESCAPES: Final = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


class OTLPDecodeError(ValueError):
    """A request body that is not valid OTLP; the receiver answers 400 with this message."""


def decode_json(body: bytes) -> Any:
    """A JSON request body as Python values, or :class:`OTLPDecodeError` saying why it cannot be one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OTLPDecodeError(f"the body is not UTF-8: {exc}") from None
    if _SURROGATE_ESCAPE.search(body):
        text = _ESCAPES.sub(_lone_surrogate_replaced, text)
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise OTLPDecodeError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except OTLPDecodeError:
        raise
    except ValueError as exc:  # JSONDecodeError; an integer of more digits than Python converts
        raise OTLPDecodeError(f"the body is not JSON: {exc}") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth_over(doc, MAX_JSON_DEPTH):
        raise OTLPDecodeError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return doc


def _lone_surrogate_replaced(escape: re.Match[str]) -> str:
    text = escape.group()
    return "\\ufffd" if len(text) == 6 else text


def _no_constant(name: str) -> Any:
    raise OTLPDecodeError(f"the body is not JSON: {name} is not a JSON number")


def _depth_over(doc: Any, limit: int) -> bool:
    # iterative: the document may be as deep as the parser's own recursion allowed
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


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
    "MAX_JSON_DEPTH",
    "OTLPDecodeError",
    "attributes_of",
    "batch_from_request",
    "decode_json",
    "message_from_json",
    "request_from_json",
    "value_of",
]
