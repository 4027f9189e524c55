"""The provider a model's name says it is: the one rule for calls to servers that name none."""

from __future__ import annotations

import pytest

from costspan.semconv import provider_for_model


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("gpt-4o-mini", "openai"),
        ("GPT-4.1", "openai"),
        ("o1", "openai"),
        ("o3-mini", "openai"),
        ("o4-mini-2025-04-16", "openai"),
        ("text-embedding-3-small", "openai"),
        ("tts-1-hd", "openai"),
        ("claude-haiku-4-5", "anthropic"),
        ("gemini-2.5-flash", "gcp.gemini"),
        ("mistral-large-latest", "mistral_ai"),
        ("mixtral-8x7b-32768", "mistral_ai"),
        ("codestral-latest", "mistral_ai"),
        ("deepseek-reasoner", "deepseek"),
        ("grok-4", "x_ai"),
        ("command-r-plus", "cohere"),
        ("sonar-pro", "perplexity"),
        # a gateway's provider/model: the prefix names the provider
        ("openai/gpt-4o", "openai"),
        ("anthropic/claude-sonnet-4.5", "anthropic"),
        ("x-ai/grok-4", "x_ai"),
        ("gemini/gemini-2.5-pro", "gcp.gemini"),
        ("groq/llama-3.3-70b-versatile", "groq"),
        # open weights, whoever serves them
        ("llama3.2", None),
        ("meta-llama/Llama-3.1-8B-Instruct", None),
        ("Qwen/Qwen2.5-7B-Instruct", None),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", None),
        ("google/gemma-2-9b-it", None),
        ("openai/gpt-oss-20b", None),
        ("gpt-oss-120b", None),
        ("omni", None),  # not o1 / o3 / o4
        ("o10-preview", None),
        ("", None),
    ],
)
def test_provider_for_model(model, provider):
    assert provider_for_model(model) == provider
