"""The OTLP/HTTP receiver with real clients: the OpenTelemetry SDK's HTTP exporter, raw OTLP/JSON fixtures
captured from real libraries, and bad input of every kind."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
import uvicorn
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from costspan.collector.otlp import batch_from_request
from costspan.collector.receivers._sink import Backpressure, valid_spans
from costspan.collector.receivers.otlp_http import ReceiverSettings, create_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "genai"


class Server:
    """The receiver on 127.0.0.1, a free port, in a thread; batches land in ``self.batches``."""

    def __init__(self, **settings) -> None:
        self.batches = []
        self.encodings = []
        self.full = False
        self.settings = ReceiverSettings(**settings)

        def sink(batch, encoded):
            # a protobuf body is handed on to be logged as it is; JSON is encoded by the pipeline
            assert encoded is None or type(batch).FromString(encoded) == batch
            self.encodings.append("json" if encoded is None else "protobuf")
            if self.full:
                raise Backpressure(2.0)
            self.batches.append(valid_spans(batch_from_request(batch))[0])

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(
            create_app(sink, self.settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the receiver did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def server():
    with Server(max_body_bytes=64 * 1024) as running:
        yield running


def test_the_sdk_http_exporter_delivers_spans(server):
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{server.url}/v1/traces")))
    tracer = provider.get_tracer("costspan.instrumentation")
    with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.request.model": "gpt-4o"}) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    (batch,) = server.batches
    assert server.encodings == ["protobuf"]
    assert batch.trace_id == [trace_id]
    assert batch.attributes[0]["gen_ai.request.model"] == "gpt-4o"
    assert batch.resource[0]["service.name"] == "shop"


def test_otlp_json_from_a_real_capture(server):
    body = (FIXTURES / "anthropic_native" / "anthropic_messages_cache.json").read_bytes()
    response = httpx.post(
        f"{server.url}/v1/traces", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert json.loads(response.content) == {}
    (batch,) = server.batches
    assert server.encodings == ["json"]
    assert batch.scope_name == ["com.anthropic.sdk.python"]
    assert (
        len(batch.trace_id[0]) == 32 and batch.attributes[0]["gen_ai.usage.cache_read.input_tokens"] == 1024
    )


def test_gzip_and_empty_requests(server):
    request = ExportTraceServiceRequest()
    assert (
        httpx.post(
            f"{server.url}/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"}
        ).status_code
        == 200
    )
    body = (FIXTURES / "otel_genai_openai" / "openai_chat.json").read_bytes()
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=gzip.compress(body),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200 and len(server.batches) == 1
    assert request.ByteSize() == 0


def _status(response):
    status = status_pb2.Status()
    status.ParseFromString(response.content)
    return status


def test_bad_input_gets_its_specified_answer(server):
    proto = {"content-type": "application/x-protobuf"}
    truncated = httpx.post(f"{server.url}/v1/traces", content=b"\x0a\xff\xff", headers=proto)
    assert truncated.status_code == 400 and "not an OTLP traces request" in _status(truncated).message
    garbage = httpx.post(
        f"{server.url}/v1/traces", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400 and json.loads(garbage.content)["code"] == 3
    wrong_type = httpx.post(f"{server.url}/v1/traces", content=b"x", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415
    oversize = httpx.post(f"{server.url}/v1/traces", content=b"\0" * (65 * 1024), headers=proto)
    assert oversize.status_code == 413
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))  # 10 MiB of zeros in about 10 KiB
    assert len(bomb) < 64 * 1024
    exploded = httpx.post(
        f"{server.url}/v1/traces", content=bomb, headers={**proto, "content-encoding": "gzip"}
    )
    assert exploded.status_code == 413
    not_gzip = httpx.post(
        f"{server.url}/v1/traces", content=b"plain", headers={**proto, "content-encoding": "gzip"}
    )
    assert not_gzip.status_code == 400
    bad_utf8 = httpx.post(
        f"{server.url}/v1/traces",
        content=b'{"resourceSpans": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert bad_utf8.status_code == 400
    # and it keeps serving
    ok = httpx.post(f"{server.url}/v1/traces", content=b"", headers=proto)
    assert ok.status_code == 200 and server.batches == []


def test_partial_success_names_the_rejected_spans(server):
    doc = json.loads((FIXTURES / "otel_genai_openai" / "openai_chat.json").read_text())
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "abcd"})  # a 2-byte span id
    response = httpx.post(
        f"{server.url}/v1/traces", content=json.dumps(doc), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    answer = json.loads(response.content)
    assert answer["partialSuccess"]["rejectedSpans"] == "1"
    assert "8-byte span id" in answer["partialSuccess"]["errorMessage"]
    assert len(server.batches[0]) == 1


def test_backpressure_is_retryable(server):
    server.full = True
    response = httpx.post(
        f"{server.url}/v1/traces",
        content=(FIXTURES / "otel_genai_openai" / "openai_chat.json").read_bytes(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert json.loads(response.content)["code"] == 14


def test_metrics_and_logs_are_accepted(server):
    proto = {"content-type": "application/x-protobuf"}
    assert httpx.post(f"{server.url}/v1/metrics", content=b"", headers=proto).status_code == 200
    assert (
        httpx.post(
            f"{server.url}/v1/logs", content=b"{}", headers={"content-type": "application/json"}
        ).status_code
        == 200
    )
    assert httpx.post(f"{server.url}/v1/logs", content=b"\x0a\xff", headers=proto).status_code == 400
    assert server.settings.counts["metrics_dropped"] == 1 and server.settings.counts["logs_dropped"] == 1


def test_bearer_token():
    with Server(bearer_tokens=("s3cret",)) as running:
        proto = {"content-type": "application/x-protobuf"}
        assert httpx.post(f"{running.url}/v1/traces", content=b"", headers=proto).status_code == 401
        ok = httpx.post(
            f"{running.url}/v1/traces", content=b"", headers={**proto, "authorization": "Bearer s3cret"}
        )
        assert ok.status_code == 200
        assert ExportTraceServiceResponse.FromString(ok.content).ByteSize() == 0


def test_the_bearer_token_is_compared_whole_and_any_configured_one_passes():
    from costspan.collector.receivers._auth import authorized, parse_tokens

    tokens = parse_tokens(" s3cret , n3xt,")  # two tokens while clients move from the first to the second
    assert tokens == ("s3cret", "n3xt")
    assert authorized("Bearer s3cret", tokens) and authorized("Bearer n3xt", tokens)
    for header in (
        None,
        "",
        "Bearer s3cre",
        "Bearer s3cret2",
        "bearer s3cret",
        "s3cret",
        "Bearer sécret",
        "Bearer s3cret,n3xt",
        "Bearer s3cretn3xt",
        "Bearer ",
    ):
        assert not authorized(header, tokens), header
    assert not authorized("Bearer s3cret", ())
    with pytest.raises(TypeError):
        authorized("Bearer s", "s")  # one str would be a sequence of one-character tokens
    for value in ("with space", "tab\there", "caf\u00e9"):
        with pytest.raises(ValueError, match="token 1 of 1"):
            parse_tokens(value)
