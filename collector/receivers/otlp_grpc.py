"""The OTLP/gRPC receiver (grpcio, asyncio): the trace, metrics and logs services.

Per the OTLP specification: OK with an ``Export*ServiceResponse`` (``partial_success`` when spans were
rejected); ``RESOURCE_EXHAUSTED`` for a message over the size limit (grpc applies it to the decompressed
message) or one that would take more than 16 times its size decoded (:mod:`._decoded_size`);
``UNAVAILABLE`` with ``RetryInfo`` when the pipeline cannot take more, in the status details and in the
``google.rpc.retryinfo-bin`` trailer that OpenTelemetry's exporters read, so they retry and nothing is
lost; ``UNAUTHENTICATED`` without the configured bearer token; ``INVALID_ARGUMENT`` with a ``BadRequest``
detail for a message that does not decode (invalid UTF-8 in a string field, truncated bytes), which the
specification makes not retryable. gzip is grpc's own. Metrics and logs are counted and dropped, as over
HTTP.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ..listeners import ListenError
from ..tls import ServerTLS
from ._auth import authorized
from ._decoded_size import DECODE_LOCK, Inspection, inspect, too_large
from ._limiter import MemoryLimiter, Reservation
from ._sink import Backpressure, Sink

DEFAULT_MAX_MESSAGE_BYTES = 20 * 1024 * 1024


@dataclass
class GrpcSettings:
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    bearer_tokens: tuple[str, ...] = ()  # any one of them is required; none: no token is asked for
    counts: Counter[str] = field(default_factory=Counter)
    limiter: MemoryLimiter | None = None  # bounds the bytes of requests held at once


async def _authorize(context: grpc.aio.ServicerContext, settings: GrpcSettings) -> None:
    if not settings.bearer_tokens:
        return
    metadata = dict(context.invocation_metadata() or ())
    if not authorized(metadata.get("authorization"), settings.bearer_tokens):
        settings.counts["refused_unauthenticated"] += 1
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


async def _unavailable(context: grpc.aio.ServicerContext, full: Backpressure) -> None:
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=max(1, round(full.retry_after_s)))
    )
    detail = any_pb2.Any()
    detail.Pack(retry)
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.UNAVAILABLE, message=str(full), details=[detail])
    )
    # abort replaces trailing metadata set before it: the RetryInfo trailer goes with the status details
    trailers = (*status.trailing_metadata, ("google.rpc.retryinfo-bin", retry.SerializeToString()))
    await context.abort(status.code, status.details, trailers)


class _Received:
    """A decoded request, the bytes it came as (logged as they are, not encoded again) and, for traces, what
    it takes decoded."""

    __slots__ = ("encoded", "inspection", "message")

    def __init__(self, message: Message, encoded: bytes, inspection: Inspection | None) -> None:
        self.message = message
        self.encoded = encoded
        self.inspection = inspection


class _TooLarge:
    """What the deserializer hands on for a trace request that would take too much memory decoded (freed)."""

    def __init__(self, why: str) -> None:
        self.why = why


class _Undecodable:
    """What the request deserializer hands the servicer for bytes that do not decode.

    grpc answers an exception raised while deserializing with UNKNOWN and logs a traceback; handing the
    error on lets the servicer answer INVALID_ARGUMENT, the code the OTLP specification recommends for
    bad data, with a message that says what was wrong.
    """

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _lenient(message_type: type[Message]) -> Callable[[bytes], _Received | _Undecodable | _TooLarge]:
    traces = message_type is trace_service_pb2.ExportTraceServiceRequest

    def deserialize(data: bytes) -> _Received | _Undecodable | _TooLarge:
        with DECODE_LOCK:  # one decoded request at a time: see _decoded_size
            try:
                message = message_type.FromString(data)
            except DecodeError as exc:
                return _Undecodable(exc)
            if not traces:
                return _Received(message, data, None)
            inspection = inspect(message, len(data))  # type: ignore[arg-type]
            why = too_large(inspection, len(data))
            return _TooLarge(why) if why is not None else _Received(message, data, inspection)

    return deserialize


async def _decoded(
    request: Any, kind: str, context: grpc.aio.ServicerContext, settings: GrpcSettings
) -> _Received:
    if isinstance(request, _TooLarge):
        settings.counts["refused_resource_exhausted"] += 1
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, request.why)
    if not isinstance(request, _Undecodable):
        return request
    settings.counts["refused_invalid_argument"] += 1
    message = f"the message is not an OTLP {kind} request: {request.error}"
    bad_request = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field="request", description=message)]
    )
    detail = any_pb2.Any()
    detail.Pack(bad_request)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    await context.abort_with_status(rpc_status.to_status(status))


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: Sink, settings: GrpcSettings) -> None:
        self.sink = sink
        self.settings = settings

    async def Export(
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        await _authorize(context, self.settings)
        received = await _decoded(request, "traces", context, self.settings)
        request, inspection = received.message, received.inspection
        assert inspection is not None  # the trace service's deserializer inspects
        response = trace_service_pb2.ExportTraceServiceResponse()
        if inspection.invalid_spans:
            self.settings.counts["spans_rejected"] += inspection.invalid_spans
            response.partial_success.rejected_spans = inspection.invalid_spans
            response.partial_success.error_message = inspection.reason
        if received.encoded:
            held = Reservation(self.settings.limiter)
            try:
                held.grow_to(inspection.decoded_bytes)
                await asyncio.to_thread(self.sink, request, received.encoded)
            except Backpressure as full:
                self.settings.counts["refused_unavailable"] += 1
                await _unavailable(context, full)
            finally:
                held.release()
        self.settings.counts["traces_requests"] += 1
        return response


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, settings: GrpcSettings) -> None:
        self.settings = settings

    async def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: grpc.aio.ServicerContext
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        await _authorize(context, self.settings)
        await _decoded(request, "metrics", context, self.settings)
        self.settings.counts["metrics_dropped"] += 1
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, settings: GrpcSettings) -> None:
        self.settings = settings

    async def Export(
        self, request: logs_service_pb2.ExportLogsServiceRequest, context: grpc.aio.ServicerContext
    ) -> logs_service_pb2.ExportLogsServiceResponse:
        await _authorize(context, self.settings)
        await _decoded(request, "logs", context, self.settings)
        self.settings.counts["logs_dropped"] += 1
        return logs_service_pb2.ExportLogsServiceResponse()


def _register(server: grpc.aio.Server, servicer: Any, module: Any, signal: str) -> None:
    """Add ``{signal}Service.Export`` as the generated ``add_*_to_server`` would, but with a lenient
    deserializer (``signal`` is Trace, Metrics or Logs, as in the generated names)."""
    request_type = getattr(module, f"Export{signal}ServiceRequest")
    response_type = getattr(module, f"Export{signal}ServiceResponse")
    export = grpc.unary_unary_rpc_method_handler(
        servicer.Export,
        request_deserializer=_lenient(request_type),
        response_serializer=response_type.SerializeToString,
    )
    service = module.DESCRIPTOR.services_by_name[f"{signal}Service"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, {"Export": export}),))


def create_server(
    sink: Sink, address: str, settings: GrpcSettings | None = None, tls: ServerTLS | None = None
) -> tuple[grpc.aio.Server, int]:
    """A server bound to ``address`` (``127.0.0.1:4317``; port 0 picks one), over TLS when ``tls`` is
    given; returns it and its port."""
    settings = settings or GrpcSettings()
    server = grpc.aio.server(
        options=(
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", 4 * 1024 * 1024),
            # grpc shares a port with any process that asks by default: a second collector on this port
            # would take half the calls into its own data directory (costspan.collector.listeners)
            ("grpc.so_reuseport", 0),
        )
    )
    _register(server, _Traces(sink, settings), trace_service_pb2, "Trace")
    _register(server, _Metrics(settings), metrics_service_pb2, "Metrics")
    _register(server, _Logs(settings), logs_service_pb2, "Logs")
    try:
        if tls is not None:
            port = server.add_secure_port(address, tls.grpc_credentials())
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc says only that it failed
        raise ListenError(f"{address} (OTLP/gRPC): cannot listen: {exc}") from None
    return server, port
