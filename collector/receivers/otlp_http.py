"""The OTLP/HTTP receiver: ``/v1/traces``, ``/v1/metrics`` and ``/v1/logs``, binary protobuf or JSON.

Status codes follow the OTLP specification (opentelemetry-proto, ``docs/specification.md``, OTLP/HTTP):
200 with an ``Export*ServiceResponse`` (``partial_success`` when some spans were rejected), 400 with a
``google.rpc.Status`` carrying a ``BadRequest`` detail for a body that does not decode, 413 for a body
over the size limit (applied after gzip decompression, so a compressed bomb is refused too) or one that
would take more than 16 times its size decoded (:mod:`._decoded_size`), 415 for
another content type, 401 without the configured bearer token, and 503 with ``Retry-After`` when the
pipeline cannot take more, so that standard exporters retry and nothing is lost. Responses use the
request's encoding.

Traces go to the pipeline's sink as the decoded request. Metrics and logs are decoded
(so a malformed body is still a 400), counted and dropped: costspan prices spans.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from costspan.collector.otlp import OTLPDecodeError, decode_json, message_from_json, request_from_json

from ._auth import authorized
from ._decoded_size import DECODE_LOCK, Inspection, inspect, too_large
from ._limiter import MemoryLimiter, Reservation
from ._sink import Backpressure, Sink
from .events import EventError, events_to_request

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024  # the OpenTelemetry Collector's default request size limit
_INFLATE_PIECE = 1024 * 1024  # gzip is decompressed a piece at a time, each held before it is made


@dataclass
class ReceiverSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    bearer_tokens: tuple[str, ...] = ()  # any one of them is required; none: no token is asked for
    counts: Counter[str] = field(default_factory=Counter)
    limiter: MemoryLimiter | None = None  # bounds the bytes of requests held at once


class _Refused(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def create_app(sink: Sink, settings: ReceiverSettings | None = None) -> FastAPI:
    settings = settings or ReceiverSettings()
    app = FastAPI(title="costspan OTLP/HTTP receiver", docs_url=None, redoc_url=None, openapi_url=None)
    counts = settings.counts

    async def export(request: Request, kind: str, message_type: type[Message], response: Message) -> Response:
        # answer in the request's encoding, even when refusing it
        encoding = JSON if request.headers.get("content-type", "").lower().startswith(JSON) else PROTOBUF
        held = Reservation(settings.limiter)
        try:
            _authorize(request, settings)
            encoding = _encoding(request)
            body = await _read_body(request, settings.max_body_bytes, held)
            with DECODE_LOCK:  # one decoded request at a time: see _decoded_size
                message = _decode(body, encoding, message_type, kind)
                inspection = _inspect(message, len(body)) if kind == "traces" else None
            if inspection is not None:
                encoded = body if encoding == PROTOBUF else None
                rejected = await _deliver(message, inspection, held, sink, encoded)
                counts["spans_rejected"] += rejected
                if rejected:
                    response.partial_success.rejected_spans = rejected  # type: ignore[attr-defined]
                    response.partial_success.error_message = inspection.reason  # type: ignore[attr-defined]
            else:
                counts[f"{kind}_dropped"] += 1
        except _Refused as refused:
            counts[f"refused_{refused.status}"] += 1
            return _status(refused.status, refused.message, encoding, refused.headers)
        finally:
            held.release()
        counts[f"{kind}_requests"] += 1
        return _encode(response, encoding, 200)

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        return await export(
            request,
            "traces",
            trace_service_pb2.ExportTraceServiceRequest,
            trace_service_pb2.ExportTraceServiceResponse(),
        )

    @app.post("/v1/metrics")
    async def metrics(request: Request) -> Response:
        return await export(
            request,
            "metrics",
            metrics_service_pb2.ExportMetricsServiceRequest,
            metrics_service_pb2.ExportMetricsServiceResponse(),
        )

    @app.post("/v1/logs")
    async def logs(request: Request) -> Response:
        return await export(
            request,
            "logs",
            logs_service_pb2.ExportLogsServiceRequest,
            logs_service_pb2.ExportLogsServiceResponse(),
        )

    @app.post("/v1/events")
    async def events(request: Request) -> Response:
        """Simple JSON events (one or a list): see :mod:`costspan.collector.receivers.events`."""
        held = Reservation(settings.limiter)
        try:
            _authorize(request, settings)
            if _encoding(request) != JSON:
                raise _Refused(415, "events are JSON: content-type application/json")
            body = await _read_body(request, settings.max_body_bytes, held)
            try:
                message = events_to_request(decode_json(body))
            except (OTLPDecodeError, EventError) as exc:
                raise _Refused(400, str(exc)) from exc
            await _deliver(message, _inspect(message, len(body)), held, sink)
        except _Refused as refused:
            counts[f"refused_{refused.status}"] += 1
            return Response(
                json.dumps({"error": refused.message}),
                status_code=refused.status,
                media_type=JSON,
                headers=refused.headers,
            )
        finally:
            held.release()
        accepted = sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
        counts["events"] += accepted
        return Response(json.dumps({"accepted": accepted}), media_type=JSON)

    return app


def _authorize(request: Request, settings: ReceiverSettings) -> None:
    if not settings.bearer_tokens:
        return
    if not authorized(request.headers.get("authorization"), settings.bearer_tokens):
        raise _Refused(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})


def _encoding(request: Request) -> str:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in (PROTOBUF, JSON):
        return content_type
    raise _Refused(415, f"unsupported content type {content_type!r}; use {PROTOBUF} or {JSON}")


def _hold(held: Reservation, nbytes: int) -> None:
    try:
        held.grow_to(nbytes)
    except Backpressure as full:
        raise _Refused(503, str(full), {"Retry-After": str(max(1, round(full.retry_after_s)))}) from full


async def _read_body(request: Request, limit: int, held: Reservation) -> bytes:
    """The body, decompressed as it streams in; ``held`` grows with it, before each piece is taken, so the
    memory limiter refuses a request (503) before the process holds more than its bound, and a body or its
    decompression past ``limit`` is refused (413) as soon as it passes it, a gzip bomb included."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"request body over {limit} bytes")
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity", "gzip"):
        raise _Refused(415, f"unsupported content encoding {coding!r}; use gzip")
    if declared is not None and declared.isdigit():
        _hold(held, int(declared))
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
    chunks = []
    size = 0  # bytes received
    kept = 0  # bytes kept: received, or once decompressed
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"request body over {limit} bytes")
        if inflater is None:
            chunks.append(chunk)
            kept = size
            _hold(held, kept)
            continue
        while chunk and not inflater.eof:
            try:
                piece = inflater.decompress(chunk, _INFLATE_PIECE)
            except zlib.error as exc:
                raise _Refused(400, f"body is not valid gzip: {exc}") from exc
            kept += len(piece)
            if kept > limit:
                raise _Refused(413, f"request body over {limit} bytes once decompressed")
            _hold(held, kept)
            chunks.append(piece)
            chunk = inflater.unconsumed_tail
    if inflater is not None and size and not inflater.eof:
        raise _Refused(400, "body is not valid gzip: the stream ends early")
    return b"".join(chunks)


