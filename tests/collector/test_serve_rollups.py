"""An agent -> tool -> LLM call span tree from the Python OpenTelemetry SDK through a real `costspan serve`:
genai_spans, the rollups, and the collector's own background compaction, read with `costspan sql`."""

from __future__ import annotations

import signal
import time

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

from tests.support.collector import Collector

DAY_NS = 86_400 * 10**9


def send_tree(port: int, start_ns: int) -> None:
    """POST /ask (server span) > planner (agent) > search (tool) > chat gpt-4o, and a chat gpt-4o-mini
    directly under the agent; each span exported as it ends, children first."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True))
    )
    tracer = provider.get_tracer("support-bot")
    t = start_ns

    def child(name, parent, attrs=None, kind=SpanKind.INTERNAL):
        nonlocal t
        t += 1_000_000
        context = set_span_in_context(parent) if parent is not None else None
        return tracer.start_span(name, context=context, kind=kind, attributes=attrs or {}, start_time=t)

    def chat(parent, model, inp, out):
        span = child(
            f"chat {model}",
            parent,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": inp,
                "gen_ai.usage.output_tokens": out,
            },
            SpanKind.CLIENT,
        )
        span.end(end_time=t + 500_000)

    root = child("POST /ask", None, {"http.request.method": "POST"}, SpanKind.SERVER)
    agent = child(
        "invoke_agent planner",
        root,
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "costspan.team": "care"},
    )
    tool = child(
        "execute_tool search", agent, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
    )
    chat(tool, "gpt-4o", 1000, 100)  # $0.0035
    tool.end(end_time=t + 2_000_000)
    chat(agent, "gpt-4o-mini", 10000, 1000)  # $0.0021
    agent.end(end_time=t + 3_000_000)
    root.end(end_time=t + 4_000_000)
    provider.shutdown()


def test_agent_tree_rolls_up_and_is_compacted_in_the_background(tmp_path):
    config = tmp_path / "collector.yaml"
    config.write_text("exporters:\n  parquet:\n    compaction_interval_s: 0.5\n")
    collector = Collector(tmp_path / "data").start("--config", str(config))
    try:
        # two days ago: a partition the collector compacts as soon as it runs its upkeep
        send_tree(collector.grpc, time.time_ns() - 2 * DAY_NS)
        collector.wait_for(
            "SELECT kind, name FROM genai_spans ORDER BY start_time",
            ["other,POST /ask", "agent,planner", "tool,search"],
        )
        collector.wait_for("SELECT count(*) FROM llm_calls", ["2"])
        assert collector.sql(
            "SELECT agent_name, team, calls, cost_usd, self_cost_usd FROM cost_by_agent"
        ) == ["planner,care,2,0.0056,0.0056"]
        assert collector.sql("SELECT root_service, calls, tokens, cost_usd FROM cost_by_trace") == [
            "support-bot,2,12100,0.0056"
        ]
        assert collector.sql(
            "SELECT a.depth FROM llm_call_ancestors a JOIN llm_calls c ON c.span_id = a.call_span_id "
            "JOIN genai_spans s ON s.span_id = a.ancestor_span_id "
            "WHERE c.request_model = 'gpt-4o' AND s.name = 'POST /ask'"
        ) == ["3"]
        data = tmp_path / "data"
        deadline = time.monotonic() + 60
        while not (
            list(data.glob("llm_calls/date=*/day-*.parquet"))
            and list(data.glob("genai_spans/date=*/day-*.parquet"))
        ):
            assert time.monotonic() < deadline, "the collector did not compact the past day"
            time.sleep(0.2)
        assert collector.sql("SELECT agent_name, calls, cost_usd FROM cost_by_agent") == ["planner,2,0.0056"]
        assert collector.sql("SELECT count(*) FROM genai_spans") == ["3"]
    finally:
        collector.kill(signal.SIGTERM)
