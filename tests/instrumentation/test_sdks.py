"""The real openai and anthropic SDKs, sync and async, streaming and not, against the local provider server:
the application reads byte-for-byte what it reads without costspan, and every call's span carries the usage
the server reported, converted to the canonical arithmetic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from costspan.instrumentation import CostspanInstrumentor
from costspan.instrumentation._instrumentor import _processor_of
from tests.instrumentation.conftest import endpoints_of, instrumenting
from tests.support.provider_server import ProviderServer, RecordedRequest

CHAT = [{"role": "user", "content": "What does the cache hold for invoice INV-0042?"}]
HOUR = {"type": "ephemeral", "ttl": "1h"}
ANTHROPIC_CACHED = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "The long policy text, kept for an hour.", "cache_control": HOUR},
            {"type": "text", "text": "The shorter notes.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Summarise both, from the cache."},
        ],
    }
]


def _openai(server: ProviderServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)


def _async_openai(server: ProviderServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)


def _anthropic(server: ProviderServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.base_url, api_key="test", max_retries=0)


def _async_anthropic(server: ProviderServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test", max_retries=0)


def openai_chat(server: ProviderServer) -> list[str]:
    client = _openai(server)
    return [
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT).to_json(),
        client.chat.completions.create(model="o4-mini", messages=CHAT, service_tier="flex").to_json(),
    ]


def openai_chat_stream(server: ProviderServer) -> list[str]:
    stream = _openai(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    return [chunk.to_json() for chunk in stream]


def openai_chat_stream_with_usage(server: ProviderServer) -> list[str]:
    stream = _openai(server).chat.completions.create(
        model="gpt-4o-mini", messages=CHAT, stream=True, stream_options={"include_usage": True}
    )
    return [chunk.to_json() for chunk in stream]


def openai_chat_raw_stream(server: ProviderServer) -> list[str]:
    """The bytes themselves, as an application reading the raw response sees them."""
    client = _openai(server)
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=CHAT, stream=True
    ) as response:
        return [b"".join(response.iter_bytes()).decode()]


def openai_async(server: ProviderServer) -> list[str]:
    async def run() -> list[str]:
        client = _async_openai(server)
        whole = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
        return [whole.to_json()] + [chunk.to_json() async for chunk in stream]

    return asyncio.run(run())


def openai_responses(server: ProviderServer) -> list[str]:
    client = _openai(server)
    whole = client.responses.create(model="o4-mini", input="Summarise the cache policy.")
    stream = client.responses.create(model="gpt-4o-mini", input="Summarise.", stream=True)
    return [whole.to_json()] + [event.to_json() for event in stream]


def openai_embeddings(server: ProviderServer) -> list[str]:
    client = _openai(server)
    return [client.embeddings.create(model="text-embedding-3-small", input=["one", "two words"]).to_json()]


def anthropic_messages(server: ProviderServer) -> list[str]:
    client = _anthropic(server)
    whole = client.messages.create(model="claude-opus-4-1", max_tokens=256, messages=ANTHROPIC_CACHED)
    counted = client.messages.count_tokens(model="claude-opus-4-1", messages=CHAT)  # not a billed call
    return [whole.to_json(), counted.to_json()]


def anthropic_stream(server: ProviderServer) -> list[str]:
    client = _anthropic(server)
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=256, messages=ANTHROPIC_CACHED
    ) as stream:
        events = [event.to_json() for event in stream]
    return events


def anthropic_async(server: ProviderServer) -> list[str]:
    async def run() -> list[str]:
        client = _async_anthropic(server)
        whole = await client.messages.create(model="claude-opus-4-1", max_tokens=8, messages=CHAT)
        stream = await client.messages.create(
            model="claude-opus-4-1", max_tokens=256, messages=ANTHROPIC_CACHED, stream=True
        )
        return [whole.to_json()] + [event.to_json() async for event in stream]

    return asyncio.run(run())


SCENARIOS: dict[str, Callable[[ProviderServer], list[str]]] = {
    f.__name__: f
    for f in (
        openai_chat,
        openai_chat_stream,
        openai_chat_stream_with_usage,
        openai_chat_raw_stream,
        openai_async,
        openai_responses,
        openai_embeddings,
        anthropic_messages,
        anthropic_stream,
        anthropic_async,
    )
}


def canonical_usage(request: RecordedRequest) -> dict[str, Any]:
    """The usage the server reported, as the span's attributes should say it."""
    usage = dict(request.usage or {})
    if request.path == "/v1/messages":
        read, written = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        split = usage["cache_creation"]
        return {
            "gen_ai.usage.input_tokens": usage["input_tokens"] + read + written,
            "gen_ai.usage.output_tokens": usage["output_tokens"],
            "gen_ai.usage.cache_read.input_tokens": read,
            "gen_ai.usage.cache_creation.input_tokens": written,
            "anthropic.usage.cache_creation.ephemeral_5m_input_tokens": split["ephemeral_5m_input_tokens"],
            "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": split["ephemeral_1h_input_tokens"],
        }
    if request.path == "/v1/embeddings":
        return {"gen_ai.usage.input_tokens": usage["prompt_tokens"]}
    if request.path == "/v1/responses":
        return {
            "gen_ai.usage.input_tokens": usage["input_tokens"],
            "gen_ai.usage.output_tokens": usage["output_tokens"],
            "gen_ai.usage.cache_read.input_tokens": usage["input_tokens_details"]["cached_tokens"],
            "gen_ai.usage.reasoning.output_tokens": usage["output_tokens_details"]["reasoning_tokens"],
        }
    return {
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "gen_ai.usage.cache_read.input_tokens": usage["prompt_tokens_details"]["cached_tokens"],
        "gen_ai.usage.reasoning.output_tokens": usage["completion_tokens_details"]["reasoning_tokens"],
    }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_application_sees_the_same_bytes_and_every_call_is_a_span_with_its_usage(name, telemetry):
    scenario = SCENARIOS[name]
    with ProviderServer() as plain_server:
        plain = scenario(plain_server)
    with ProviderServer() as server, instrumenting(telemetry, server):
        seen = scenario(server)
        requests = [r for r in server.requests if not r.path.endswith("/count_tokens")]
    assert seen == plain
    spans = sorted(telemetry.calls(), key=lambda s: s.start_time)
    assert len(spans) == len(requests) > 0
    for span, request in zip(spans, requests, strict=True):
        attributes = dict(span.attributes)
        assert span.kind is SpanKind.CLIENT
        assert span.name == f"{attributes['gen_ai.operation.name']} {request.body['model']}"
        assert attributes["gen_ai.request.model"] == request.body["model"]
        assert attributes["gen_ai.response.model"] == request.model
        assert attributes["gen_ai.provider.name"] == ("anthropic" if "messages" in request.path else "openai")
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["gen_ai.request.stream"] is bool(request.body.get("stream"))
        for key, value in canonical_usage(request).items():
            assert attributes.get(key) == value, (key, attributes)
        if request.body.get("stream"):
            assert attributes["gen_ai.response.time_to_first_chunk"] > 0
            assert "costspan.stream.cut_short" not in attributes
        assert not any(
            key.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.prompt")) for key in attributes
        )


