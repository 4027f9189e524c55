"""Bounded memory, end to end: past its limits a real `costspan serve` refuses retryably (HTTP 503 with
Retry-After, gRPC UNAVAILABLE with RetryInfo) instead of growing, and everything it acknowledged is stored."""

from __future__ import annotations

import itertools
import signal
import socket
import threading
from textwrap import dedent

import grpc
import httpx2 as httpx
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from tests.collector.test_forward_e2e import health, value, wait_until
from tests.support.collector import Collector

LIMIT = 65536
_ids = itertools.count(1)


def request_of(spans: int, padding: int = 0) -> ExportTraceServiceRequest:
    """``spans`` priced chat calls (gpt-4o-mini, 1000 in / 100 out), each in its own trace; ``padding``
    bytes of a non-content attribute on each make the request as large as a test needs."""
    out = []
    for _ in range(spans):
        n = next(_ids)
        attrs = {
            "gen_ai.operation.name": AnyValue(string_value="chat"),
            "gen_ai.provider.name": AnyValue(string_value="openai"),
            "gen_ai.request.model": AnyValue(string_value="gpt-4o-mini"),
            "gen_ai.usage.input_tokens": AnyValue(int_value=1000),
            "gen_ai.usage.output_tokens": AnyValue(int_value=100),
            "app.padding": AnyValue(string_value="x" * padding),
        }
        out.append(
            Span(
                trace_id=n.to_bytes(16, "big"),
                span_id=n.to_bytes(8, "big"),
                name="chat gpt-4o-mini",
                start_time_unix_nano=1_760_000_000_000_000_000 + n,
                end_time_unix_nano=1_760_000_001_000_000_000 + n,
                attributes=[KeyValue(key=k, value=v) for k, v in attrs.items()],
            )
        )
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=out)])])


@pytest.fixture
def collector(tmp_path):
    config = tmp_path / "limits.yaml"
    config.write_text(
        dedent(
            f"""
            memory_limiter:
              max_in_flight_bytes: {LIMIT}
              max_wal_pending_bytes: {LIMIT}
            """
        )
    )
    running = Collector(tmp_path / "data").start("--config", str(config))
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


def test_requests_held_at_the_limit_make_others_wait(collector):
    slow = request_of(1, padding=LIMIT - 4096).SerializeToString()
    assert LIMIT - 4096 < len(slow) < LIMIT
    with socket.create_connection(("127.0.0.1", collector.http)) as held:
        # a client that has sent its headers and part of its body: the receiver holds its declared size
        held.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: costspan\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {len(slow)}\r\n\r\n".encode()
            + slow[:1000]
        )
        wait_until(lambda: value(health(collector), "costspan_collector_in_flight_bytes") == len(slow))
        small = request_of(5, padding=1000)
        refused = httpx.post(
            f"http://127.0.0.1:{collector.http}/v1/traces",
            content=small.SerializeToString(),
            headers={"content-type": "application/x-protobuf"},
        )
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        channel = grpc.insecure_channel(f"127.0.0.1:{collector.grpc}")
        with channel, pytest.raises(grpc.RpcError) as unavailable:
            TraceServiceStub(channel).Export(small, timeout=30)
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(unavailable.value.trailing_metadata())
        retry = RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])  # what OTel exporters read
        assert retry.retry_delay.seconds == 1
        held.sendall(slow[1000:])
        assert held.recv(4096).startswith(b"HTTP/1.1 200")
    metrics = health(collector)
    assert value(metrics, "costspan_collector_requests_refused_total", reason="memory_limit") == 2
    assert value(metrics, "costspan_collector_in_flight_bytes") == 0
    accepted = httpx.post(
        f"http://127.0.0.1:{collector.http}/v1/traces",
        content=small.SerializeToString(),
        headers={"content-type": "application/x-protobuf"},
    )
    assert accepted.status_code == 200
    collector.wait_for("SELECT count(*) FROM llm_calls", ["6"])


def test_a_flood_gets_refusals_not_growth_and_keeps_what_it_acknowledged(collector):
    url = f"http://127.0.0.1:{collector.http}/v1/traces"
    acknowledged: list[int] = []
    refusals: list[int] = []
    peak = [0.0]
    flooding = threading.Event()
    flooding.set()

    def client() -> None:
        acked = refused = 0
        with httpx.Client() as http:
            for _ in range(15):  # bounded: 15 requests per client, each retried until accepted
                body = request_of(20, padding=400).SerializeToString()
                for _attempt in range(2000):
                    response = http.post(
                        url, content=body, headers={"content-type": "application/x-protobuf"}
                    )
                    if response.status_code == 200:
                        acked += 20
                        break
                    assert response.status_code == 503 and "retry-after" in response.headers
                    refused += 1
                    flooding.wait(0.02)  # shorter than Retry-After: this client floods on purpose
        acknowledged.append(acked)
        refusals.append(refused)

    def watch() -> None:
        while flooding.is_set():
            metrics = health(collector)
            peak[0] = max(peak[0], value(metrics, "costspan_collector_in_flight_bytes"))

    watcher = threading.Thread(target=watch)
    watcher.start()
    clients = [threading.Thread(target=client) for _ in range(6)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    flooding.clear()
    watcher.join()
    assert sum(acknowledged) == 6 * 15 * 20  # every request was eventually accepted ...
    collector.wait_for("SELECT count(*), count(DISTINCT span_id) FROM llm_calls", ["1800,1800"])
    metrics = health(collector)
    # ... the refusals the clients saw are the ones the collector counted, and memory stayed bounded
    refused_total = sum(
        value(metrics, "costspan_collector_requests_refused_total", reason=reason)
        for reason in ("memory_limit", "wal_full")
    )
    assert refused_total == sum(refusals)
    assert peak[0] <= LIMIT
    assert value(metrics, "costspan_collector_spans_received_total") == 1800
