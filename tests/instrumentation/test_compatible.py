"""OpenAI- and Anthropic-compatible servers with no configuration: the real SDKs pointed at the local stand-in
on 127.0.0.1 (no known provider's host) behind gateway-style paths, in JSON and server-sent events; the other
HTTP traffic of an application left alone, byte for byte; and each provider's usage extensions, read into
the span and from there by the collector's semconv reading and pricing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from costspan.instrumentation import CostspanInstrumentor
from costspan.pricing import load_engine
from costspan.semconv import to_call
from tests.instrumentation.conftest import Telemetry
from tests.support.provider_server import (
    CACHED_PREFIX_TOKENS,
    PERPLEXITY_CITATION_TOKENS,
    PERPLEXITY_SEARCH_QUERIES,
    REASONING_TOKENS,
    ProviderServer,
    openrouter_cost,
)

CACHED = "Use the cache, please."  # a user message with "cache" reads the stand-in's cached prefix


@contextmanager
def instrumenting(telemetry: Telemetry, endpoints: dict[str, str] | None = None) -> Iterator[None]:
    """costspan's instrumentor with no endpoint configured (or only ``endpoints``), for the block."""
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        endpoints=endpoints or {},
    )
    try:
        yield
    finally:
        instrumentor.uninstrument()


def _openai(base_url: str) -> Any:
    import openai

    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)


def _attrs(telemetry: Telemetry) -> list[dict[str, Any]]:
    return [dict(span.attributes or {}) for span in telemetry.calls()]


def _drain(stream: Any) -> list[Any]:
    return list(stream)


# -- recognised on any host, by path and shape --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1", "/openai/v1", "/api/v1", "/llm/gateway/v1"])
@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-4o-mini", "openai"), ("meta-llama/Llama-3.1-8B-Instruct", "openai-compatible")],
)
def test_openai_sdk_on_an_unknown_host(telemetry, server, prefix, model, provider):
    client = _openai(server.base_url + prefix)
    with instrumenting(telemetry):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": CACHED}])
        _drain(
            client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        client.responses.create(model=model, input="hello there")
        client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
        client.completions.create(model=model, prompt="Say hi")
    calls = server.requests
    spans = _attrs(telemetry)
    assert [s["gen_ai.operation.name"] for s in spans] == [
        "chat",
        "chat",
        "chat",
        "embeddings",
        "text_completion",
    ]
    assert [s["gen_ai.provider.name"] for s in spans] == [provider, provider, provider, "openai", provider]
    for span, call in zip(spans, calls, strict=True):
        assert call.path.startswith(prefix)
        assert span["server.address"] == "127.0.0.1"
        assert span["server.port"] == server.port
        usage = call.usage
        assert usage is not None
        assert span["gen_ai.usage.input_tokens"] == usage.get("prompt_tokens", usage.get("input_tokens"))
    assert spans[0]["gen_ai.usage.cache_read.input_tokens"] == CACHED_PREFIX_TOKENS
    assert spans[1]["gen_ai.request.stream"] is True
    assert (
        spans[1]["gen_ai.usage.output_tokens"] == calls[1].usage["completion_tokens"]
    )  # include_usage added


def test_openai_sdk_async_stream_on_an_unknown_host(telemetry, server):
    import asyncio

    import openai

    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=server.base_url + "/openai/v1", api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        async for _ in stream:
            pass
        await client.close()

    with instrumenting(telemetry):
        asyncio.run(run())
    (span,) = _attrs(telemetry)
    assert span["gen_ai.provider.name"] == "openai"
    assert span["gen_ai.usage.output_tokens"] == server.requests[0].usage["completion_tokens"]


@pytest.mark.parametrize(
    ("model", "provider"), [("claude-haiku-4-5", "anthropic"), ("qwen3-coder-30b", "anthropic-compatible")]
)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_sdk_on_an_unknown_host(telemetry, server, model, provider, stream):
    import anthropic

    client = anthropic.Anthropic(base_url=server.base_url + "/anthropic", api_key="sk-test", max_retries=0)
    with instrumenting(telemetry):
        message = {"role": "user", "content": CACHED}
        if stream:
            with client.messages.stream(model=model, max_tokens=200, messages=[message]) as events:
                events.until_done()
        else:
            client.messages.create(model=model, max_tokens=200, messages=[message])
    (call,) = server.requests
    assert call.path == "/anthropic/v1/messages"
    (span,) = _attrs(telemetry)
    usage = call.usage
    assert span["gen_ai.provider.name"] == provider
    assert span["gen_ai.usage.cache_read.input_tokens"] == CACHED_PREFIX_TOKENS
    # Anthropic's input_tokens leaves the cache out; the span's includes it
    assert span["gen_ai.usage.input_tokens"] == usage["input_tokens"] + CACHED_PREFIX_TOKENS
    assert span["gen_ai.usage.output_tokens"] == usage["output_tokens"]


# -- everything else: no span, and the bytes as they came ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content", "headers"),
    [
        # a chat application's own endpoints, on paths an LLM API also has
        ("POST", "/app/v1/messages", b'{"channel":"general","messages":["hi"],"text":"hello"}', {}),
        ("POST", "/app/api/v1/chat/completions", b'{"messages":[{"role":"user","content":"hi"}]}', {}),
        ("POST", "/app/v1/responses", b'{"survey":7,"answers":["yes"],"model":"form-2"}', {}),
        ("POST", "/app/v1/embeddings", b'{"model":"m"}', {}),
        # not JSON: a form, plain text, and a JSON array
        ("POST", "/app/v1/chat/completions", b"model=gpt-4o&messages=hi", {"content-type": "text/plain"}),
        ("POST", "/app/v1/completions", b"not json at all", {}),
        ("POST", "/app/v1/chat/completions", b'[{"model":"gpt-4o","messages":[]}]', {}),
        ("GET", "/app/v1/chat/completions", b"", {}),
        ("POST", "/v1/models", b'{"model":"gpt-4o"}', {}),
    ],
)
def test_other_requests_have_no_span_and_pass_unchanged(telemetry, server, method, path, content, headers):
    def send() -> httpx.Response:
        with httpx.Client(base_url=server.base_url) as client:
            return client.request(method, path, content=content, headers=headers)

    plain = send()
    with instrumenting(telemetry):
        traced = send()
    assert telemetry.calls() == []
    assert (traced.status_code, traced.content) == (plain.status_code, plain.content)
    assert _without_date(traced.headers) == _without_date(plain.headers)
    sent = [r for r in server.requests if r.path == path]
    assert len(sent) == 2 and sent[0].body == sent[1].body  # the request went as the application wrote it


