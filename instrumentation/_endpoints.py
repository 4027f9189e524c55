"""Which HTTP requests are LLM calls: provider, operation and wire format, from host and path alone.

A request is recognised before anything else is done with it, so an application's other HTTP traffic pays
one dictionary lookup per request (results are cached by host and path).

Known providers are recognised by host. Any other server (a vLLM or LM Studio server, a LiteLLM or corporate
gateway) is recognised by the path endings of the OpenAI and Anthropic APIs, whatever prefix a gateway puts
before them: such an endpoint is a call only when the request body has the API's shape as well
(:func:`has_call_shape`: a JSON object with a ``model`` and the API's own members), and its provider is
the one its model names (:func:`with_model_provider`), else ``openai-compatible`` / ``anthropic-compatible``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from costspan.semconv.providers import (
    ANTHROPIC_COMPATIBLE,
    OPENAI_COMPATIBLE,
    SELF_HOSTED,
    provider_for_host,
    provider_for_model,
)

# Wire formats: how a request names its model and how a response reports usage.
OPENAI = "openai"  # OpenAI and every OpenAI-compatible API
ANTHROPIC = "anthropic"
GEMINI = "gemini"
BEDROCK = "bedrock"
OLLAMA = "ollama"

# OpenTelemetry GenAI operation names (gen_ai.operation.name)
CHAT = "chat"
TEXT_COMPLETION = "text_completion"
EMBEDDINGS = "embeddings"
GENERATE_CONTENT = "generate_content"
IMAGE_GENERATION = "image_generation"
SPEECH = "speech"
TRANSCRIPTION = "transcription"

# Path endings of OpenAI-format inference endpoints -> (operation, API), most specific first.
_OPENAI_PATHS = (
    ("/chat/completions", CHAT, "chat_completions"),
    ("/completions", TEXT_COMPLETION, "completions"),
    ("/responses", CHAT, "responses"),
    ("/embeddings", EMBEDDINGS, "embeddings"),
    ("/images/generations", IMAGE_GENERATION, "images"),
    ("/images/edits", IMAGE_GENERATION, "images"),
    ("/audio/speech", SPEECH, "speech"),
    ("/audio/transcriptions", TRANSCRIPTION, "transcriptions"),
    ("/audio/translations", TRANSCRIPTION, "transcriptions"),
)
_OLLAMA_PATHS = (
    ("/api/chat", CHAT, "chat"),
    ("/api/generate", TEXT_COMPLETION, "generate"),
    ("/api/embed", EMBEDDINGS, "embed"),
    ("/api/embeddings", EMBEDDINGS, "embed"),
)
# Path endings any server may serve the OpenAI or Anthropic API at, with or without a gateway's prefix
# (/openai/v1/chat/completions, /api/v1/...) -> (operation, wire format, API). Anthropic's SDK always
# calls {base_url}/v1/messages; a bare /messages is too common an application path to consider.
_COMPATIBLE_PATHS = (
    ("/chat/completions", CHAT, OPENAI, "chat_completions"),
    ("/completions", TEXT_COMPLETION, OPENAI, "completions"),
    ("/responses", CHAT, OPENAI, "responses"),
    ("/embeddings", EMBEDDINGS, OPENAI, "embeddings"),
    ("/v1/messages", CHAT, ANTHROPIC, "messages"),
)
_COMPATIBLE_SUFFIXES = tuple(suffix for suffix, *_ in _COMPATIBLE_PATHS)
# What a request body of each API has besides "model": members, each as (a substring every body with it
# has, tested first since most bodies lack it; the pattern that proves it a key: a key is followed by its
# colon, a string value never is)
_CALL_SHAPES: dict[str, tuple[tuple[bytes, re.Pattern[bytes]], ...]] = {
    "chat_completions": ((b'"messages"', re.compile(rb'"messages"\s*:\s*\[')),),
    "completions": ((b'"prompt"', re.compile(rb'"prompt"\s*:')),),
    "responses": ((b'"', re.compile(rb'"(?:input|previous_response_id|prompt|conversation)"\s*:')),),
    "embeddings": ((b'"input"', re.compile(rb'"input"\s*:')),),
    "messages": (
        (b'"max_tokens"', re.compile(rb'"max_tokens"\s*:')),
        (b'"messages"', re.compile(rb'"messages"\s*:\s*\[')),
    ),
}
# Gemini (and Vertex AI): .../models/{model}:{method}
_GEMINI_PATH = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")
# Bedrock Runtime: /model/{modelId}/converse or /converse-stream
_BEDROCK_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<method>converse|converse-stream)$")
# Hosts whose API speaks the OpenAI format (provider_for_host names their provider).
_OPENAI_COMPATIBLE = frozenset(
    {
        "openai",
        "azure.ai.openai",
        "azure.ai.inference",
        "openrouter",
        "groq",
        "together",
        "fireworks",
        "deepseek",
        "x_ai",
        "mistral_ai",
        "perplexity",
    }
)
_FORMAT_OF_PROVIDER = {"anthropic": ANTHROPIC, "gcp.gemini": GEMINI, "aws.bedrock": BEDROCK, "ollama": OLLAMA}
OLLAMA_PORT = 11434
ENDPOINTS_ENV = "COSTSPAN_LLM_ENDPOINTS"
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An LLM API endpoint: who serves it, what it does, and in which format."""

    provider: str
    operation: str
    wire_format: str
    api: str  # chat_completions, responses, messages, converse ...
    model: str | None = None  # when the path names it (Gemini, Bedrock)
    streaming_path: bool = False  # the path itself asks for a stream (Gemini, Bedrock)
    # recognised by its path alone, on a host that is no known provider's API (or not for this path): a
    # call only when the request body has the API's shape (see has_call_shape)
    by_shape: bool = False
    # the host names no provider: ``provider`` is the default, and the model names the provider when it can
    by_model: bool = False


