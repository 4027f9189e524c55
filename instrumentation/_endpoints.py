"""Which HTTP requests are LLM calls: provider, operation and wire format, from host and path alone.

A request is recognised before anything else is done with it, so an application's other HTTP traffic pays
one dictionary lookup per request (results are cached by host and path).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from costspan.semconv.providers import SELF_HOSTED, provider_for_host

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


@dataclass(frozen=True, slots=True)
class _Configured:
    scheme: str
    host: str
    port: int | None
    path: str
    provider: str


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
                    return found
        provider = provider_for_host(host)
        if provider is None:
            return None
        if provider == SELF_HOSTED:
            # Ollama's native API on its own port; any other local server only when configured
            return _by_format(OLLAMA, "ollama", path) if port == OLLAMA_PORT else None
        if provider in _OPENAI_COMPATIBLE:
            return _by_format(OPENAI, provider, path)
        wire_format = _FORMAT_OF_PROVIDER.get(provider)
        if provider == "gcp.vertex_ai":
            wire_format = GEMINI
        return _by_format(wire_format, provider, path) if wire_format else None


def _parse_configured(url: str, provider: str) -> _Configured:
    parts = urlsplit(url if "://" in url else "http://" + url)
    host = (parts.hostname or "").lower()
    resolved = provider or provider_for_host(host) or SELF_HOSTED
    return _Configured(parts.scheme, host, parts.port, parts.path.rstrip("/"), resolved)


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
