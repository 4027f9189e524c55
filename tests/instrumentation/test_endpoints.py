"""Which requests are LLM calls, by host and path."""

from __future__ import annotations

import pytest

from costspan.instrumentation import EndpointTable


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.openai.com/v1/chat/completions", ("openai", "chat", "chat_completions", None)),
        ("https://api.openai.com/v1/responses", ("openai", "chat", "responses", None)),
        ("https://api.openai.com/v1/embeddings", ("openai", "embeddings", "embeddings", None)),
        ("https://api.openai.com/v1/images/generations", ("openai", "image_generation", "images", None)),
        ("https://api.openai.com/v1/audio/speech", ("openai", "speech", "speech", None)),
        (
            "https://api.openai.com/v1/audio/transcriptions",
            ("openai", "transcription", "transcriptions", None),
        ),
        (
            "https://x.openai.azure.com/openai/deployments/gpt4o/chat/completions",
            ("azure.ai.openai", "chat", "chat_completions", None),
        ),
        ("https://openrouter.ai/api/v1/chat/completions", ("openrouter", "chat", "chat_completions", None)),
        ("https://api.groq.com/openai/v1/chat/completions", ("groq", "chat", "chat_completions", None)),
        ("https://api.together.xyz/v1/chat/completions", ("together", "chat", "chat_completions", None)),
        (
            "https://api.fireworks.ai/inference/v1/chat/completions",
            ("fireworks", "chat", "chat_completions", None),
        ),
        ("https://api.deepseek.com/chat/completions", ("deepseek", "chat", "chat_completions", None)),
        ("https://api.x.ai/v1/chat/completions", ("x_ai", "chat", "chat_completions", None)),
        ("https://api.mistral.ai/v1/chat/completions", ("mistral_ai", "chat", "chat_completions", None)),
        ("https://api.perplexity.ai/chat/completions", ("perplexity", "chat", "chat_completions", None)),
        ("https://api.anthropic.com/v1/messages", ("anthropic", "chat", "messages", None)),
        (
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            ("gcp.gemini", "generate_content", "streamGenerateContent", "gemini-2.5-flash"),
        ),
        (
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku%3A0/converse",
            ("aws.bedrock", "chat", "converse", "anthropic.claude-3-haiku:0"),
        ),
        ("http://localhost:11434/api/chat", ("ollama", "chat", "chat", None)),
        ("http://localhost:11434/api/embed", ("ollama", "embeddings", "embed", None)),
    ],
)
def test_known_apis(url, expected):
    import httpx2

    parsed = httpx2.URL(url)
    found = EndpointTable().match(parsed.host, parsed.port, parsed.path)
    assert found is not None
    assert (found.provider, found.operation, found.api, found.model) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://api.anthropic.com/v1/messages/count_tokens",  # not billed
        "https://api.anthropic.com/v1/messages/batches",
        "https://api.openai.com/v1/models",
        "https://api.openai.com/v1/files",
        "https://api.openai.com/v1/chat/completions/chatcmpl-1/messages",
        "http://localhost:8000/v1/chat/completions",  # a local server is an LLM API only when configured
        "https://example.com/v1/chat/completions",
    ],
)
def test_other_requests_are_not_calls(url):
    import httpx2

    parsed = httpx2.URL(url)
    assert EndpointTable().match(parsed.host, parsed.port, parsed.path) is None


def test_configured_base_urls_from_the_environment(monkeypatch):
    monkeypatch.setenv(
        "COSTSPAN_LLM_ENDPOINTS", "http://localhost:8000/v1, anthropic=http://gw.internal/anthropic"
    )
    table = EndpointTable.from_env({"http://10.0.0.5:9000/v1": "openai"})
    vllm = table.match("localhost", 8000, "/v1/chat/completions")
    assert vllm is not None
    assert vllm.provider == "self-hosted"
    gateway = table.match("gw.internal", None, "/anthropic/v1/messages")
    assert gateway is not None
    assert (gateway.provider, gateway.api) == ("anthropic", "messages")
    assert table.match("10.0.0.5", 9000, "/v1/embeddings").provider == "openai"
    assert table.match("10.0.0.5", 9001, "/v1/embeddings") is None
