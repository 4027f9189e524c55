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
        "http://localhost:8000/v1/chat/completions/chatcmpl-1/completions",
        "https://example.com/api/messages",  # Anthropic's API only at .../v1/messages
        "https://example.com/v1/messages/count_tokens",
        "https://example.com/v1/users",
        "http://10.0.0.7:8080/healthz",
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
    assert table.match("10.0.0.5", 9000, "/v1/embeddings").by_shape is False  # configured: trusted
    other_port = table.match("10.0.0.5", 9001, "/v1/embeddings")  # not configured: by path and shape
    assert (other_port.provider, other_port.by_shape) == ("openai-compatible", True)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # any host, by the path ending, behind whatever prefix a gateway adds; the provider, the default until
        # the model names one
        ("http://localhost:8000/v1/chat/completions", ("openai-compatible", "chat", "chat_completions")),
        ("http://127.0.0.1:4000/openai/v1/embeddings", ("openai-compatible", "embeddings", "embeddings")),
        ("https://llm.corp.example/api/v1/responses", ("openai-compatible", "chat", "responses")),
        ("https://llm.corp.example/v1/embeddings", ("openai-compatible", "embeddings", "embeddings")),
        ("https://llm.corp.example/v1/completions", ("openai-compatible", "text_completion", "completions")),
        ("http://10.1.2.3/anthropic/v1/messages", ("anthropic-compatible", "chat", "messages")),
        # a known provider's host, its other API: the host's provider
        (
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
            ("gcp.gemini", "chat", "chat_completions"),
        ),
        ("https://api.deepseek.com/anthropic/v1/messages", ("deepseek", "chat", "messages")),
        ("http://localhost:11434/v1/chat/completions", ("ollama", "chat", "chat_completions")),
    ],
)
def test_compatible_endpoints_by_path(url, expected):
    import httpx2

    parsed = httpx2.URL(url)
    found = EndpointTable().match(parsed.host, parsed.port, parsed.path)
    assert found is not None
    assert (found.provider, found.operation, found.api) == expected
    assert found.by_shape  # a call only when the body has the API's shape


@pytest.mark.parametrize(
    ("model", "wire", "provider"),
    [
        ("gpt-4o-mini", "openai", "openai"),
        ("o3-mini", "openai", "openai"),
        ("openai/gpt-4o", "openai", "openai"),  # LiteLLM's and OpenRouter's provider/model
        ("claude-haiku-4-5", "anthropic", "anthropic"),
        ("gemini-2.5-flash", "openai", "gcp.gemini"),
        ("mistral-small-latest", "openai", "mistral_ai"),
        ("deepseek-chat", "openai", "deepseek"),
        ("grok-4", "openai", "x_ai"),
        ("meta-llama/Llama-3.1-8B-Instruct", "openai", "openai-compatible"),  # open weights: no provider's
        ("llama3.2", "openai", "openai-compatible"),
        ("openai/gpt-oss-20b", "openai", "openai-compatible"),
        ("qwen3-coder", "anthropic", "anthropic-compatible"),
    ],
)
def test_provider_from_the_model_on_an_unknown_host(model, wire, provider):
    from costspan.instrumentation._endpoints import with_model_provider

    path = "/v1/chat/completions" if wire == "openai" else "/v1/messages"
    endpoint = EndpointTable().match("gateway.internal", 8080, path)
    assert endpoint is not None
    assert with_model_provider(endpoint, model).provider == provider


def test_the_host_names_the_provider_before_the_model():
    from costspan.instrumentation._endpoints import with_model_provider

    endpoint = EndpointTable().match("openrouter.ai", None, "/api/v1/chat/completions")
    assert with_model_provider(endpoint, "anthropic/claude-sonnet-4.5").provider == "openrouter"
    configured = EndpointTable({"http://gw:9000/v1": "openai"}).match("gw", 9000, "/v1/chat/completions")
    assert with_model_provider(configured, "claude-haiku-4-5").provider == "openai"
    # configured without a provider, on a private host: the model's provider, else self-hosted
    table = EndpointTable({"http://localhost:8000/v1": ""})
    local = table.match("localhost", 8000, "/v1/chat/completions")
    assert with_model_provider(local, "gpt-4o").provider == "openai"
    assert with_model_provider(local, "llama3.2").provider == "self-hosted"


@pytest.mark.parametrize(
    ("path", "body", "shaped"),
    [
        ("/v1/chat/completions", b'{"model":"m","messages":[{"role":"user","content":"hi"}]}', True),
        ("/v1/chat/completions", b'  {"messages": [], "model": "m"}', True),
        ("/v1/chat/completions", b'{"model":"m","text":"messages"}', False),  # a value, not the key
        ("/v1/chat/completions", b"model=m&messages=[]", False),  # a form, not JSON
        ("/v1/chat/completions", b'[{"model":"m","messages":[]}]', False),
        ("/v1/responses", b'{"model":"m","input":"hi"}', True),
        ("/v1/responses", b'{"model":"m","survey":7,"answers":[]}', False),
        ("/v1/embeddings", b'{"model":"m","input":["a"]}', True),
        ("/v1/completions", b'{"model":"m","prompt":"a"}', True),
        ("/v1/messages", b'{"model":"m","max_tokens":5,"messages":[]}', True),
        ("/v1/messages", b'{"model":"m","messages":[]}', False),  # Anthropic's API requires max_tokens
        ("/v1/messages", b'{"channel":"general","messages":["hi"],"max_tokens":1}', True),  # has_call_shape
    ],
)
def test_call_shape(path, body, shaped):
    from costspan.instrumentation._endpoints import has_call_shape

    endpoint = EndpointTable().match("app.internal", None, path)
    assert endpoint is not None
    assert has_call_shape(endpoint, body) is shaped