def _decode(body: bytes, encoding: str, message_type: type[Message], kind: str) -> Message:
    try:
        if encoding == PROTOBUF:
            message = message_type()
            message.ParseFromString(body)
            return message
        doc = decode_json(body) if body.strip() else {}
        if kind == "traces":
            return request_from_json(doc)
        return message_from_json(doc, message_type(), kind)
    except (DecodeError, OTLPDecodeError) as exc:
        raise _Refused(400, f"the body is not an OTLP {kind} request: {exc}") from exc


def _inspect(request: Message, wire_bytes: int) -> Inspection:
    """What the decoded request takes; 413 when that is out of proportion to its size."""
    inspection = inspect(request, wire_bytes)  # type: ignore[arg-type]
    why = too_large(inspection, wire_bytes)
    if why is not None:
        raise _Refused(413, why)
    return inspection


async def _deliver(
    request: Message, inspection: Inspection, held: Reservation, sink: Sink, encoded: bytes | None = None
) -> int:
    """Hand the request to the pipeline, holding its decoded size meanwhile; returns how many spans it will
    reject (``inspection.reason`` says why)."""
    _hold(held, inspection.decoded_bytes)
    if encoded if encoded is not None else request.ByteSize():
        try:
            await run_in_threadpool(sink, request, encoded)
        except Backpressure as full:
            raise _Refused(503, str(full), {"Retry-After": str(max(1, round(full.retry_after_s)))}) from full
    return inspection.invalid_spans


def _encode(message: Message, encoding: str, status: int, headers: dict[str, str] | None = None) -> Response:
    if encoding == JSON:
        body = json_format.MessageToJson(message, indent=None).encode()
    else:
        body = message.SerializeToString()
    return Response(body, status_code=status, media_type=encoding, headers=headers)


def _status(http_status: int, message: str, encoding: str, headers: dict[str, str]) -> Response:
    code = code_pb2.UNAVAILABLE if http_status == 503 else code_pb2.INVALID_ARGUMENT
    status = status_pb2.Status(code=code, message=message)
    if http_status == 400:  # bad data: the specification asks for a BadRequest detail that describes it
        violation = error_details_pb2.BadRequest.FieldViolation(field="body", description=message)
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    return _encode(status, encoding, http_status, headers)
