"""Streams and failures: compressed bodies, streams cut short, HTTP errors, transport errors, and both HTTP
client libraries (httpx and httpx2) used directly."""

from __future__ import annotations

import asyncio
import socket

import anthropic
import httpx
import httpx2
import openai
import pytest

from costspan.instrumentation import CostspanInstrumentor
from tests.instrumentation.conftest import endpoints_of
from tests.instrumentation.test_sdks import (
    ANTHROPIC_CACHED,
    CHAT,
    anthropic_stream,
    openai_chat,
    openai_chat_stream,
)
from tests.support.provider_server import ProviderServer


def _instrument(telemetry, server):
    CostspanInstrumentor().instrument(
        tracer_provider=telemetry.tracer_provider, endpoints=endpoints_of(server)
    )


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_streams_are_read_and_the_application_sees_the_same(telemetry, encoding):
    with ProviderServer(content_encoding=encoding) as plain_server:
        plain = openai_chat_stream(plain_server) + anthropic_stream(plain_server) + openai_chat(plain_server)
        assert all(r.headers.get("accept-encoding", "").count(encoding) for r in plain_server.requests)
    with ProviderServer(content_encoding=encoding) as server:
        _instrument(telemetry, server)
        try:
            seen = openai_chat_stream(server) + anthropic_stream(server) + openai_chat(server)
        finally:
            CostspanInstrumentor().uninstrument()
        requests = server.requests
    assert seen == plain
    spans = sorted(telemetry.calls(), key=lambda s: s.start_time)
    assert len(spans) == len(requests) == 4
    for span, request in zip(spans, requests, strict=True):
        usage = request.usage
        expected = usage.get("completion_tokens", usage.get("output_tokens"))
        assert span.attributes["gen_ai.usage.output_tokens"] == expected
        assert span.attributes["gen_ai.response.model"] == request.model


def test_a_stream_closed_early_ends_its_span_and_says_so(instrumented, server):
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    first = next(iter(stream))
    stream.close()
    assert first.choices[0].delta.role == "assistant"
    (span,) = instrumented.calls()
    assert span.end_time is not None
    assert span.attributes["costspan.stream.cut_short"] is True
    assert span.attributes["gen_ai.response.id"] == first.id  # what it saw before the cut is kept


def test_an_anthropic_stream_closed_early_keeps_the_input_usage_it_saw(instrumented, server):
    client = anthropic.Anthropic(base_url=server.base_url, api_key="test", max_retries=0)
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=256, messages=ANTHROPIC_CACHED
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break
    (span,) = instrumented.calls()
    (request,) = server.requests
    assert span.attributes["costspan.stream.cut_short"] is True
    assert span.attributes["gen_ai.usage.cache_read.input_tokens"] == request.usage["cache_read_input_tokens"]


def test_http_errors_set_error_type(instrumented, server):
    client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages="not a list")  # type: ignore[arg-type]
    (span,) = instrumented.calls()
    assert span.attributes["error.type"] == "400"
    assert span.status.is_ok is False


def test_transport_errors_set_error_type_and_reach_the_application(telemetry):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    base = f"http://127.0.0.1:{port}/v1"
    CostspanInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, endpoints={base: "openai"})
    try:
        client = openai.OpenAI(base_url=base, api_key="test", max_retries=0)
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    finally:
        CostspanInstrumentor().uninstrument()
    (span,) = telemetry.calls()
    assert span.attributes["error.type"] == "httpx2.ConnectError"


def test_a_read_timeout_sets_error_type(telemetry):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        CostspanInstrumentor().instrument(
            tracer_provider=telemetry.tracer_provider, endpoints={base: "openai"}
        )
        try:
            client = openai.OpenAI(base_url=base, api_key="test", max_retries=0, timeout=0.2)
            with pytest.raises(openai.APITimeoutError):
                client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        finally:
            CostspanInstrumentor().uninstrument()
    (span,) = telemetry.calls()
    assert span.attributes["error.type"] == "httpx2.ReadTimeout"


@pytest.mark.parametrize("library", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_both_http_libraries_sync_and_async(instrumented, server, library):
    body = {
        "model": "gpt-4o-mini",
        "messages": CHAT,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = f"{server.openai_base_url}/chat/completions"
    with library.Client() as client:
        sync_text = client.post(url, json=body).text

    async def run() -> str:
        async with (
            library.AsyncClient() as client,
            client.stream("POST", url, json={**body, "stream": False}) as response,
        ):
            return (await response.aread()).decode()

    async_text = asyncio.run(run())
    assert sync_text.rstrip().endswith("data: [DONE]")
    assert '"chat.completion"' in async_text
    spans = sorted(instrumented.calls(), key=lambda s: s.start_time)
    assert [s.attributes["gen_ai.request.stream"] for s in spans] == [True, False]
    for span, request in zip(spans, server.requests, strict=True):
        assert span.attributes["gen_ai.usage.input_tokens"] == request.usage["prompt_tokens"]


def test_other_requests_pass_untraced(instrumented, server):
    with httpx2.Client() as client:
        assert client.get(f"{server.openai_base_url}/models").status_code == 404
        client.post(f"{server.base_url}/v1/messages/count_tokens", json={"model": "m", "messages": CHAT})
    assert instrumented.calls() == []


def test_a_response_dropped_unread_still_ends_its_span(instrumented, server):
    import gc

    client = httpx2.Client()
    request = client.build_request(
        "POST", f"{server.openai_base_url}/chat/completions", json={"model": "gpt-4o-mini", "messages": CHAT}
    )
    response = client.send(request, stream=True)
    assert instrumented.calls() == []
    del response
    gc.collect()
    (span,) = instrumented.calls()
    assert span.attributes["costspan.stream.cut_short"] is True
    client.close()