@dataclass(frozen=True, slots=True)
class _Configured:
    scheme: str
    host: str
    port: int | None
    path: str
    provider: str
    by_model: bool  # no provider configured, nor known by host: the model names it, when it can


class EndpointTable:
    """Recognises provider APIs by host, and the base URLs an application configured (a vLLM server, an
    internal gateway, a local test server) by prefix."""

    def __init__(self, configured: dict[str, str] | None = None) -> None:
        entries = (_parse_configured(url, provider) for url, provider in (configured or {}).items())
        # the longest base URL first: "http://gw/v1/messages" (Anthropic) before "http://gw/v1" (OpenAI)
        self._configured = tuple(sorted(entries, key=lambda entry: -len(entry.path)))
        self._cache: dict[tuple[str, int | None, str], Endpoint | None] = {}

    @classmethod
    def from_env(cls, extra: dict[str, str] | None = None) -> EndpointTable:
        """``COSTSPAN_LLM_ENDPOINTS``: comma-separated ``[provider=]base_url`` entries; ``extra`` adds."""
        configured: dict[str, str] = {}
        for entry in os.environ.get(ENDPOINTS_ENV, "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            provider, sep, url = entry.partition("=")
            if not sep:
                provider, url = "", provider
            configured[url.strip()] = provider.strip()
        configured.update(extra or {})
        return cls(configured)

    def match(self, host: str, port: int | None, path: str) -> Endpoint | None:
        key = (host, port, path)
        try:
            return self._cache[key]
        except KeyError:
            pass
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # paths with ids in them must not grow the cache without bound
        found = self._cache[key] = self._match(host, port, path)
        return found

    def _match(self, host: str, port: int | None, path: str) -> Endpoint | None:
        host = host.lower()
        for entry in self._configured:
            if (
                entry.host == host
                and (entry.port is None or entry.port == port)
                and path.startswith(entry.path)
            ):
                found = _by_format(_FORMAT_OF_PROVIDER.get(entry.provider, OPENAI), entry.provider, path)
                if found is not None:
                    return replace(found, by_model=True) if entry.by_model else found
        provider = provider_for_host(host)
        if provider is None or provider == SELF_HOSTED:
            if port == OLLAMA_PORT:
                # Ollama's native API on its own port, or its OpenAI-compatible one
                return _by_format(OLLAMA, "ollama", path) or _compatible(path, "ollama", False)
            return _compatible(path, None, True)
        if provider in _OPENAI_COMPATIBLE:
            found = _by_format(OPENAI, provider, path)
        else:
            wire_format = GEMINI if provider == "gcp.vertex_ai" else _FORMAT_OF_PROVIDER.get(provider)
            found = _by_format(wire_format, provider, path) if wire_format else None
        # a provider's other API on the same host (Gemini's and Bedrock's OpenAI-compatible endpoints)
        return found or _compatible(path, provider, False)


def _parse_configured(url: str, provider: str) -> _Configured:
    parts = urlsplit(url if "://" in url else "http://" + url)
    host = (parts.hostname or "").lower()
    by_host = provider_for_host(host)
    by_model = not provider and by_host in (None, SELF_HOSTED)
    resolved = provider or by_host or SELF_HOSTED
    return _Configured(parts.scheme, host, parts.port, parts.path.rstrip("/"), resolved, by_model)


def _compatible(path: str, provider: str | None, by_model: bool) -> Endpoint | None:
    """An OpenAI- or Anthropic-compatible endpoint by its path ending; ``provider`` ``None``: the default of
    its API (``openai-compatible``, ``anthropic-compatible``)."""
    if not path.endswith(_COMPATIBLE_SUFFIXES):  # most paths: one test, in C
        return None
    if path.endswith("/completions") and not path.endswith("/chat/completions") and "/chat/" in path:
        return None  # a stored chat completion's messages, not a call
    for suffix, operation, wire_format, api in _COMPATIBLE_PATHS:
        if path.endswith(suffix):
            provider = provider or (OPENAI_COMPATIBLE if wire_format == OPENAI else ANTHROPIC_COMPATIBLE)
            return Endpoint(provider, operation, wire_format, api, by_shape=True, by_model=by_model)
    return None


def has_call_shape(endpoint: Endpoint, body: bytes) -> bool:
    """Whether ``body`` is a request of ``endpoint``'s API, but for its ``model`` (the caller looks for it):
    a JSON object with the API's members. A POST to an application's own ``/v1/messages`` is not."""
    if not body[:64].lstrip().startswith(b"{"):
        return False
    for substring, pattern in _CALL_SHAPES.get(endpoint.api, ()):
        if substring not in body or pattern.search(body) is None:
            return False
    return True


def with_model_provider(endpoint: Endpoint, model: str | None) -> Endpoint:
    """``endpoint`` with the provider ``model`` names, when its host names none (a gateway's ``gpt-4o`` is
    OpenAI's model; an Anthropic-shaped call to a ``claude-*`` model is Anthropic's)."""
    if not endpoint.by_model or not model:
        return endpoint
    provider = provider_for_model(model)
    if provider is None or provider == endpoint.provider:
        return endpoint
    return _with_provider(endpoint, provider)


@lru_cache(maxsize=1024)
def _with_provider(endpoint: Endpoint, provider: str) -> Endpoint:
    return replace(endpoint, provider=provider, by_model=False)


def _by_format(wire_format: str, provider: str, path: str) -> Endpoint | None:
    if wire_format == OPENAI:
        if path.endswith("/completions") and not path.endswith("/chat/completions") and "/chat/" in path:
            return None  # a stored chat completion's messages, not a call
        for suffix, operation, api in _OPENAI_PATHS:
            if path.endswith(suffix):
                return Endpoint(provider, operation, OPENAI, api)
        return None
    if wire_format == ANTHROPIC:
        # /v1/messages/count_tokens and /v1/messages/batches are not billed as calls here
        return Endpoint(provider, CHAT, ANTHROPIC, "messages") if path.endswith("/messages") else None
    if wire_format == GEMINI:
        found = _GEMINI_PATH.search(path)
        if found is None:
            return None
        stream = found["method"] == "streamGenerateContent"
        return Endpoint(provider, GENERATE_CONTENT, GEMINI, found["method"], found["model"], stream)
    if wire_format == BEDROCK:
        found = _BEDROCK_PATH.match(path)
        if found is None:
            return None
        model = unquote(found["model"])
        stream = found["method"] == "converse-stream"
        return Endpoint(provider, CHAT, BEDROCK, found["method"], model, stream)
    if wire_format == OLLAMA:
        for suffix, operation, api in _OLLAMA_PATHS:
            if path.endswith(suffix):
                return Endpoint(provider, operation, OLLAMA, api)
    return None