def test_a_stream_without_include_usage_is_asked_for_it_and_the_usage_chunk_is_removed(telemetry):
    with ProviderServer() as server, instrumenting(telemetry, server):
        chunks = openai_chat_stream(server)
        (request,) = server.requests
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.usage_sent
    assert all('"usage"' not in chunk for chunk in chunks)
    (span,) = telemetry.calls()
    assert span.attributes["costspan.stream.usage_requested"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == request.usage["completion_tokens"]


def test_a_long_prompt_is_read_for_model_and_stream_and_sent_whole(telemetry):
    # a RAG prompt of half a megabyte: model and stream come after it, as the SDK writes them
    long_prompt = [{"role": "user", "content": "Summarise: " + "lorem ipsum dolor sit amet " * 20_000}]
    with ProviderServer() as server, instrumenting(telemetry, server):
        stream = _openai(server).chat.completions.create(
            model="gpt-4o-mini", messages=long_prompt, stream=True
        )
        chunks = [chunk.to_json() for chunk in stream]
        (request,) = server.requests
    assert request.body["messages"] == long_prompt
    assert request.body["stream_options"] == {"include_usage": True}
    assert all('"usage"' not in chunk for chunk in chunks)
    (span,) = telemetry.calls()
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.usage.input_tokens"] == request.usage["prompt_tokens"]


def test_an_application_that_asked_for_usage_keeps_its_usage_chunk(telemetry):
    with ProviderServer() as server, instrumenting(telemetry, server):
        chunks = openai_chat_stream_with_usage(server)
    assert '"prompt_tokens"' in chunks[-1]
    (span,) = telemetry.calls()
    assert "costspan.stream.usage_requested" not in span.attributes


def test_switching_usage_injection_off_leaves_the_request_alone(telemetry, server):
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, endpoints=endpoints_of(server), inject_stream_usage=False
    )
    try:
        openai_chat_stream(server)
    finally:
        instrumentor.uninstrument()
    (request,) = server.requests
    assert "stream_options" not in request.body
    (span,) = telemetry.calls()
    assert "gen_ai.usage.output_tokens" not in span.attributes  # no usage on the wire, none invented
    assert span.attributes["gen_ai.response.model"] == request.model