def _without_date(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.multi_items() if k != "date"]


def test_a_call_on_an_unknown_host_passes_unchanged(telemetry, server):
    """The application reads an LLM call's JSON body as it came."""
    body = b'{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}'

    def send() -> bytes:
        with httpx.Client(base_url=server.base_url) as client:
            return client.post("/api/v1/chat/completions", content=body).content

    plain = send()
    with instrumenting(telemetry):
        traced = send()
    # the ids count up from one request to the next; everything else is equal
    assert traced.replace(b"cs000002", b"cs000001") == plain
    (span,) = _attrs(telemetry)
    assert span["gen_ai.provider.name"] == "openai-compatible"


# -- providers' usage extensions ----------------------------------------------------------------------------


def _usage_case(shape: str) -> tuple[str, str, dict[str, str] | None, dict[str, Any]]:
    """(model, base path, endpoints to configure, extra request members) of a shape's call."""
    return {
        "deepseek": ("deepseek-chat", "", None, {}),
        "openrouter": ("openai/gpt-4o-mini", "/api/v1", {"/api/v1": "openrouter"}, {}),
        "xai": ("grok-4", "/v1", None, {"extra_body": {"search_parameters": {"mode": "on"}}}),
        "groq": ("llama-3.3-70b-versatile", "/openai/v1", {"/openai/v1": "groq"}, {}),
        "mistral": ("mistral-small-latest", "/v1", None, {}),
        "together": ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "/v1", None, {}),
        "fireworks": ("accounts/fireworks/models/llama-v3p1-8b-instruct", "/inference/v1", None, {}),
        "perplexity": ("sonar-deep-research", "", None, {}),
    }[shape]


