"""``POST /v1/events``: LLM calls as simple JSON, for teams without OpenTelemetry.

An event (or a JSON list of them)::

    {"model": "gpt-4o", "provider": "openai", "input_tokens": 1200, "output_tokens": 80,
     "cache_read_tokens": 1000, "timestamp": "2025-11-02T10:00:00Z", "duration_ms": 850,
     "feature": "search", "team": "discovery", "customer_id": "acme", "user_id": "u-42",
     "tags": {"region": "eu"}}

becomes an OTLP span in costspan's own GenAI attributes and takes the same path as any span: the
write-ahead log, the processor chain, storage. Only ``model`` is required; ``trace_id`` / ``span_id`` may
be given (hex) to make re-sending the same event idempotent. ``model`` is both the requested and the
response model unless ``response_model`` names another (a dated snapshot, say).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from costspan.semconv import attributes as A

SCOPE = "costspan.events"
_COUNTS = {
    "input_tokens": A.GEN_AI_USAGE_INPUT_TOKENS,
    "output_tokens": A.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cache_read_tokens": A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
    "cache_write_tokens": A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
    "cache_write_1h_tokens": A.ANTHROPIC_CACHE_CREATION_1H,
    "reasoning_tokens": A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
}
_STRINGS = {
    "provider": A.GEN_AI_PROVIDER_NAME,
    "model": A.GEN_AI_REQUEST_MODEL,
    "response_model": A.GEN_AI_RESPONSE_MODEL,
    "operation": A.GEN_AI_OPERATION_NAME,
    "service_tier": A.OPENAI_RESPONSE_SERVICE_TIER,
    "user_id": A.COSTSPAN_USER_ID,
    "customer_id": A.COSTSPAN_CUSTOMER_ID,
    "feature": A.COSTSPAN_FEATURE,
    "team": A.COSTSPAN_TEAM,
    "environment": A.COSTSPAN_ENVIRONMENT,
    "agent": A.COSTSPAN_AGENT,
    "step": A.COSTSPAN_STEP,
    "conversation_id": A.GEN_AI_CONVERSATION_ID,
    "prompt_key": A.COSTSPAN_PROMPT_KEY,
    "prompt_version": A.COSTSPAN_PROMPT_VERSION,
    "error_type": A.ERROR_TYPE,
}
_OTHER = {"timestamp", "duration_ms", "service", "trace_id", "span_id", "tags", "cost_usd"}
KNOWN_FIELDS = frozenset(_COUNTS) | frozenset(_STRINGS) | _OTHER
# OTLP's integer attribute values are 64-bit signed, its times unsigned nanoseconds since 1970
_MIN_INT64, _MAX_INT64 = -(2**63), 2**63 - 1
_MAX_TIME_NS = 2**64 - 1
_LATEST = "2554-07-21"


class EventError(ValueError):
    """An event that cannot be taken; the message names the event and the field."""


def events_to_request(body: Any) -> ExportTraceServiceRequest:
    events = body if isinstance(body, list) else [body]
    if not events:
        raise EventError("no events")
    request = ExportTraceServiceRequest()
    by_service: dict[str, Any] = {}
    for n, event in enumerate(events):
        where = f"event {n}" if isinstance(body, list) else "event"
        if not isinstance(event, Mapping):
            raise EventError(f"{where}: an event is a JSON object")
        unknown = sorted(set(event) - KNOWN_FIELDS)
        if unknown:
            raise EventError(f"{where}: unknown field(s) {', '.join(unknown)}")
        service = _string(event, "service", where) or "unknown_service"
        scope_spans = by_service.get(service)
        if scope_spans is None:
            resource_spans = request.resource_spans.add()
            resource_spans.resource.attributes.append(_kv(A.SERVICE_NAME, service))
            scope_spans = by_service[service] = resource_spans.scope_spans.add()
            scope_spans.scope.name = SCOPE
        _add_span(scope_spans, event, where)
    return request


def _add_span(scope_spans: Any, event: Mapping[str, Any], where: str) -> None:
    model = _string(event, "model", where)
    if not model:
        raise EventError(f"{where}: 'model' is required")
    span = scope_spans.spans.add()
    span.trace_id = _id(event, "trace_id", 16, where)
    span.span_id = _id(event, "span_id", 8, where)
    span.kind = 3  # CLIENT
    start = _timestamp_ns(event.get("timestamp"), where)
    duration = event.get("duration_ms", 0)
    # compared, not converted: a float cannot hold every JSON integer, and NaN compares false
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not 0 <= duration <= _MAX_TIME_NS
    ):
        raise EventError(f"{where}: duration_ms is a non-negative number")
    end = start + int(duration * 1_000_000)
    if end > _MAX_TIME_NS:
        raise EventError(f"{where}: timestamp plus duration_ms is past {_LATEST}")
    span.start_time_unix_nano = start
    span.end_time_unix_nano = end
    operation = _string(event, "operation", where) or "chat"
    span.name = f"{operation} {model}"
    span.attributes.append(_kv(A.GEN_AI_OPERATION_NAME, operation))
    for field, key in _STRINGS.items():
        if field != "operation" and (value := _string(event, field, where)) is not None:
            span.attributes.append(_kv(key, value))
    if event.get("response_model") is None:
        # an event's model is the model that answered (the one that billed it), unless it says otherwise;
        # reports and dedupe read the response model as an SDK span gives it
        span.attributes.append(_kv(A.GEN_AI_RESPONSE_MODEL, model))
    for field, key in _COUNTS.items():
        value = event.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise EventError(f"{where}: {field} is a whole number; got {value!r}")
        if not _MIN_INT64 <= value <= _MAX_INT64:
            # what OTLP can carry; a count that makes no sense within it is stored and flagged by pricing
            raise EventError(f"{where}: {field} is out of the 64-bit range; got {value}")
        span.attributes.append(_kv(key, value))
    cost = event.get("cost_usd")
    if cost is not None:  # a cost the provider billed, e.g. OpenRouter's usage.cost
        if isinstance(cost, bool) or not isinstance(cost, (int, float, str)):
            raise EventError(f"{where}: cost_usd is a number")
        try:
            amount = float(cost)
        except ValueError:
            raise EventError(f"{where}: cost_usd is a number; got {cost!r}") from None
        if not math.isfinite(amount) or amount < 0:
            raise EventError(f"{where}: cost_usd is a finite, non-negative number")
        span.attributes.append(_kv(A.GEN_AI_USAGE_COST_AMOUNT, amount))
        span.attributes.append(_kv(A.GEN_AI_USAGE_COST_SOURCE, "provider"))
    tags = event.get("tags")
    if tags is not None:
        if not isinstance(tags, Mapping):
            raise EventError(f"{where}: tags is an object of strings")
        for name, value in tags.items():
            span.attributes.append(_kv(A.COSTSPAN_TAG_PREFIX + str(name), str(value)))


def _string(event: Mapping[str, Any], field: str, where: str) -> str | None:
    value = event.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError(f"{where}: {field} is a string; got {value!r}")
    return value


def _id(event: Mapping[str, Any], field: str, size: int, where: str) -> bytes:
    value = event.get(field)
    if value is None:
        return os.urandom(size)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size or raw == bytes(size):
        raise EventError(f"{where}: {field} is {size * 2} hex digits, not all zero")
    return raw


def _timestamp_ns(value: Any, where: str) -> int:
    if value is None:
        return time.time_ns()
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EventError(f"{where}: timestamp is ISO 8601; got {value!r}") from None
        if stamp.tzinfo is None:
            raise EventError(f"{where}: timestamp needs a time zone (Z or +00:00)")
        try:
            ns = int(stamp.timestamp() * 1e9)
        except OverflowError:  # 9999-12-31T23:59-01:00 is in the year 10000 in UTC
            ns = -1
        if not 0 <= ns <= _MAX_TIME_NS:
            raise EventError(f"{where}: timestamp is between 1970 and {_LATEST}; got {value!r}")
        return ns
    raise EventError(f"{where}: timestamp is an ISO 8601 string")


def _kv(key: str, value: str | int | float) -> KeyValue:
    kv = KeyValue(key=key)
    if isinstance(value, str):
        kv.value.string_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.double_value = value
    return kv
