"""The attribution API: scopes that nest, decorators, baggage to downstream services, environment defaults,
other instrumentations' spans stamped; and record() / record_retrieval() priced by the real processor
chain."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import openai
import pytest
from opentelemetry import context, propagate
from opentelemetry.sdk.trace import ReadableSpan

from costspan.instrumentation import (
    CostspanInstrumentor,
    _attribution,
    attribute,
    current_attribution,
    record,
    record_retrieval,
)
from costspan.processors import SpanBatch, build_chain
from costspan.processors._batch import Span
from tests.instrumentation.conftest import endpoints_of
from tests.instrumentation.test_sdks import CHAT


def _chat(server) -> None:
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)


def _costspan_attributes(span: ReadableSpan) -> dict[str, str]:
    return {k: v for k, v in span.attributes.items() if k.startswith("costspan.") and ".stream." not in k}


def test_scopes_nest_and_the_inner_value_wins(instrumented, server):
    with attribute(team="search", feature="answers", tags={"region": "eu"}):
        with attribute(feature="rerank", customer_id="acme", user_id="u-7"):
            _chat(server)
        _chat(server)
    _chat(server)
    inner, outer, outside = sorted(instrumented.calls(), key=lambda s: s.start_time)
    assert _costspan_attributes(inner) == {
        "costspan.team": "search",
        "costspan.feature": "rerank",
        "costspan.customer_id": "acme",
        "costspan.user_id": "u-7",
        "costspan.tag.region": "eu",
    }
    assert _costspan_attributes(outer) == {
        "costspan.team": "search",
        "costspan.feature": "answers",
        "costspan.tag.region": "eu",
    }
    assert _costspan_attributes(outside) == {}


def test_decorators_sync_and_async(instrumented, server):
    @attribute(team="agents", agent="planner", step="plan")
    def plan() -> None:
        _chat(server)

    @attribute(team="agents", agent="executor", step="act", prompt_key="act", prompt_version="3")
    async def act() -> None:
        await asyncio.to_thread(_chat, server)

    plan()
    asyncio.run(act())
    planned, acted = sorted(instrumented.calls(), key=lambda s: s.start_time)
    assert planned.attributes["costspan.agent"] == "planner"
    assert planned.attributes["costspan.step"] == "plan"
    assert acted.attributes["costspan.agent"] == "executor"
    assert acted.attributes["costspan.prompt_version"] == "3"
    assert current_attribution() == {}


def test_a_decorator_does_not_take_generators():
    with pytest.raises(TypeError):

        @attribute(team="x")
        def generate():
            yield 1


def test_attribution_travels_as_baggage_to_a_downstream_service(instrumented, server):
    headers: dict[str, str] = {}
    with attribute(team="checkout", customer_id="acme"):
        propagate.inject(headers)  # what an instrumented HTTP client sends downstream
    assert "costspan.team=checkout" in headers["baggage"]
    # the downstream service: its server instrumentation extracts the incoming context
    token = context.attach(propagate.extract(headers, context=context.Context()))
    try:
        _chat(server)
    finally:
        context.detach(token)
    (span,) = instrumented.calls()
    assert span.attributes["costspan.team"] == "checkout"
    assert span.attributes["costspan.customer_id"] == "acme"


def test_defaults_come_from_the_environment(monkeypatch, telemetry, server):
    monkeypatch.setenv("COSTSPAN_TEAM", "platform")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=api,costspan.feature=search,costspan.team=x")
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, endpoints=endpoints_of(server))
    try:
        _chat(server)
        with attribute(feature="answers"):
            _chat(server)
    finally:
        instrumentor.uninstrument()
        monkeypatch.undo()
        _attribution.reload_defaults()
    first, second = sorted(telemetry.calls(), key=lambda s: s.start_time)
    assert _costspan_attributes(first) == {"costspan.team": "platform", "costspan.feature": "search"}
    assert _costspan_attributes(second) == {"costspan.team": "platform", "costspan.feature": "answers"}


def test_other_instrumentations_genai_spans_are_stamped_and_other_spans_are_not(instrumented):
    genai = instrumented.tracer_provider.get_tracer("openinference.instrumentation.openai")
    plain = instrumented.tracer_provider.get_tracer("my.app")
    with attribute(team="search"):
        genai.start_span("ChatCompletion", attributes={"openinference.span.kind": "LLM"}).end()
        plain.start_span("GET /health").end()
        plain.start_span("chat", attributes={"gen_ai.operation.name": "chat"}).end()
    by_name = {s.name: s for s in instrumented.finished()}
    assert by_name["ChatCompletion"].attributes["costspan.team"] == "search"
    assert by_name["chat"].attributes["costspan.team"] == "search"
    assert "costspan.team" not in by_name["GET /health"].attributes


def _chain(spans: list[ReadableSpan]) -> SpanBatch:
    rows = [
        Span(
            trace_id=f"{s.context.trace_id:032x}",
            span_id=f"{s.context.span_id:016x}",
            name=s.name,
            start_ns=s.start_time,
            end_ns=s.end_time,
            attributes=dict(s.attributes),
            resource=dict(s.resource.attributes),
            kind=s.kind.value + 1,
            scope_name=s.instrumentation_scope.name,
        )
        for s in spans
    ]
    return build_chain()(SpanBatch.from_spans(rows))


def test_record_is_priced_by_the_collector_including_usage_beyond_tokens(instrumented):
    with attribute(team="voice"):
        record(provider="openai", model="tts-1", operation="speech", usage={"input_characters": 2000})
        record(provider="openai", model="gpt-4o-mini", input_tokens=1000, output_tokens=100, duration_s=0.5)
    chat, speech = sorted(_chain(instrumented.calls()).llm_calls(), key=lambda c: c.request_model)
    assert speech.pricing_status == "priced"
    assert speech.cost_usd == Decimal("0.03")  # tts-1: $15 per million characters (OpenAI's price list)
    assert chat.pricing_status == "priced"
    assert chat.cost_usd > 0
    assert (speech.team, chat.team) == ("voice", "voice")
    assert chat.end_time_ns - chat.start_time_ns == 500_000_000


def test_record_retrieval_is_a_retrieval_span(instrumented):
    with attribute(feature="rag"):
        record_retrieval(chunks=8, context_tokens=2400, source="docs-index")
    (span,) = instrumented.calls()
    assert span.name == "retrieval docs-index"
    assert span.attributes["costspan.retrieval.chunks"] == 8
    (call,) = [c for c in _chain([span]).calls if c is not None]
    assert call.kind == "retrieval"