def test_uninstrument_stops_tracing(telemetry, server):
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, endpoints=endpoints_of(server))
    instrumentor.uninstrument()
    openai_chat(server)
    assert telemetry.calls() == []


def test_client_metrics_use_the_advised_buckets(instrumented, server):
    openai_chat(server)
    anthropic_stream(server)
    data = instrumented.metrics.get_metrics_data()
    metrics = {
        m.name: m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        if sm.scope.name == "costspan.instrumentation"
        for m in sm.metrics
    }
    # the instrument that records the queue at collection observes nothing of its own (and the failures
    # counter has points only once a failure was swallowed in this process)
    metrics.pop("costspan.instrumentation.failures", None)
    assert set(metrics) == {"gen_ai.client.token.usage", "gen_ai.client.operation.duration"}
    tokens = metrics["gen_ai.client.token.usage"]
    duration = metrics["gen_ai.client.operation.duration"]
    assert tokens.unit == "{token}"
    assert duration.unit == "s"
    token_points = tokens.data.data_points
    assert list(token_points[0].explicit_bounds)[:3] == [1, 4, 16]
    assert list(token_points[0].explicit_bounds)[-1] == 67108864
    assert list(duration.data.data_points[0].explicit_bounds)[-1] == 81.92
    assert sum(p.count for p in duration.data.data_points) == 3
    by_type = {}
    for point in token_points:
        key = (point.attributes["gen_ai.token.type"], point.attributes["gen_ai.provider.name"])
        by_type[key] = by_type.get(key, 0) + point.sum
    spans = instrumented.calls()
    for token_type in ("input", "output"):
        for provider in ("openai", "anthropic"):
            expected = sum(
                s.attributes[f"gen_ai.usage.{token_type}_tokens"]
                for s in spans
                if s.attributes["gen_ai.provider.name"] == provider
            )
            assert by_type[(token_type, provider)] == expected


def test_tracer_provider_argument_is_used_not_the_global_one(instrumented, server):
    openai_chat(server)
    assert len(instrumented.calls()) == 2
    assert isinstance(instrumented.tracer_provider, TracerProvider)


def test_instrumenting_again_adds_no_second_processor_or_instrument(telemetry, server, caplog):
    provider = MeterProvider(metric_readers=[telemetry.metrics])
    instrumentor = CostspanInstrumentor()
    for _ in range(5):
        instrumentor.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=provider, endpoints=endpoints_of(server)
        )
        instrumentor.uninstrument()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=provider, endpoints=endpoints_of(server)
    )
    try:
        openai_chat(server)
    finally:
        instrumentor.uninstrument()
    processors = telemetry.tracer_provider._active_span_processor._span_processors
    assert sum(type(p).__name__ == "AttributionSpanProcessor" for p in processors) == 1
    assert "already" not in caplog.text  # the SDK warns of an instrument created twice
    assert len(telemetry.calls()) == 2  # two calls, each traced once
    data = telemetry.metrics.get_metrics_data()
    durations = [
        point.count
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "gen_ai.client.operation.duration"
        for point in m.data.data_points
    ]
    assert sum(durations) == 2


def test_a_provider_that_cannot_be_weakly_referenced_still_gets_the_attribution_processor():
    class Provider:  # __slots__ without __weakref__: no weak reference can be made to it
        __slots__ = ("processors",)

        def __init__(self) -> None:
            self.processors: list[Any] = []

        def add_span_processor(self, processor: Any) -> None:
            self.processors.append(processor)

    provider = Provider()
    _processor_of(provider)
    assert [type(p).__name__ for p in provider.processors] == ["AttributionSpanProcessor"]
