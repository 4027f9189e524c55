"""genai_spans from spans that real libraries made, through the real chain, writer and DuckDB views.

The captured fixtures (tests/fixtures/genai) hold one LLM call each: it lands in ``llm_calls``, and the spans
around it (pydantic-ai's agent run, the AI SDK's generateText around its provider call) in ``genai_spans``,
never as a second call. Agent, tool and chain spans come from OpenInference's own tracer
(``OITracer`` decorators) around real ``openai`` SDK calls that OpenInference's instrumentation traces,
against the local provider server.
"""

from __future__ import annotations

import openai
import pytest
from openinference.instrumentation import OITracer, TraceConfig
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costspan.collector.otlp import batch_from_request
from costspan.exporters.ancestry import AncestryWindow
from costspan.exporters.duckdb_views import connect
from costspan.exporters.parquet import ParquetWriter
from costspan.processors import build_chain
from tests.processors.test_captured import ENTRIES, load
from tests.support.provider_server import ProviderServer


def store(data_dir, batch):
    done = build_chain()(batch)
    records = [c for c in done.calls if c is not None]
    ParquetWriter(data_dir).write([*records, *AncestryWindow().bridge_spans(done)])
    return done


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_captured_calls_are_calls_and_nothing_else(tmp_path, entry):
    done = store(tmp_path, load(entry))
    around = [c for c in done.calls if c is not None and c.kind != "llm"]
    assert {c.kind for c in around} <= {"agent", "workflow"}
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 1
    # genai_spans also holds the spans that link a call to its agent (the AI SDK's agent step), not the call
    stored = {row[0] for row in con.execute("SELECT span_id FROM genai_spans").fetchall()}
    (call,) = [c for c in done.calls if c is not None and c.kind == "llm" and c.duplicate_of is None]
    assert {c.span_id for c in around} <= stored and call.span_id not in stored


@pytest.fixture
def openinference_agent_spans():
    """chain answer > agent planner > (tool search > chat gpt-4o-mini, chat gpt-4o), as OpenInference
    traces them, in the order the SDK exports them."""
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = OITracer(provider.get_tracer("support-bot"), config=TraceConfig())
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with ProviderServer() as server:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-costspan-test", max_retries=0)

            @tracer.tool
            def search(question: str) -> str:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
                )
                return "found"

            @tracer.agent
            def planner(question: str) -> str:
                search(question)
                client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": question}]
                )
                return "done"

            @tracer.chain
            def answer(question: str) -> str:
                return planner(question)

            answer("what is the refund policy?")
    finally:
        instrumentor.uninstrument()
    return exporter.get_finished_spans()


def test_openinference_agent_tool_chain_roll_up(tmp_path, openinference_agent_spans):
    request = encode_spans(openinference_agent_spans)
    store(tmp_path, batch_from_request(request))
    con = connect(tmp_path)
    spans = con.execute("SELECT kind, name, dialect FROM genai_spans ORDER BY start_time").fetchall()
    assert spans == [
        ("workflow", "answer", "openinference"),
        ("agent", "planner", "openinference"),
        ("tool", "search", "openinference"),
    ]
    total, agents = con.execute("SELECT sum(cost_usd), list(DISTINCT agent_name) FROM llm_calls").fetchone()
    assert total > 0 and agents == ["planner"]  # calls inside the agent take its name
    assert con.execute("SELECT calls, cost_usd, self_cost_usd FROM cost_by_agent").fetchall() == [
        (2, total, total)
    ]
    assert con.execute("SELECT workflow_name, calls, cost_usd FROM cost_by_workflow").fetchall() == [
        ("answer", 2, total)
    ]
