"""The same through LangChain: ChatOpenAI's calls (the openai SDK, over httpx2) are traced with their usage,
and LangChain's results are the same with and without costspan."""

from __future__ import annotations

import langchain_openai

from tests.instrumentation.conftest import instrumenting
from tests.support.provider_server import ProviderServer


def _chain_run(server: ProviderServer) -> list[str]:
    model = langchain_openai.ChatOpenAI(
        model="gpt-4o-mini", base_url=server.openai_base_url, api_key="test", max_retries=0
    )
    whole = model.invoke("Which invoices are overdue?")
    pieces = list(model.stream("Which invoices are overdue?"))
    streamed = pieces[0]
    for piece in pieces[1:]:
        streamed = streamed + piece
    return [
        whole.content,
        repr(whole.usage_metadata),
        repr(whole.response_metadata),
        streamed.content,
        repr(streamed.usage_metadata),
    ]


def test_langchain_chat_openai(telemetry):
    with ProviderServer() as plain_server:
        plain = _chain_run(plain_server)
    with ProviderServer() as server, instrumenting(telemetry, server):
        seen = _chain_run(server)
        requests = server.requests
    assert seen == plain
    spans = sorted(telemetry.calls(), key=lambda s: s.start_time)
    assert len(spans) == len(requests) == 2
    for span, request in zip(spans, requests, strict=True):
        assert span.attributes["gen_ai.usage.input_tokens"] == request.usage["prompt_tokens"]
        assert span.attributes["gen_ai.usage.output_tokens"] == request.usage["completion_tokens"]
