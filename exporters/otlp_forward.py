"""The OTLP forward exporter: the enriched spans to another OTLP endpoint (Tempo, Jaeger, a Datadog agent).

The spans go out as they came in (ids, times, links, status, resource and scope), with what the processor
chain did to them: content removed by the redact processor is removed here too, and every GenAI span carries
costspan's cost, pricing provenance and attribution (:func:`costspan.semconv.enrich.cost_attributes`:
``gen_ai.usage.cost.*``, ``costspan.cost.*``, ``costspan.pricing.*``, ``costspan.team`` ...). Spans without
valid ids, which the receivers rejected, are left out.

Transport follows the OTLP exporter specification: OTLP/HTTP with binary protobuf (``/v1/traces`` is added
to an endpoint without a path) or OTLP/gRPC, optional gzip, headers, and a timeout. Failures are classified
for the queue in front of this exporter (:mod:`costspan.collector.queued_exporter`): HTTP 429, 502, 503 and
504, gRPC UNAVAILABLE and its kin, timeouts and refused connections are retryable (with the server's
``Retry-After`` or ``RetryInfo`` delay when it gives one); any other refusal is permanent.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from costspan.processors import PermanentError, RetryableError, SpanBatch
from costspan.semconv.enrich import cost_attributes

log = logging.getLogger(__name__)

HTTP_PROTOBUF = "http/protobuf"
GRPC = "grpc"
PROTOCOLS = (HTTP_PROTOBUF, GRPC)
COMPRESSIONS = ("gzip", "none")
# OTLP/HTTP: "429, 502, 503 and 504 ... are retryable"; every other 4xx and 5xx is not.
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT_S = 10.0
# Receivers commonly cap a request at 4 MiB (the gRPC default, kept by the OpenTelemetry Collector's OTLP
# receiver and by Tempo): a larger record goes out as several requests under this size.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024 - 64 * 1024


class TargetUnavailable(RetryableError):
    """The target did not take the record now; ``retry_after_s`` is the delay it asked for, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TargetRefused(PermanentError):
    """The target refused the record; sending it again would be refused the same way."""


@dataclass
class ForwardSettings:
    endpoint: str  # http(s)://host:port[/path]
    protocol: str = HTTP_PROTOBUF
    headers: Mapping[str, str] = field(default_factory=dict)
    compression: str = "gzip"
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # before compression


# -- the enriched request --------------------------------------------------------------------------------


def enriched_request(
    requests: Sequence[ExportTraceServiceRequest],
    received: SpanBatch,
    processed: SpanBatch,
    partition: Any = None,
) -> ExportTraceServiceRequest:
    """One request holding the valid spans of ``requests``, changed as the chain changed them.

    ``received`` is the batch the chain was given (the requests' valid spans, in order) and ``processed``
    the batch it returned, row for row. The requests are changed in place and merged. With a ``partition``
    (a pipeline worker's share of the traces: :class:`costspan.collector.worker.Partition`), the batch holds
    only its spans, and so does the request.
    """
    holds = partition.holds if partition is not None and partition.count > 1 else None

    def wanted(s: Any) -> bool:  # a valid span of the partition
        return len(s.trace_id) == 16 and len(s.span_id) == 8 and (holds is None or holds(s.trace_id))

    if len(received) != len(processed):
        raise ValueError("the processor chain changed the number of spans; cannot match them to requests")
    out = ExportTraceServiceRequest()
    row = 0
    for request in requests:
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                if not all(wanted(s) for s in ss.spans):
                    kept = [s for s in ss.spans if wanted(s)]
                    del ss.spans[:]
                    ss.spans.extend(kept)
                for span in ss.spans:
                    _apply(span, received, processed, row)
                    row += 1
        if len(requests) > 1:  # one request is sent as it is, without a copy
            out.resource_spans.extend(request.resource_spans)
    if len(requests) == 1:
        out = requests[0]
    if row != len(processed):
        raise ValueError(f"{row} valid spans in the requests but {len(processed)} in the batch")
    return out


def _apply(span: Any, received: SpanBatch, processed: SpanBatch, row: int) -> None:
    call = processed.calls[row] if processed.calls else None
    kept = processed.attributes[row]
    redacted = kept is not received.attributes[row]
    if call is not None or redacted:
        added = cost_attributes(call) if call is not None else {}
        # the span's own attributes stay as they came, but for those redact removed and those costspan sets
        attributes = span.attributes
        for i in reversed(range(len(attributes))):
            key = attributes[i].key
            if key in added or (redacted and key not in kept):
                del attributes[i]
        for key, value in added.items():
            _set_value(attributes.add(key=key).value, value)
    if processed.events[row] is not received.events[row]:
        # redact empties content events' attributes; the events themselves (names, times) stay
        for event, (_, kept_event) in zip(span.events, processed.events[row], strict=True):
            if not kept_event and len(event.attributes):
                del event.attributes[:]


def key_value(key: str, value: Any) -> KeyValue:
    out = KeyValue(key=key)
    _set_value(out.value, value)
    return out


def any_value(value: Any) -> AnyValue:
    """A Python attribute value as OTLP's AnyValue (the inverse of the receivers' decoding)."""
    out = AnyValue()
    _set_value(out, value)
    return out


