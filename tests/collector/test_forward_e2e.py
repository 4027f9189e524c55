"""The OTLP forward exporter, end to end: a real `costspan serve` forwarding enriched spans to a second real
`costspan serve` and to a local OTLP/HTTP endpoint that fails for a while or is not there at all. Parquet is
never held back; the forward queue survives kill -9; the health metrics say what happened."""

from __future__ import annotations

import signal
from decimal import Decimal
from textwrap import dedent

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from tests.support.collector import Collector, free_port
from tests.support.health import health, value, wait_until
from tests.support.otlp_sink import OTLPSink

PROMPT = '[{"role": "user", "parts": [{"type": "text", "content": "what is our refund policy?"}]}]'


def forwarding_config(tmp_path, endpoint: str, name: str = "otlp", extra_keys: str = "") -> str:
    path = tmp_path / f"forward-{name.replace('/', '-')}.yaml"
    path.write_text(
        dedent(
            f"""
            exporters:
              {name}:
                endpoint: {endpoint}
                {extra_keys}
                headers: {{x-scope-orgid: acme}}
                retry_on_failure: {{initial_interval: 50ms, max_interval: 200ms, max_elapsed_time: 0s}}
            service:
              pipelines:
                traces:
                  exporters: [parquet, prometheus, {name}]
            """
        )
    )
    return str(path)


