"""Prompt and response content does not rest on disk: a real `costspan serve`, content sent through the
OpenTelemetry SDK's exporters (OTLP/HTTP protobuf and gRPC, both gzipped), OTLP JSON and /v1/events, then
every byte of every file under the data directory searched for it."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path
from textwrap import dedent

import grpc
import httpx2 as httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from costspan.processors.redact import input_hash
from tests.support.collector import Collector
from tests.support.health import wait_until
from tests.support.otlp_sink import OTLPSink

HASH_KEY = "content-at-rest-test-key"
USAGE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


def messages(marker: str, role: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": f"{role} says {marker}"}]}])


def send_over_http_protobuf(collector: Collector, marker: str) -> None:
    """The official GenAI semantic conventions' attributes and a content event, and a plain child span."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            HttpExporter(
                endpoint=f"http://127.0.0.1:{collector.http}/v1/traces", compression=Compression.Gzip
            )
        )
    )
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    attrs = {
        **USAGE,
        "gen_ai.input.messages": messages(marker, "user"),
        "gen_ai.output.messages": messages(marker, "assistant"),
    }
    with tracer.start_as_current_span("chat gpt-4o", attributes=attrs) as span:
        span.add_event("gen_ai.choice", {"message": f"choice {marker}"})
        with tracer.start_as_current_span("tool", attributes={"input.value": f"tool input {marker}"}):
            pass
    provider.shutdown()


def send_over_grpc(collector: Collector, marker: str) -> None:
    """OpenLLMetry's indexed prompt and completion attributes and its prompt event."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            GrpcExporter(
                endpoint=f"127.0.0.1:{collector.grpc}", insecure=True, compression=grpc.Compression.Gzip
            )
        )
    )
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai.v1")
    attrs = {
        **USAGE,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": f"prompt {marker}",
        "gen_ai.completion.0.content": f"completion {marker}",
    }
    with tracer.start_as_current_span("openai.chat", attributes=attrs) as span:
        span.add_event("gen_ai.content.prompt", {"gen_ai.prompt": f"event {marker}"})
    provider.shutdown()


def send_as_json(collector: Collector, marker: str) -> None:
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-app"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "opentelemetry.instrumentation.openai_v2"},
                        "spans": [
                            {
                                "traceId": uuid.uuid4().hex,
                                "spanId": uuid.uuid4().hex[:16],
                                "name": "chat gpt-4o",
                                "kind": 3,
                                "startTimeUnixNano": "1760000000000000000",
                                "endTimeUnixNano": "1760000001000000000",
                                "attributes": [
                                    *({"key": k, "value": _json_value(v)} for k, v in USAGE.items()),
                                    {"key": "input.value", "value": {"stringValue": f"json {marker}"}},
                                    {
                                        "key": "gen_ai.output.messages",
                                        "value": {"stringValue": messages(marker, "assistant")},
                                    },
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    response = httpx.post(f"http://127.0.0.1:{collector.http}/v1/traces", json=doc, timeout=10)
    assert response.status_code == 200, response.text


def _json_value(value: str | int) -> dict[str, str]:
    return {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}


def send_events(collector: Collector, marker: str) -> None:
    """An event is logged through the same path; it has no field for content, and one with such a field is
    refused whole."""
    url = f"http://127.0.0.1:{collector.http}/v1/events"
    accepted = httpx.post(
        url, json={"model": "gpt-4o", "input_tokens": 1000, "output_tokens": 100}, timeout=10
    )
    assert accepted.status_code == 200, accepted.text
    refused = httpx.post(url, json={"model": "gpt-4o", "prompt": f"event {marker}"}, timeout=10)
    assert refused.status_code == 400 and marker not in refused.text


def files_holding(data_dir: Path, marker: str) -> set[str]:
    """Every file under the data directory whose bytes hold the marker (folders below the data directory)."""
    return {
        str(path.relative_to(data_dir))
        for path in data_dir.rglob("*")
        if path.is_file() and marker.encode() in path.read_bytes()
    }


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "costspan.yaml"
    path.write_text(dedent(text))
    return str(path)


@pytest.fixture
def running():
    started: list[Collector] = []
    yield started
    for collector in started:
        if collector.proc and collector.proc.poll() is None:
            collector.kill(signal.SIGTERM)


def test_no_content_rests_on_disk_by_default(tmp_path, running, monkeypatch):
    marker = f"marker-{uuid.uuid4().hex}"
    monkeypatch.setenv("COSTSPAN_TEST_HASH_KEY", HASH_KEY)  # the collector process inherits it
    config = config_file(tmp_path, "processors:\n  redact: {input_hash_key_env: COSTSPAN_TEST_HASH_KEY}\n")
    collector = Collector(tmp_path / "data")
    running.append(collector.start("--config", config))
    send_over_http_protobuf(collector, marker)
    send_over_grpc(collector, marker)
    send_as_json(collector, marker)
    send_events(collector, marker)
    collector.wait_for("SELECT count(*), sum(cost_usd) FROM llm_calls", ["4,0.014"])
    data = tmp_path / "data"
    assert any(p.is_file() and p.stat().st_size for p in (data / "wal").rglob("*"))  # the log holds them
    assert files_holding(data, "gpt-4o")  # the search finds what is there
    assert files_holding(data, marker) == set()
    # the input hash is made before the log, from the text, as the processor makes it
    hashes = collector.sql("SELECT service_name, input_hash FROM llm_calls ORDER BY 1, 2")
    assert (
        f"support-bot,{input_hash({'gen_ai.input.messages': messages(marker, 'user')}, HASH_KEY.encode())}"
        in (hashes)
    )
    assert (
        f"support-bot,{input_hash({'gen_ai.prompt.0.content': f'prompt {marker}'}, HASH_KEY.encode())}"
        in (hashes)
    )
    assert f"json-app,{input_hash({'input.value': f'json {marker}'}, HASH_KEY.encode())}" in hashes


def test_content_kept_on_purpose_rests_only_in_the_log_and_the_forward_queue(tmp_path, running):
    marker = f"marker-{uuid.uuid4().hex}"
    sink = OTLPSink().start()
    try:
        config = config_file(
            tmp_path,
            f"""
            processors:
              redact: {{keep_content: true}}
            exporters:
              otlp/keep:
                endpoint: {sink.endpoint}
            service:
              pipelines:
                traces:
                  exporters: [parquet, prometheus, otlp/keep]
            """,
        )
        collector = Collector(tmp_path / "data")
        running.append(collector.start("--config", config))
        send_over_http_protobuf(collector, marker)
        collector.wait_for("SELECT count(*) FROM llm_calls", ["1"])
        wait_until(lambda: len(sink.spans) == 2)
    finally:
        sink.stop()
    forwarded = [a for a in sink.spans.values() if "gen_ai.input.messages" in a]
    assert forwarded and marker in forwarded[0]["gen_ai.input.messages"]  # kept content is forwarded
    where = files_holding(tmp_path / "data", marker)
    assert any(name.startswith("wal/") for name in where)  # at rest in the log, as documented
    assert all(name.startswith(("wal/", "queues/")) for name in where), where  # never in Parquet
