"""`costspan serve` as a real process: SDK exporters in, `costspan sql` and /metrics out; kill -9 and
restart lose nothing acknowledged and count nothing twice."""

from __future__ import annotations

import json
import signal
import subprocess
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.collector import Collector
from tests.support.readers import assert_plain_readers_agree


def provider_with(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def llm_span(tracer, model: str, inp: int, out: int) -> None:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": inp,
        "gen_ai.usage.output_tokens": out,
        "costspan.team": "payments",
    }
    with tracer.start_as_current_span(f"chat {model}", attributes=attrs):
        pass


@pytest.fixture
def collector(tmp_path):
    running = Collector(tmp_path / "data").start()
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


def test_http_and_grpc_exporters_to_priced_rows_and_metrics(collector):
    http = provider_with(HttpExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces"))
    grpc = provider_with(GrpcExporter(endpoint=f"127.0.0.1:{collector.grpc}", insecure=True))
    llm_span(http.get_tracer("costspan.instrumentation"), "gpt-4o", 1000, 100)  # $0.0035
    llm_span(grpc.get_tracer("costspan.instrumentation"), "gpt-4o-mini", 10000, 1000)  # $0.0021
    http.shutdown()
    grpc.shutdown()
    collector.wait_for("SELECT count(*), sum(cost_usd), min(team) FROM llm_calls", ["2,0.0056,payments"])
    metrics = httpx.get(f"http://127.0.0.1:{collector.admin}/metrics").text
    line = next(
        m for m in metrics.splitlines() if m.startswith("costspan_cost_usd_total{") and 'model="gpt-4o"' in m
    )
    assert Decimal(line.rsplit(" ", 1)[1]) == Decimal("0.0035")
    assert "costspan_collector_spans_written_total" in metrics


def test_kill_9_and_restart_lose_nothing_and_double_nothing(tmp_path):
    collector = Collector(tmp_path / "data").start()
    acknowledged = 0
    fixture = (
        Path(__file__).resolve().parents[1] / "fixtures" / "genai" / "otel_genai_openai" / "openai_chat.json"
    )
    doc = json.loads(fixture.read_text())
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    with httpx.Client() as client:
        for i in range(41):
            span["traceId"] = f"{i + 1:032x}"  # each request: a new trace with one priced call ...
            for attribute in span["attributes"]:
                if attribute["key"] == "gen_ai.response.id":  # ... with its own response id
                    attribute["value"] = {"stringValue": f"chatcmpl-{i}"}
            response = client.post(f"http://127.0.0.1:{collector.http}/v1/traces", json=doc)
            acknowledged += response.status_code == 200
    collector.kill()  # right away: acknowledged requests may not be processed yet
    assert acknowledged == 41
    restarted = Collector(tmp_path / "data").start()
    try:
        restarted.wait_for(
            "SELECT count(*), count(DISTINCT trace_id) FROM llm_calls", [f"{acknowledged},{acknowledged}"]
        )
        assert assert_plain_readers_agree(tmp_path / "data")[0] == acknowledged
    finally:
        restarted.kill(signal.SIGTERM)


def test_events_endpoint_with_curl(collector):
    events = [
        {
            "model": "gpt-4o",
            "provider": "openai",
            "input_tokens": 1000,
            "output_tokens": 100,
            "feature": "search",
            "team": "discovery",
            "customer_id": "acme",
            "tags": {"region": "eu"},
            "timestamp": "2025-11-02T10:00:00Z",
            "duration_ms": 850,
            "service": "batch-jobs",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "span_id": "00f067aa0ba902b7",
        },
        {
            "model": "anthropic/claude-3.5-sonnet",
            "provider": "openrouter",
            "input_tokens": 10,
            "output_tokens": 5,
            "cost_usd": 0.0042,
        },
    ]
    url = f"http://127.0.0.1:{collector.http}/v1/events"
    sent = subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            json.dumps(events),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(sent.stdout) == {"accepted": 2}
    collector.wait_for(
        "SELECT service_name, feature, team, customer_id, tags['region'], cost_usd, cost_source, "
        "request_model, response_model FROM llm_calls ORDER BY service_name",
        [
            "batch-jobs,search,discovery,acme,eu,0.0035,local,gpt-4o,gpt-4o",
            "unknown_service,,,,,0.0042,provider,anthropic/claude-3.5-sonnet,anthropic/claude-3.5-sonnet",
        ],
    )
    bad = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            '[{"model": "gpt-4o", "input_tokens": "many"}]',
            url,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.stdout.endswith("400") and "event 0: input_tokens is a whole number" in bad.stdout
    # re-sending an event with the same ids does not count it twice
    subprocess.run(
        [
            "curl",
            "-s",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            json.dumps(events[0]),
            url,
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    collector.wait_for("SELECT count(*) FROM llm_calls_all", ["3"])  # stored, marked as sent again
    assert collector.sql("SELECT count(*) FROM llm_calls") == ["2"]


def test_a_graceful_stop_processes_everything_acknowledged(tmp_path):
    from tests.support.otlp_requests import chat_request

    collector = Collector(tmp_path / "data").start()
    url = f"http://127.0.0.1:{collector.http}/v1/traces"
    headers = {"content-type": "application/x-protobuf"}
    bodies = [chat_request(1000).SerializeToString() for _ in range(12)]  # 3x the worker's batch of 4,096
    with httpx.Client() as client:
        for body in bodies:
            assert client.post(url, content=body, headers=headers).status_code == 200
    collector.kill(signal.SIGTERM)  # at once: most of it is still in the write-ahead log
    assert collector.proc.returncode == 0
    # no restart: what was acknowledged was processed before the collector exited
    assert collector.sql("SELECT count(*), sum(cost_usd) FROM llm_calls") == ["12000,2.52"]