def _expected(shape: str, usage: dict[str, Any]) -> dict[str, Any]:
    """The span attributes a shape's usage must give."""
    prompt, completion = usage["prompt_tokens"], usage["completion_tokens"]
    expected: dict[str, Any] = {"gen_ai.usage.input_tokens": prompt, "gen_ai.usage.output_tokens": completion}
    if shape in ("deepseek", "openrouter", "xai", "fireworks"):
        expected["gen_ai.usage.cache_read.input_tokens"] = CACHED_PREFIX_TOKENS
    if shape == "openrouter":
        expected["gen_ai.usage.reasoning.output_tokens"] = usage["completion_tokens_details"][
            "reasoning_tokens"
        ]
        expected["gen_ai.usage.cost.amount"] = float(openrouter_cost(usage))
        expected["gen_ai.usage.cost.currency"] = "USD"
        expected["gen_ai.usage.cost.source"] = "provider"
    if shape == "xai":
        expected["gen_ai.usage.reasoning.output_tokens"] = 0
        expected["x_ai.usage.num_sources_used"] = 3
    if shape == "groq":
        expected.update({f"groq.usage.{k}": usage[k] for k in ("queue_time", "prompt_time", "total_time")})
    if shape == "perplexity":
        # completion_tokens leaves out reasoning and citations: the span's output has them
        expected["gen_ai.usage.output_tokens"] = completion + REASONING_TOKENS + PERPLEXITY_CITATION_TOKENS
        expected["gen_ai.usage.reasoning.output_tokens"] = REASONING_TOKENS
        expected["costspan.usage.output_citation_tokens"] = PERPLEXITY_CITATION_TOKENS
        expected["costspan.usage.web_searches"] = PERPLEXITY_SEARCH_QUERIES
        expected["gen_ai.usage.cost.amount"] = usage["cost"]["total_cost"]
        expected["gen_ai.usage.cost.source"] = "provider"
    return expected