def _set_value(out: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _set_value(out.kvlist_value.values.add(key=str(k)).value, v)
    elif isinstance(value, (list, tuple)):
        values = out.array_value.values
        for v in value:
            _set_value(values.add(), v)
        if not value:
            out.array_value.SetInParent()
    elif value is not None:
        out.string_value = str(value)


# -- sending ---------------------------------------------------------------------------------------------


class OTLPForwarder:
    """Sends serialized ``ExportTraceServiceRequest`` records to one OTLP endpoint."""

    def __init__(self, settings: ForwardSettings) -> None:
        self.settings = settings
        self._sender = (_GrpcSender if settings.protocol == GRPC else _HttpSender)(settings)

    def export(self, payload: bytes) -> None:
        """Send a record; one over ``max_request_bytes`` goes as several requests, in order (when one of
        them fails, the record is retried whole: delivery is at least once)."""
        if len(payload) <= self.settings.max_request_bytes:
            self._sender.export(payload)
            return
        request = ExportTraceServiceRequest.FromString(payload)
        for part in split_request(request, self.settings.max_request_bytes):
            self._sender.export(part.SerializeToString())

    def close(self) -> None:
        self._sender.close()


def split_request(request: ExportTraceServiceRequest, max_bytes: int) -> list[ExportTraceServiceRequest]:
    """The request's spans in requests of at most ``max_bytes`` each (a single larger span goes alone),
    each span under its own resource and scope."""
    parts: list[ExportTraceServiceRequest] = []
    current = ExportTraceServiceRequest()
    size = 0
    for rs in request.resource_spans:
        for ss in rs.scope_spans:
            target = None
            for span in ss.spans:
                span_size = span.ByteSize() + 16  # and its field tags and lengths
                if size and size + span_size > max_bytes:
                    parts.append(current)
                    current, size, target = ExportTraceServiceRequest(), 0, None
                if target is None:
                    resource = current.resource_spans.add(resource=rs.resource, schema_url=rs.schema_url)
                    target = resource.scope_spans.add(scope=ss.scope, schema_url=ss.schema_url)
                    size += rs.resource.ByteSize() + ss.scope.ByteSize() + 32
                target.spans.append(span)
                size += span_size
    if size:
        parts.append(current)
    return parts


class _HttpSender:
    def __init__(self, settings: ForwardSettings) -> None:
        import requests

        parts = urlsplit(settings.endpoint)
        path = parts.path.rstrip("/")
        self.url = settings.endpoint if path else settings.endpoint.rstrip("/") + "/v1/traces"
        self.timeout = settings.timeout_s
        self.gzip = settings.compression == "gzip"
        self.session = requests.Session()
        self.session.headers.update({**settings.headers, "Content-Type": "application/x-protobuf"})
        if self.gzip:
            self.session.headers["Content-Encoding"] = "gzip"
        self._errors = requests.RequestException

    def export(self, payload: bytes) -> None:
        body = gzip.compress(payload, compresslevel=5) if self.gzip else payload
        try:
            response = self.session.post(self.url, data=body, timeout=self.timeout)
        except self._errors as exc:  # refused, reset, timed out: the target may come back
            raise TargetUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            _log_partial_success(self.url, response.content)
            return
        message = f"{self.url}: HTTP {status} {response.text[:200]!r}"
        if status in RETRYABLE_HTTP:
            raise TargetUnavailable(message, _retry_after(response.headers.get("Retry-After")))
        raise TargetRefused(message)

    def close(self) -> None:
        self.session.close()


class _GrpcSender:
    def __init__(self, settings: ForwardSettings) -> None:
        import grpc

        parts = urlsplit(settings.endpoint)
        target = parts.netloc or settings.endpoint
        self.target = target
        self.channel = (
            grpc.secure_channel(target, grpc.ssl_channel_credentials())
            if parts.scheme == "https"
            else grpc.insecure_channel(target)
        )
        # the payload is already serialized: send the bytes as they are (the generated stub's method)
        self.call = self.channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=lambda payload: payload,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self.metadata = tuple((k.lower(), v) for k, v in settings.headers.items())
        self.compression = grpc.Compression.Gzip if settings.compression == "gzip" else None
        self.timeout = settings.timeout_s
        self._grpc = grpc

    def export(self, payload: bytes) -> None:
        grpc = self._grpc
        try:
            self.call(payload, timeout=self.timeout, metadata=self.metadata, compression=self.compression)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            message = f"{self.target}: gRPC {code.name}: {exc.details()}"  # type: ignore[attr-defined]
            delay = _retry_info(exc)
            retryable = {
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.ABORTED,
                grpc.StatusCode.OUT_OF_RANGE,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DATA_LOSS,
            }
            # RESOURCE_EXHAUSTED is retryable only when the server says when (OTLP specification)
            if code in retryable or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None):
                raise TargetUnavailable(message, delay) from exc
            raise TargetRefused(message) from exc

    def close(self) -> None:
        self.channel.close()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def _retry_info(exc: Any) -> float | None:
    from google.rpc import error_details_pb2

    for key, value in exc.trailing_metadata() or ():
        if key == "google.rpc.retryinfo-bin":
            info = error_details_pb2.RetryInfo.FromString(value)
            return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def _log_partial_success(url: str, body: bytes) -> None:
    try:
        response = ExportTraceServiceResponse.FromString(body)
    except Exception:  # a 2xx without an OTLP body is still a success
        return
    rejected = response.partial_success.rejected_spans
    if rejected:
        log.warning(
            "%s: the target rejected %d span(s): %s", url, rejected, response.partial_success.error_message
        )
