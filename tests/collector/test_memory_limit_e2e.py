"""Bounded memory, end to end: past its limits a real `costspan serve` refuses retryably (HTTP 503 with
Retry-After, gRPC UNAVAILABLE with RetryInfo) instead of growing, and everything it acknowledged is stored."""

from __future__ import annotations

import signal
import socket
import threading
from textwrap import dedent

import grpc
import httpx2 as httpx
import pytest
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.support.collector import Collector
from tests.support.health import health, value, wait_until
from tests.support.otlp_requests import chat_request

LIMIT = 65536


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
    slow = chat_request(1, padding=LIMIT - 4096).SerializeToString()
    assert LIMIT - 4096 < len(slow) < LIMIT
    with socket.create_connection(("127.0.0.1", collector.http)) as held:
        # a client that has sent its headers and part of its body: the receiver holds its declared size
        held.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: costspan\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {len(slow)}\r\n\r\n".encode()
            + slow[:1000]
        )
        wait_until(lambda: value(health(collector), "costspan_collector_in_flight_bytes") == len(slow))
        small = chat_request(5, padding=1000)
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
    garbage = httpx.post(
        f"http://127.0.0.1:{collector.http}/v1/traces",
        content=b"\xff\x00 not protobuf",
        headers={"content-type": "application/x-protobuf"},
    )
    assert garbage.status_code == 400
    metrics = health(collector)
    assert value(metrics, "costspan_collector_requests_refused_total", reason="invalid") == 1
    assert value(metrics, "costspan_collector_requests_refused_total", reason="memory_limit") == 2


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
                body = chat_request(20, padding=400).SerializeToString()
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