SHAPES = ["deepseek", "openrouter", "xai", "groq", "mistral", "together", "fireworks", "perplexity"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("shape", SHAPES)
def test_provider_usage_shapes(telemetry, shape, stream):
    model, path, endpoints, extra = _usage_case(shape)
    with ProviderServer(usage_shape=shape) as server:
        configured = {server.base_url + k: v for k, v in (endpoints or {}).items()}
        client = _openai(server.base_url + path)
        with instrumenting(telemetry, configured):
            request = {"model": model, "messages": [{"role": "user", "content": CACHED}], **extra}
            if stream:
                chunks = _drain(client.chat.completions.create(stream=True, **request))
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            else:
                client.chat.completions.create(**request)
        (call,) = server.requests
    assert call.usage_sent  # the server sent usage the span could be made of
    (span,) = _attrs(telemetry)
    for key, value in _expected(shape, dict(call.usage)).items():
        assert span.get(key) == value, (key, span)


def test_provider_streams_left_as_they_are(telemetry):
    """OpenRouter and Groq report a stream's usage unasked: costspan does not add include_usage to their
    requests, and the application reads the stream the provider sent."""
    for shape, path, provider in (("openrouter", "/api/v1", "openrouter"), ("groq", "/openai/v1", "groq")):
        with ProviderServer(usage_shape=shape) as server:
            client = _openai(server.base_url + path)
            with instrumenting(telemetry, {server.base_url + path: provider}):
                chunks = _drain(
                    client.chat.completions.create(
                        model="llama-3.3-70b-versatile",
                        messages=[{"role": "user", "content": "hi"}],
                        stream=True,
                    )
                )
            (call,) = server.requests
        assert "stream_options" not in call.body
        if shape == "openrouter":
            assert chunks[-1].choices == [] and chunks[-1].usage is not None  # the usage event, kept
        else:
            assert chunks[-1].model_extra["x_groq"]["usage"]["prompt_tokens"] == call.usage["prompt_tokens"]


# -- the collector's reading of such spans ------------------------------------------------------------------


def _canonical(telemetry: Telemetry) -> Any:
    (span,) = telemetry.calls()
    context = span.get_span_context()
    return to_call(
        format(context.trace_id, "032x"),
        format(context.span_id, "016x"),
        None,
        span.start_time or 0,
        span.end_time or 0,
        span.instrumentation_scope.name,
        dict(span.attributes or {}),
        {"service.name": "gateway-app"},
    )


@pytest.mark.parametrize("shape", ["openrouter", "perplexity", "deepseek"])
def test_collector_reads_and_prices_provider_usage(telemetry, shape):
    model, path, endpoints, extra = _usage_case(shape)
    with ProviderServer(usage_shape=shape) as server:
        configured = {server.base_url + k: v for k, v in (endpoints or {}).items()}
        with instrumenting(telemetry, configured):
            _openai(server.base_url + path).chat.completions.create(
                model=model, messages=[{"role": "user", "content": CACHED}], **extra
            )
        (sent,) = server.requests
    usage = dict(sent.usage)
    call = _canonical(telemetry)
    assert call is not None
    assert call.input_tokens == usage["prompt_tokens"]
    assert call.response_model == sent.model
    engine = load_engine()
    priced = engine.price(
        call.response_model or call.request_model,
        call,
        provider=call.provider,
        service_tier=call.service_tier,
        provider_cost=call.provider_cost,
    )
    if shape == "openrouter":
        assert call.provider == "openrouter"
        assert call.cache_read_tokens == CACHED_PREFIX_TOKENS
        assert call.provider_cost == openrouter_cost(usage)  # exact: the amount the provider billed
        assert (priced.cost_usd, priced.source) == (openrouter_cost(usage), "provider")
    elif shape == "perplexity":
        assert call.provider == "perplexity"
        assert (
            call.output_tokens == usage["completion_tokens"] + REASONING_TOKENS + PERPLEXITY_CITATION_TOKENS
        )
        assert call.reasoning_tokens == REASONING_TOKENS
        assert call.other_usage == {
            "output_citation_tokens": PERPLEXITY_CITATION_TOKENS,
            "web_searches": PERPLEXITY_SEARCH_QUERIES,
        }
        assert priced.cost_usd == Decimal(repr(usage["cost"]["total_cost"]))
        assert priced.source == "provider"
    else:
        # DeepSeek's cache hits, priced locally at the catalog's cache-read rate
        assert (call.provider, call.cache_read_tokens) == ("deepseek", CACHED_PREFIX_TOKENS)
        assert priced.status == "priced" and priced.source == "local"
        assert priced.cost_usd is not None and priced.cost_usd > 0
        assert call.local_server  # 127.0.0.1: a gateway in front of the provider


# -- usage members, one object at a time --------------------------------------------------------------------


def _read(usage: dict[str, Any]) -> Any:
    from costspan.instrumentation import EndpointTable
    from costspan.instrumentation._call import Call
    from costspan.instrumentation._usage import read_openai

    endpoint = EndpointTable().match("gateway.internal", None, "/v1/chat/completions")
    call = Call(endpoint, "m", False, "gateway.internal", None)
    read_openai(call, {"id": "x", "model": "m", "usage": usage})
    return call


def test_openrouter_byok_cost_adds_the_upstream_charge():
    # with the application's own provider key, `cost` is OpenRouter's fee and the provider's charge is
    # cost_details.upstream_inference_cost (https://openrouter.ai/docs/use-cases/usage-accounting)
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost": 0.0001}
    assert _read(usage).provider_cost == Decimal("0.0001")
    byok = {**usage, "is_byok": True, "cost_details": {"upstream_inference_cost": 0.0019}}
    assert _read(byok).provider_cost == Decimal("0.0020")
    not_byok = {**usage, "is_byok": False, "cost_details": {"upstream_inference_cost": 0.0019}}
    assert _read(not_byok).provider_cost == Decimal("0.0001")


@pytest.mark.parametrize("cost", [-1.0, True, "0.1", float("nan"), None, {"total_cost": "x"}])
def test_a_cost_that_is_no_amount_is_ignored(cost):
    call = _read({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "cost": cost})
    assert call.provider_cost is None
    assert (call.input_tokens, call.output_tokens) == (10, 2)


def test_reasoning_left_out_of_the_output_is_added():
    # xAI's grok-3-mini counted reasoning apart from completion_tokens; later models count it in
    apart = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert _read({**apart, "completion_tokens_details": {"reasoning_tokens": 300}}).output_tokens == 305
    within = {"reasoning_tokens": 3, "text_tokens": 2}  # text + reasoning = completion
    assert _read({**apart, "completion_tokens_details": within}).output_tokens == 5
    # a part no larger than its whole: taken as counted in (text_tokens does not say, see _usage)
    modality = {"reasoning_tokens": 3, "text_tokens": 5}
    assert _read({**apart, "completion_tokens_details": modality}).output_tokens == 5


def test_openai_usage_has_no_provider_extension():
    call = _read(
        {
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "total_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    )
    assert (call.provider_cost, call.provider_attributes, call.extra) == (None, None, None)
    assert (call.input_tokens, call.output_tokens, call.cache_read_tokens) == (10, 2, 4)


def test_mistral_audio_seconds():
    call = _read(
        {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "prompt_audio_seconds": 42}
    )
    assert call.extra == {"input_audio_seconds": 42}


def test_perplexity_agent_api_cost():
    # the Responses format of Perplexity's Agent API: usage.cost is an object with total_cost in USD
    usage = {
        "input_tokens": 120,
        "output_tokens": 40,
        "total_tokens": 160,
        "cost": {"currency": "USD", "input_cost": 0.0003, "output_cost": 0.001, "total_cost": 0.0013},
    }
    call = _read(usage)
    assert (call.input_tokens, call.output_tokens) == (120, 40)
    assert call.provider_cost == Decimal("0.0013")
