"""Provider names: every spelling instrumentations use, reduced to one; and providers known by host.

The canonical names are the OpenTelemetry GenAI ``gen_ai.provider.name`` values (1.37+) where the
convention has one, and a lower-case name otherwise (``openrouter``, ``together``, ``ollama``). A call to a
server on this machine or a private network is ``self-hosted``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Final
from urllib.parse import urlsplit

SELF_HOSTED: Final = "self-hosted"

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
