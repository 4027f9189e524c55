"""Provider names: every spelling instrumentations use, reduced to one; and providers known by host.

The canonical names are the OpenTelemetry GenAI ``gen_ai.provider.name`` values (1.37+) where the
convention has one, and a lower-case name otherwise (``openrouter``, ``together``, ``ollama``). A call to a
server on this machine or a private network is ``self-hosted``.

A call to a server that is no known provider's (a gateway, vLLM, LM Studio) is named by its model where the
model's name says whose it is (:func:`provider_for_model`), else ``openai-compatible`` or
``anthropic-compatible`` by the API it speaks.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

SELF_HOSTED: Final = "self-hosted"
OPENAI_COMPATIBLE: Final = "openai-compatible"  # a server of the OpenAI API whose model names no provider
ANTHROPIC_COMPATIBLE: Final = "anthropic-compatible"  # the same, of Anthropic's Messages API

# Old and dialect spellings -> canonical. Keys are lower-case; lookups lower-case their input first.
_ALIASES: Final = {
    # OpenTelemetry up to 1.36
    "az.ai.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "xai": "x_ai",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google": "gcp.gen_ai",
    "bedrock": "aws.bedrock",
    "aws_bedrock": "aws.bedrock",
    "aws": "aws.bedrock",  # OpenInference's llm.provider for Amazon Bedrock
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "watsonx": "ibm.watsonx.ai",
    "together_ai": "together",
    "togetherai": "together",
    "fireworks_ai": "fireworks",
    "fireworks-ai": "fireworks",
    # OpenLLMetry writes capitalised names ("OpenAI", "Anthropic", "Azure"); lower-casing covers most
    "azureopenai": "azure.ai.openai",
    "google_genai": "gcp.gen_ai",
    "vertexai.generative_models": "gcp.vertex_ai",
    "x-ai": "x_ai",  # OpenRouter's model prefix
}

# Hosts of providers' APIs -> canonical provider. Suffix entries start with ".".
_HOSTS: Final = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x_ai",
    "api.mistral.ai": "mistral_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
}
_HOST_SUFFIXES: Final = (
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".models.ai.azure.com", "azure.ai.inference"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
)


# The AI SDK (Vercel) names a model's provider by its package and API ("openai.chat", "openai.responses",
# "anthropic.messages", "google.vertex.chat"): the longest known prefix names the provider, else the first
# segment read as any other provider name.
_AI_SDK_PREFIXES: Final = (
    ("google.vertex", "gcp.vertex_ai"),
    ("vertex", "gcp.vertex_ai"),
    ("google.generative-ai", "gcp.gemini"),
    ("google", "gcp.gemini"),
    ("amazon-bedrock", "aws.bedrock"),
    ("azure-openai", "azure.ai.openai"),
    ("azure", "azure.ai.openai"),
    ("mistral", "mistral_ai"),
    ("xai", "x_ai"),
    ("togetherai", "together"),
)


# The Vercel AI Gateway routes to the provider the model id names ("openai/gpt-4o"): no provider of its own.
_AI_SDK_ROUTERS: Final = frozenset({"gateway"})


def ai_sdk_provider(value: object) -> str | None:
    """The canonical provider of an AI SDK ``ai.model.provider`` value such as ``openai.chat``."""
    if not isinstance(value, str) or not value:
        return None
    return _ai_sdk_provider(value)


@lru_cache(maxsize=1024)
def _ai_sdk_provider(value: str) -> str | None:
    lowered = value.strip().lower()
    if lowered.split(".", 1)[0] in _AI_SDK_ROUTERS:
        return None
    for prefix, provider in _AI_SDK_PREFIXES:
        if lowered == prefix or lowered.startswith(prefix + "."):
            return provider
    return _canonical(lowered.split(".", 1)[0])


def canonical_provider(value: object) -> str | None:
    """The canonical name for a provider value as an instrumentation wrote it."""
    if not isinstance(value, str) or not value:
        return None
    return _canonical(value)


@lru_cache(maxsize=4096)
def _canonical(value: str) -> str:
    lowered = value.strip().lower()
    return _ALIASES.get(lowered, lowered)


@lru_cache(maxsize=4096)
def provider_for_host(host: str) -> str | None:
    """The provider whose API is served at ``host``; ``self-hosted`` for this machine or a private network."""
    host = host.strip().lower().rstrip(".")
    if not host:
        return None
    if host in _HOSTS:
        return _HOSTS[host]
    for suffix, provider in _HOST_SUFFIXES:
        if host.endswith(suffix):
            return provider
    if host.startswith("bedrock-runtime.") and host.endswith(".amazonaws.com"):
        return "aws.bedrock"
    if host == "localhost" or host.endswith((".local", ".localhost", ".internal", ".svc", ".cluster.local")):
        return SELF_HOSTED
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address.is_loopback or address.is_private or address.is_link_local:
        return SELF_HOSTED
    return None


def provider_for_url(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return provider_for_host(host) if host else None


# Model names -> the provider whose model it is, by the name's start (lower-case), first match wins. Only
# names a provider's own API uses: open-weight families many servers run (llama, qwen, gemma, gpt-oss ...)
# name no provider (None), and a server of one of those is ``openai-compatible``.
_MODEL_PREFIXES: Final = (
    ("gpt-oss", None),
    ("gemma", None),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("text-embedding-3", "openai"),
    ("text-embedding-ada", "openai"),
    ("omni-moderation", "openai"),
    ("dall-e", "openai"),
    ("tts-1", "openai"),
    ("whisper-1", "openai"),
    ("davinci-", "openai"),
    ("babbage-", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "gcp.gemini"),
    ("mistral-", "mistral_ai"),
    ("mixtral-", "mistral_ai"),
    ("open-mistral", "mistral_ai"),
    ("open-mixtral", "mistral_ai"),
    ("codestral", "mistral_ai"),
    ("ministral", "mistral_ai"),
    ("magistral", "mistral_ai"),
    ("devstral", "mistral_ai"),
    ("pixtral", "mistral_ai"),
    ("voxtral", "mistral_ai"),
    ("deepseek-", "deepseek"),
    ("grok-", "x_ai"),
    ("command-", "cohere"),
    ("sonar", "perplexity"),
)
_OPENAI_REASONING = re.compile(r"o[134](?:-|$)")  # o1, o3-mini, o4-mini-2025-04-16
# Providers a gateway's ``provider/model`` name may start with (LiteLLM's ``openai/gpt-4o``, OpenRouter's
# ``anthropic/claude-sonnet-4.5``); any other prefix is the author of open weights (``meta-llama/``).
_ROUTED_PROVIDERS: Final = frozenset(
    {
        "openai",
        "anthropic",
        "azure.ai.openai",
        "gcp.gemini",
        "gcp.vertex_ai",
        "gcp.gen_ai",
        "aws.bedrock",
        "mistral_ai",
        "deepseek",
        "x_ai",
        "cohere",
        "groq",
        "together",
        "fireworks",
        "perplexity",
        "openrouter",
    }
)


@lru_cache(maxsize=4096)
def provider_for_model(model: str) -> str | None:
    """The provider whose model ``model`` is, when its name says so (``claude-*`` is Anthropic's); ``None``
    for an open-weight model or a name costspan does not know."""
    name = model.strip().lower()
    head, slash, rest = name.partition("/")
    if slash:
        routed = _canonical(head)
        if routed not in _ROUTED_PROVIDERS:
            return None
        by_name = _by_name(rest)
        # an open-weight model under a provider's prefix (openai/gpt-oss-20b) is no provider's
        return None if by_name is None and _names_open_weights(rest) else routed
    return _by_name(name)


def _by_name(name: str) -> str | None:
    if _OPENAI_REASONING.match(name):
        return "openai"
    for prefix, provider in _MODEL_PREFIXES:
        if name.startswith(prefix):
            return provider
    return None


def _names_open_weights(name: str) -> bool:
    return any(name.startswith(prefix) for prefix, provider in _MODEL_PREFIXES if provider is None)
