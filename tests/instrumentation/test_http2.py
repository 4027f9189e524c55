"""HTTP/2: calls over an HTTP/2 connection are traced as over HTTP/1.1, and the application reads the same.

The real openai SDK on httpx2 clients that speak HTTP/2 (``http1=False, http2=True``: prior knowledge, in
clear text) against the provider stand-in over HTTP/2, where each stream event arrives in a DATA frame of
its own.
"""

from __future__ import annotations

import asyncio

import httpx2
import openai

from tests.instrumentation.conftest import Telemetry, instrumenting
from tests.support.h2_provider_server import H2ProviderServer

CHAT = [{"role": "user", "content": "Say hello."}]


def _calls(server: H2ProviderServer) -> list[str]:
    http_client = httpx2.Client(http1=False, http2=True)
    client = openai.OpenAI(
        base_url=server.openai_base_url, api_key="t", max_retries=0, http_client=http_client
    )
    with http_client:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)
        assert raw.http_response.http_version == "HTTP/2"
        plain = raw.parse().to_json()
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
        return [plain, *(chunk.to_json() for chunk in stream)]


async def _async_calls(server: H2ProviderServer) -> list[str]:
    async with httpx2.AsyncClient(http1=False, http2=True) as http_client:
        client = openai.AsyncOpenAI(
            base_url=server.openai_base_url, api_key="t", max_retries=0, http_client=http_client
        )
        plain = (await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)).to_json()
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
        return [plain, *[chunk.to_json() async for chunk in stream]]


def _check_spans(telemetry: Telemetry, server: H2ProviderServer) -> None:
    plain, streamed = sorted(telemetry.calls(), key=lambda s: s.attributes["gen_ai.request.stream"])
    requests = server.requests
    assert requests[1].body["stream_options"] == {"include_usage": True}  # asked for on HTTP/2 too
    for span, request in ((plain, requests[0]), (streamed, requests[1])):
        assert span.name == "chat gpt-4o-mini"
        assert span.attributes["gen_ai.response.model"] == request.model
        assert span.attributes["gen_ai.usage.input_tokens"] == request.usage["prompt_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == request.usage["completion_tokens"]
    assert streamed.attributes["gen_ai.response.time_to_first_chunk"] > 0
    assert "costspan.stream.cut_short" not in streamed.attributes


def test_sync_http2_calls_are_traced_and_read_the_same(telemetry):
    with H2ProviderServer() as server:
        bare = _calls(server)
    with H2ProviderServer() as server, instrumenting(telemetry, server):
        traced = _calls(server)
    assert traced == bare
    assert all('"usage"' not in chunk for chunk in traced[1:])
    _check_spans(telemetry, server)


def test_async_http2_calls_are_traced_and_read_the_same(telemetry):
    with H2ProviderServer() as server:
        bare = asyncio.run(_async_calls(server))
    with H2ProviderServer() as server, instrumenting(telemetry, server):
        traced = asyncio.run(_async_calls(server))
    assert traced == bare
    _check_spans(telemetry, server)