def send_calls(collector: Collector, count: int) -> list[str]:
    """``count`` priced chat calls (gpt-4o, 1000 in / 100 out: $0.0035 each), each with a child HTTP span
    that is not GenAI, over the Python SDK's OTLP/HTTP exporter; returns the chat spans' ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        SimpleSpanProcessor(HttpExporter(endpoint=f"http://127.0.0.1:{collector.http}/v1/traces"))
    )
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    ids = []
    for _ in range(count):
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000,
            "gen_ai.usage.output_tokens": 100,
            "gen_ai.input.messages": PROMPT,
            "costspan.team": "support",
        }
        with tracer.start_as_current_span("chat gpt-4o", attributes=attrs) as span:
            ids.append(f"{span.get_span_context().span_id:016x}")
            with tracer.start_as_current_span("POST", attributes={"http.request.method": "POST"}):
                pass
    provider.shutdown()
    return ids


@pytest.fixture
def running():
    started: list[Collector] = []
    sinks: list[OTLPSink] = []

    def start(collector: Collector, *args: str) -> Collector:
        started.append(collector.start(*args))
        return collector

    yield start, sinks
    for collector in started:
        if collector.proc and collector.proc.poll() is None:
            collector.kill(signal.SIGTERM)
    for sink in sinks:
        sink.stop()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_forward_to_a_second_costspan_priced_once(tmp_path, running, protocol):
    start, _ = running
    downstream = start(Collector(tmp_path / "downstream"))
    port = downstream.grpc if protocol == "grpc" else downstream.http
    config = forwarding_config(tmp_path, f"http://127.0.0.1:{port}", extra_keys=f"protocol: {protocol}")
    upstream = start(Collector(tmp_path / "upstream"), "--config", config)
    send_calls(upstream, 3)
    query = "SELECT count(*), sum(cost_usd), min(team), min(cost_source), min(pricing_status) FROM llm_calls"
    upstream.wait_for(query, ["3,0.0105,support,local,priced"])
    # the downstream collector reads the forwarded usage and prices it once: the upstream's cost attributes
    # are not added to it, and the attribution travels with the span
    downstream.wait_for(query, ["3,0.0105,support,local,priced"])
    assert downstream.sql("SELECT count(*) FROM llm_calls_all") == ["3"]
    metrics = health(upstream)
    assert value(metrics, "costspan_collector_exporter_sent_spans_total", exporter="otlp") == 6
    assert value(metrics, "costspan_collector_spans_received_total") == 6
    assert value(metrics, "costspan_collector_spans_written_total") == 6


def test_target_failing_for_a_while_holds_back_nothing_and_loses_nothing(tmp_path, running):
    start, sinks = running
    sink = OTLPSink().start()
    sinks.append(sink)
    sink.answer = 503
    collector = start(Collector(tmp_path / "data"), "--config", forwarding_config(tmp_path, sink.endpoint))
    ids = send_calls(collector, 5)
    # Parquet is complete while every forward attempt is refused
    collector.wait_for("SELECT count(*), sum(cost_usd) FROM llm_calls", ["5,0.0175"])
    wait_until(lambda: sink.refused >= 2)
    metrics = health(collector)
    assert value(metrics, "costspan_collector_exporter_queue_records", exporter="otlp") > 0
    assert value(metrics, "costspan_collector_exporter_errors_total", exporter="otlp", kind="retryable") >= 2
    assert value(metrics, "costspan_collector_export_lag_seconds", exporter="otlp") > 0
    assert value(metrics, "costspan_collector_exporter_queue_records", exporter="parquet") == 0
    assert sink.spans == {}
    sink.answer = 200
    wait_until(lambda: len(sink.spans) == 10)
    for span_id in ids:
        attrs = sink.spans[span_id]
        assert Decimal(str(attrs["gen_ai.usage.cost.amount"])) == Decimal("0.0035")
        assert attrs["gen_ai.usage.cost.currency"] == "USD"
        assert attrs["gen_ai.usage.cost.source"] == "local"
        assert attrs["costspan.pricing.status"] == "priced"
        assert attrs["costspan.team"] == "support"
        assert attrs["gen_ai.usage.input_tokens"] == 1000
        assert "gen_ai.input.messages" not in attrs  # the redact processor ran before forwarding
    http_spans = [a for span_id, a in sink.spans.items() if span_id not in ids]
    assert all(a == {"http.request.method": "POST"} for a in http_spans)  # not GenAI: forwarded as it came
    assert all(h.get("x-scope-orgid") == "acme" and h.get("Content-Encoding") == "gzip" for h in sink.headers)
    wait_until(
        lambda: value(health(collector), "costspan_collector_exporter_queue_records", exporter="otlp") == 0
    )


def test_target_down_then_kill_9_the_queue_survives(tmp_path, running):
    start, sinks = running
    port = free_port()  # nothing listens here yet: connections are refused
    config = forwarding_config(tmp_path, f"http://127.0.0.1:{port}")
    collector = start(Collector(tmp_path / "data"), "--config", config)
    ids = send_calls(collector, 4)
    collector.wait_for("SELECT count(*), sum(cost_usd) FROM llm_calls", ["4,0.014"])
    wait_until(
        lambda: (
            value(
                health(collector),
                "costspan_collector_exporter_errors_total",
                exporter="otlp",
                kind="retryable",
            )
            >= 2
        )
    )
    metrics = health(collector)
    assert value(metrics, "costspan_collector_exporter_queue_records", exporter="otlp") > 0
    assert value(metrics, "costspan_collector_exporter_queue_bytes", exporter="otlp") > 0
    assert value(metrics, "costspan_collector_exporter_sent_spans_total", exporter="otlp") == 0
    collector.kill()
    sink = OTLPSink(port).start()
    sinks.append(sink)
    restarted = start(Collector(tmp_path / "data"), "--config", config)
    wait_until(lambda: set(ids) <= set(sink.spans))
    assert len(sink.spans) == 8
    restarted.wait_for("SELECT count(*), sum(cost_usd) FROM llm_calls", ["4,0.014"])


def test_permanent_refusal_drops_the_batch_and_counts_it(tmp_path, running):
    start, sinks = running
    sink = OTLPSink().start()
    sinks.append(sink)
    sink.answer = 400
    collector = start(Collector(tmp_path / "data"), "--config", forwarding_config(tmp_path, sink.endpoint))
    send_calls(collector, 2)
    collector.wait_for("SELECT count(*) FROM llm_calls", ["2"])

    def dropped() -> float:
        metrics = health(collector)
        return value(
            metrics,
            "costspan_collector_exporter_dropped_spans_total",
            exporter="otlp",
            reason="permanent_error",
        )

    wait_until(lambda: dropped() == 4)
    metrics = health(collector)
    assert value(metrics, "costspan_collector_exporter_errors_total", exporter="otlp", kind="permanent") >= 1
    assert value(metrics, "costspan_collector_exporter_errors_total", exporter="otlp", kind="retryable") == 0
    assert value(metrics, "costspan_collector_exporter_queue_records", exporter="otlp") == 0


def test_kill_9_while_forwarding_loses_nothing_and_doubles_nothing_downstream(tmp_path, running):
    start, _ = running
    downstream = start(Collector(tmp_path / "downstream"))
    config = forwarding_config(tmp_path, f"http://127.0.0.1:{downstream.http}")
    upstream = start(Collector(tmp_path / "upstream"), "--config", config)
    send_calls(upstream, 30)  # each call acknowledged before the next is sent
    upstream.kill()  # right away: acknowledged spans may be neither in Parquet nor forwarded yet
    restarted = start(Collector(tmp_path / "upstream"), "--config", config)
    query = "SELECT count(*), count(DISTINCT span_id), sum(cost_usd) FROM llm_calls"
    restarted.wait_for(query, ["30,30,0.105"])
    # delivery downstream is at least once; the downstream's llm_calls counts each call once
    downstream.wait_for(query, ["30,30,0.105"])
