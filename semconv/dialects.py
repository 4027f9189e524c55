"""Dialects: how each instrumentation writes a GenAI span, and its conversion to the canonical call.

A dialect is recognised by the span's instrumentation scope, or failing that by the attributes only it
writes. Each dialect is a table of where its fields live (first key present wins, newest name first) plus
the arithmetic it counts tokens in; :func:`to_call` applies it. A span that is no GenAI span at all comes
back as ``None`` after a few dictionary lookups, because most spans an application exports are not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final

from . import attributes as A
from . import json_text
from . import record as R
from .providers import SELF_HOSTED, ai_sdk_provider, canonical_provider, provider_for_host, provider_for_url

OTEL_GENAI: Final = "otel_genai"
OPENLLMETRY: Final = "openllmetry"
OPENINFERENCE: Final = "openinference"
OPENLIT: Final = "openlit"
LOGFIRE: Final = "logfire"
LANGFUSE: Final = "langfuse"
ANTHROPIC_SDK: Final = "anthropic_sdk"
VERCEL_AI: Final = "vercel_ai"  # the AI SDK's (npm ``ai``) own ai.* spans
HTTP: Final = "http"  # a plain HTTP client span to a provider's API: the call happened, its usage is unknown


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    provider: tuple[str, ...] = (A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM)
    operation: tuple[str, ...] = (A.GEN_AI_OPERATION_NAME,)
    request_model: tuple[str, ...] = (A.GEN_AI_REQUEST_MODEL,)
    response_model: tuple[str, ...] = (A.GEN_AI_RESPONSE_MODEL,)
    response_id: tuple[str, ...] = (A.GEN_AI_RESPONSE_ID,)
    input_tokens: tuple[str, ...] = (A.GEN_AI_USAGE_INPUT_TOKENS, A.GEN_AI_USAGE_PROMPT_TOKENS)
    output_tokens: tuple[str, ...] = (A.GEN_AI_USAGE_OUTPUT_TOKENS, A.GEN_AI_USAGE_COMPLETION_TOKENS)
    cache_read_tokens: tuple[str, ...] = (
        A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        A.GEN_AI_USAGE_INPUT_TOKENS_CACHED,
        A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_OLD,
    )
    cache_write_tokens: tuple[str, ...] = (
        A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
        A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
        A.GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE,
        A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_OLD,
    )
    cache_write_1h_tokens: tuple[str, ...] = (A.ANTHROPIC_CACHE_CREATION_1H,)
    reasoning_tokens: tuple[str, ...] = (
        A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
        A.GEN_AI_USAGE_OUTPUT_TOKENS_REASONING,
        A.GEN_AI_USAGE_REASONING_TOKENS_OLD,
        A.LLM_USAGE_REASONING_TOKENS,
    )
    service_tier: tuple[str, ...] = (
        A.OPENAI_RESPONSE_SERVICE_TIER,
        A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER,
        A.OPENAI_REQUEST_SERVICE_TIER,
        A.GEN_AI_OPENAI_REQUEST_SERVICE_TIER,
        A.ANTHROPIC_RESPONSE_SERVICE_TIER,
    )
    reported_cost: tuple[str, ...] = ()
    # usage beyond the token counts: (catalog usage key, attribute key)
    extra_usage: tuple[tuple[str, str], ...] = ()


_OPENINFERENCE_EXTRA: Final = (
    ("input_audio_tokens", A.LLM_TOKEN_COUNT_PROMPT_AUDIO),
    ("output_audio_tokens", A.LLM_TOKEN_COUNT_COMPLETION_AUDIO),
)
_PYDANTIC_AI_EXTRA: Final = (
    ("input_audio_tokens", A.GEN_AI_USAGE_DETAILS_INPUT_AUDIO_TOKENS),
    ("cache_audio_read_tokens", A.GEN_AI_USAGE_DETAILS_CACHE_AUDIO_READ_TOKENS),
    ("output_audio_tokens", A.GEN_AI_USAGE_DETAILS_OUTPUT_AUDIO_TOKENS),
)
_DEFAULT: Final = Dialect("")

# Where each dialect keeps its fields. Keys not named fall back to the OpenTelemetry names above.
DIALECTS: Final[dict[str, Dialect]] = {
    OTEL_GENAI: Dialect(OTEL_GENAI),
    ANTHROPIC_SDK: Dialect(ANTHROPIC_SDK),
    OPENLLMETRY: Dialect(
        OPENLLMETRY,
        operation=(A.GEN_AI_OPERATION_NAME, A.LLM_REQUEST_TYPE),
    ),
    OPENLIT: Dialect(OPENLIT, reported_cost=(A.GEN_AI_USAGE_COST,)),
    # pydantic-ai writes the 1.41 counts and, as older releases did alone, gen_ai.usage.details.*
    LOGFIRE: Dialect(
        LOGFIRE,
        cache_read_tokens=(*_DEFAULT.cache_read_tokens, A.GEN_AI_USAGE_DETAILS_CACHE_READ_TOKENS),
        cache_write_tokens=(*_DEFAULT.cache_write_tokens, A.GEN_AI_USAGE_DETAILS_CACHE_WRITE_TOKENS),
        cache_write_1h_tokens=(A.ANTHROPIC_CACHE_CREATION_1H, A.GEN_AI_USAGE_DETAILS_EPHEMERAL_1H),
        reasoning_tokens=(*_DEFAULT.reasoning_tokens, A.GEN_AI_USAGE_DETAILS_REASONING_TOKENS),
        reported_cost=(A.OPERATION_COST,),
        extra_usage=_PYDANTIC_AI_EXTRA,
    ),
    OPENINFERENCE: Dialect(
        OPENINFERENCE,
        provider=(A.LLM_PROVIDER, A.LLM_SYSTEM),
        operation=(),
        request_model=(A.LLM_REQUEST_MODEL_NAME, A.LLM_MODEL_NAME, A.EMBEDDING_MODEL_NAME),
        response_model=(A.LLM_RESPONSE_MODEL_NAME,),
        response_id=(),
        input_tokens=(A.LLM_TOKEN_COUNT_PROMPT,),
        output_tokens=(A.LLM_TOKEN_COUNT_COMPLETION,),
        cache_read_tokens=(A.LLM_TOKEN_COUNT_PROMPT_CACHE_READ,),
        cache_write_tokens=(A.LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,),
        cache_write_1h_tokens=(),
        reasoning_tokens=(A.LLM_TOKEN_COUNT_COMPLETION_REASONING,),
        service_tier=(),
        reported_cost=(A.LLM_COST_TOTAL,),
        extra_usage=_OPENINFERENCE_EXTRA,
    ),
    LANGFUSE: Dialect(
        LANGFUSE,
        request_model=(A.LANGFUSE_OBSERVATION_MODEL, A.GEN_AI_REQUEST_MODEL),
    ),
    # ai 4 wrote promptTokens / completionTokens, ai 5 inputTokens / outputTokens (but promptTokens still on
    # generateText), ai 6+ the inputTokenDetails / outputTokenDetails; cache and reasoning counts of older
    # releases are in ai.response.providerMetadata (see _ai_sdk_usage)
    VERCEL_AI: Dialect(
        VERCEL_AI,
        provider=(A.AI_MODEL_PROVIDER, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM),
        operation=(),
        request_model=(A.AI_MODEL_ID, A.GEN_AI_REQUEST_MODEL),
        response_model=(A.AI_RESPONSE_MODEL, A.GEN_AI_RESPONSE_MODEL),
        response_id=(A.AI_RESPONSE_ID, A.GEN_AI_RESPONSE_ID),
        input_tokens=(
            A.AI_USAGE_INPUT_TOKENS,
            A.AI_USAGE_PROMPT_TOKENS,
            A.AI_USAGE_TOKENS,
            A.GEN_AI_USAGE_INPUT_TOKENS,
        ),
        output_tokens=(A.AI_USAGE_OUTPUT_TOKENS, A.AI_USAGE_COMPLETION_TOKENS, A.GEN_AI_USAGE_OUTPUT_TOKENS),
        cache_read_tokens=(A.AI_USAGE_INPUT_CACHE_READ_TOKENS, A.AI_USAGE_CACHED_INPUT_TOKENS),
        cache_write_tokens=(A.AI_USAGE_INPUT_CACHE_WRITE_TOKENS,),
        cache_write_1h_tokens=(),
        reasoning_tokens=(A.AI_USAGE_OUTPUT_REASONING_TOKENS, A.AI_USAGE_REASONING_TOKENS),
        service_tier=(),
    ),
    HTTP: Dialect(HTTP),
}

# Instrumentation scopes (by prefix) -> dialect.
_SCOPES: Final = (
    (A.ANTHROPIC_SCOPE, ANTHROPIC_SDK),
    ("openinference.instrumentation", OPENINFERENCE),
    ("opentelemetry.instrumentation.openai_v2", OTEL_GENAI),
    ("opentelemetry.instrumentation.genai", OTEL_GENAI),
    ("opentelemetry.instrumentation.google_genai", OTEL_GENAI),
    ("opentelemetry.instrumentation.vertexai", OTEL_GENAI),
    ("opentelemetry.util.genai", OTEL_GENAI),
    ("costspan", OTEL_GENAI),
    ("opentelemetry.instrumentation.httpx", HTTP),
    ("opentelemetry.instrumentation.requests", HTTP),
    ("opentelemetry.instrumentation.aiohttp", HTTP),
    ("opentelemetry.instrumentation.urllib", HTTP),
    ("opentelemetry.instrumentation.", OPENLLMETRY),  # traceloop's packages use the contrib naming
    ("traceloop", OPENLLMETRY),
    ("openlit", OPENLIT),
    ("logfire", LOGFIRE),
    ("pydantic-ai", LOGFIRE),
    ("pydantic_ai", LOGFIRE),
    ("langfuse", LANGFUSE),
)

# Operation names of LLM calls, as each dialect spells them -> canonical operation.
_LLM_OPERATIONS: Final = {
    "chat": R.CHAT,
    "text_completion": R.TEXT_COMPLETION,
    "completion": R.TEXT_COMPLETION,
    "generate_content": R.GENERATE_CONTENT,
    "embeddings": R.EMBEDDINGS,
    "embedding": R.EMBEDDINGS,
    "create_embedding": R.EMBEDDINGS,
    "image_generation": R.IMAGE,
    "images": R.IMAGE,
    "audio": R.AUDIO,
    "speech": R.AUDIO,
    "transcription": R.AUDIO,
    "rerank": R.RERANK,
    "responses": R.CHAT,
}
_OTHER_OPERATIONS: Final = {
    "invoke_agent": R.AGENT,
    "create_agent": R.AGENT,
    "execute_tool": R.TOOL,
    "invoke_workflow": R.WORKFLOW,
    "retrieval": R.RETRIEVAL,
}
_OPENINFERENCE_KINDS: Final = {
    "LLM": (R.LLM, R.CHAT),
    "EMBEDDING": (R.LLM, R.EMBEDDINGS),
    "AGENT": (R.AGENT, None),
    "TOOL": (R.TOOL, None),
    "CHAIN": (R.WORKFLOW, None),
    "RETRIEVER": (R.RETRIEVAL, None),
    "RERANKER": (R.RETRIEVAL, None),
}
_TRACELOOP_KINDS: Final = {"workflow": R.WORKFLOW, "task": R.WORKFLOW, "agent": R.AGENT, "tool": R.TOOL}
_LANGFUSE_TYPES: Final = {
    "generation": (R.LLM, R.CHAT),
    "embedding": (R.LLM, R.EMBEDDINGS),
    "agent": (R.AGENT, None),
    "tool": (R.TOOL, None),
    "chain": (R.WORKFLOW, None),
    "retriever": (R.RETRIEVAL, None),
}
# Keys whose presence marks a span of a dialect when its scope does not say.
_MARKERS: Final = (
    (A.OPENINFERENCE_SPAN_KIND, OPENINFERENCE),
    (A.LANGFUSE_OBSERVATION_TYPE, LANGFUSE),
    (A.LLM_REQUEST_TYPE, OPENLLMETRY),
    (A.TRACELOOP_SPAN_KIND, OPENLLMETRY),
    (A.GEN_AI_USAGE_COST, OPENLIT),
    (A.OPERATION_COST, LOGFIRE),
    (A.AI_OPERATION_ID, VERCEL_AI),  # before gen_ai.*: ai 4 and 5 write gen_ai.system beside ai.*
    (A.GEN_AI_OPERATION_NAME, OTEL_GENAI),
    (A.GEN_AI_PROVIDER_NAME, OTEL_GENAI),
    (A.GEN_AI_SYSTEM, OTEL_GENAI),
    (A.GEN_AI_REQUEST_MODEL, OTEL_GENAI),
)
_HTTP_URL_KEYS: Final = (A.URL_FULL, A.HTTP_URL)
_HTTP_HOST_KEYS: Final = (A.SERVER_ADDRESS, A.NET_PEER_NAME)


@lru_cache(maxsize=1024)
def dialect_of_scope(scope_name: str) -> str | None:
    for prefix, dialect in _SCOPES:
        if scope_name.startswith(prefix):
            return dialect
    return None


def detect(scope_name: str | None, attrs: Mapping[str, Any]) -> str | None:
    """The dialect a span speaks, or ``None`` for a span that is not about GenAI."""
    dialect = _dialect_of_keys(scope_name, attrs)
    if dialect == HTTP and _http_provider(attrs) is None:
        return None
    return dialect


def _dialect_of_keys(scope_name: str | None, keys: Mapping[str, Any] | frozenset[str]) -> str | None:
    """:func:`detect` from attribute keys alone; an HTTP span still needs its URL checked."""
    dialect = dialect_of_scope(scope_name) if scope_name else None
    if dialect is not None and dialect != HTTP and dialect != OPENLLMETRY:
        return dialect
    for key, marker_dialect in _MARKERS:
        if key in keys:
            # a traceloop-named scope without traceloop's own keys writes the OpenTelemetry names
            return marker_dialect if marker_dialect != OTEL_GENAI or dialect is None else dialect
    if dialect == OPENLLMETRY:
        return None  # another contrib instrumentation (flask, sqlalchemy ...): not GenAI
    if dialect == HTTP or any(k in keys for k in _HTTP_URL_KEYS):
        return HTTP
    return None


@dataclass(frozen=True, slots=True)
class _Reader:
    """Where one span shape (its instrumentation scope and attribute keys) keeps each field, resolved once:
    spans of one instrumentation share a handful of shapes, so a span is read with direct lookups."""

    # the attribute key of each field, None where the shape has none
    dialect: Dialect | None  # None: the shape is not a GenAI span's
    request_model: str | None
    response_model: str | None
    response_id: str | None
    service_tier: str | None
    error_type: str | None
    input_tokens: str | None
    output_tokens: str | None
    cache_read_tokens: str | None
    cache_write_tokens: str | None
    cache_write_1h_tokens: str | None
    reasoning_tokens: str | None
    provider: str | None
    server: str | None
    name: str | None  # agent / tool / workflow name
    extra_usage: tuple[tuple[str, str], ...]  # (catalog usage key, attribute key)
    reported_cost: str | None
    ttft: bool
    streaming: str | None
    provider_cost: bool


# the reader of every shape that is no GenAI span's
_NOT_GENAI: Final = _Reader(
    dialect=None,
    request_model=None,
    response_model=None,
    response_id=None,
    service_tier=None,
    error_type=None,
    input_tokens=None,
    output_tokens=None,
    cache_read_tokens=None,
    cache_write_tokens=None,
    cache_write_1h_tokens=None,
    reasoning_tokens=None,
    provider=None,
    server=None,
    name=None,
    extra_usage=(),
    reported_cost=None,
    ttft=False,
    streaming=None,
    provider_cost=False,
)

_READERS: Final[dict[tuple[str | None, tuple[str, ...] | int], _Reader]] = {}
_READER_LIMIT: Final = 20_000
_NAME_KEYS: Final = (
    A.GEN_AI_AGENT_NAME,
    A.GEN_AI_TOOL_NAME,
    A.GEN_AI_WORKFLOW_NAME,
    A.TRACELOOP_ENTITY_NAME,
    A.OPENINFERENCE_TOOL_NAME,
    A.OPENINFERENCE_AGENT_NAME,
    A.AI_TOOL_CALL_NAME,
    A.AI_TELEMETRY_FUNCTION_ID,
    A.AI_OPERATION_ID,
)


def _reader(scope_name: str | None, shape: tuple[str, ...], shape_id: int | None = None) -> _Reader:
    key = (scope_name, shape if shape_id is None else shape_id)
    reader = _READERS.get(key)
    if reader is None:
        reader = _build_reader(scope_name, shape)
        if len(_READERS) >= _READER_LIMIT:
            _READERS.clear()
        _READERS[key] = reader
    return reader


def _build_reader(scope_name: str | None, shape: tuple[str, ...]) -> _Reader:
    keys = frozenset(shape)
    name = _dialect_of_keys(scope_name, keys)
    if name is None:
        return _NOT_GENAI

    def first(candidates: tuple[str, ...]) -> str | None:
        return next((k for k in candidates if k in keys), None)

    d = DIALECTS[name]
    return _Reader(
        dialect=d,
        request_model=first(d.request_model),
        response_model=first(d.response_model),
        response_id=first(d.response_id),
        service_tier=first(d.service_tier),
        error_type=first((A.ERROR_TYPE,)),
        input_tokens=first(d.input_tokens),
        output_tokens=first(d.output_tokens),
        cache_read_tokens=first(d.cache_read_tokens),
        cache_write_tokens=first(d.cache_write_tokens),
        cache_write_1h_tokens=first(d.cache_write_1h_tokens),
        reasoning_tokens=first(d.reasoning_tokens),
        provider=first(d.provider),
        server=first(_HTTP_HOST_KEYS),
        name=first(_NAME_KEYS),
        extra_usage=_extra_usage(d, shape),
        reported_cost=first(d.reported_cost),
        ttft=A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in keys or A.AI_RESPONSE_MS_TO_FIRST_CHUNK in keys,
        streaming=first((A.GEN_AI_IS_STREAMING, A.LLM_IS_STREAMING, "gen_ai.request.stream")),
        provider_cost=A.GEN_AI_USAGE_COST_SOURCE in keys,
    )


def _extra_usage(d: Dialect, shape: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(catalog usage key, attribute key) of usage beyond the token counts."""
    if d.extra_usage:
        keys = frozenset(shape)
        return tuple(p for p in d.extra_usage if p[1] in keys)
    prefix = A.COSTSPAN_USAGE_PREFIX
    return tuple(
        (key[len(prefix) :], key)
        for key in shape
        if key.startswith(prefix) and key != A.COSTSPAN_USAGE_CACHE_WRITE_1H  # costspan's own output
    )


def to_call(
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    start_ns: int,
    end_ns: int,
    scope_name: str | None,
    attrs: Mapping[str, Any],
    resource: Mapping[str, Any],
    shape: tuple[str, ...] | None = None,
    shape_id: int | None = None,
) -> R.GenAICall | None:
    """The canonical record of a span, or ``None`` when the span is not about GenAI.

    ``shape`` is ``tuple(attrs)``, when the caller already has it, and ``shape_id`` a number that stands
    for it (equal only for equal shapes: ``costspan.processors`` numbers them), to look the reader up by.
    """
    reader = _reader(scope_name, shape if shape is not None else tuple(attrs), shape_id)
    d = reader.dialect
    if d is None:
        return None
    dialect_name = d.name
    kind, operation = _classify(dialect_name, d, attrs)
    if kind is None:
        return None
    call = R.GenAICall(
        trace_id,
        span_id,
        parent_span_id,
        start_ns,
        end_ns,
        _str(resource.get(A.SERVICE_NAME)),
        kind,
        dialect_name,
        operation,
    )
    # Field by field, not by a loop over names: a compiled build turns each into a direct store.
    call.request_model = _text_at(attrs, reader.request_model)
    call.response_model = _text_at(attrs, reader.response_model)
    call.response_id = _text_at(attrs, reader.response_id)
    call.service_tier = _text_at(attrs, reader.service_tier)
    call.error_type = _text_at(attrs, reader.error_type)
    provider = None
    if reader.provider is not None:
        value = attrs[reader.provider]
        provider = ai_sdk_provider(value) if dialect_name == VERCEL_AI else canonical_provider(value)
    if kind != R.LLM:
        if reader.name is not None:
            call.name = _str(attrs[reader.name])
        call.provider = provider
        return call
    if dialect_name == HTTP:
        call.provider = _http_provider(attrs)
        call.server_address = _str(attrs[reader.server]) if reader.server is not None else None
        return call
    server = _str(attrs[reader.server]) if reader.server is not None else None
    host_provider = provider_for_host(server) if server else None
    if host_provider == SELF_HOSTED:
        # A server on this machine or a private network: a model server (Ollama, vLLM), or a gateway that
        # forwards to the provider the span names (a LiteLLM proxy). Pricing tells them apart.
        call.local_server = True
    if provider is None:
        provider = host_provider
    call.provider = provider
    call.server_address = server
    if reader.ttft:
        ttft = attrs.get(A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        if ttft is None and (ms := attrs.get(A.AI_RESPONSE_MS_TO_FIRST_CHUNK)) is not None:
            ttft = ms / 1000 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else None
        if isinstance(ttft, (int, float)) and not isinstance(ttft, bool):
            call.time_to_first_chunk_s = float(ttft)
    if reader.streaming is not None and isinstance(streaming := attrs[reader.streaming], bool):
        call.streaming = streaming
    elif dialect_name == VERCEL_AI:
        call.streaming = str(attrs.get(A.AI_OPERATION_ID)).endswith(".doStream")
    if dialect_name == LANGFUSE:
        _langfuse_usage(call, attrs)
    else:
        call.input_tokens = _count_at(attrs, reader.input_tokens, call, "input_tokens")
        call.output_tokens = _count_at(attrs, reader.output_tokens, call, "output_tokens")
        call.cache_read_tokens = _count_at(attrs, reader.cache_read_tokens, call, "cache_read_tokens")
        call.cache_write_tokens = _count_at(attrs, reader.cache_write_tokens, call, "cache_write_tokens")
        call.cache_write_1h_tokens = _count_at(
            attrs, reader.cache_write_1h_tokens, call, "cache_write_1h_tokens"
        )
        call.reasoning_tokens = _count_at(attrs, reader.reasoning_tokens, call, "reasoning_tokens")
        for usage_key, key in reader.extra_usage:
            value = _quantity(attrs[key], call, usage_key)
            if value:
                call.other_usage = {**(call.other_usage or {}), usage_key: value}
        if dialect_name == VERCEL_AI:
            _ai_sdk_usage(call, attrs)
        _to_canonical_input(call)
    if reader.reported_cost is not None:
        cost = attrs[reader.reported_cost]
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost):
            call.reported_cost = float(cost)
    if reader.provider_cost and attrs[A.GEN_AI_USAGE_COST_SOURCE] == "provider":
        amount = attrs.get(A.GEN_AI_USAGE_COST_AMOUNT)
        call.provider_cost = _decimal(amount)
        if call.provider_cost is None and amount is not None:
            call.flag(f"provider-reported cost ignored: not a number: {amount!r}")
    elif reader.provider_cost and call.reported_cost is None:
        # a span another costspan priced and forwarded: its usage is priced again here (once; this
        # collector's overrides apply) and the upstream amount is kept for comparison
        cost = attrs.get(A.GEN_AI_USAGE_COST_AMOUNT)
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost):
            call.reported_cost = float(cost)
    return call


# -- classification ------------------------------------------------------------------------------------


def _classify(dialect_name: str, d: Dialect, attrs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    if dialect_name == OPENINFERENCE:
        return _OPENINFERENCE_KINDS.get(str(attrs.get(A.OPENINFERENCE_SPAN_KIND)), (None, None))
    if dialect_name == LANGFUSE:
        found = _LANGFUSE_TYPES.get(str(attrs.get(A.LANGFUSE_OBSERVATION_TYPE)))
        if found is not None:
            return found
    if dialect_name == VERCEL_AI:
        found = _ai_sdk_kind(attrs.get(A.AI_OPERATION_ID))
        if found is not None:
            return found
    if dialect_name == HTTP:
        # a client span to a provider's inference endpoint is a call; any other HTTP span is not GenAI
        return (R.LLM, None) if _http_provider(attrs) is not None else (None, None)
    operation = _first(attrs, d.operation)
    if isinstance(operation, str):
        op = operation.lower()
        if op in _LLM_OPERATIONS:
            return R.LLM, _LLM_OPERATIONS[op]
        if op in _OTHER_OPERATIONS:
            return _OTHER_OPERATIONS[op], None
    if dialect_name == OPENLLMETRY:
        kind = _TRACELOOP_KINDS.get(str(attrs.get(A.TRACELOOP_SPAN_KIND)))
        if kind is not None:
            return kind, None
    # No operation, but a model and usage: a call all the same.
    if _first(attrs, d.request_model) is not None or _first(attrs, d.response_model) is not None:
        return R.LLM, None
    return None, None


# -- usage ---------------------------------------------------------------------------------------------


def _to_canonical_input(call: R.GenAICall) -> None:
    """An input count smaller than its cached parts is the provider's raw count (Anthropic's excludes cache
    reads and writes; older instrumentations copied it as is): convert it to the canonical total."""
    read, write = call.cache_read_tokens or 0, call.cache_write_tokens or 0
    if type(read) is not int or type(write) is not int:  # a count that is no whole number is flagged already
        return
    cached = read + write
    if cached and type(call.input_tokens) is int and 0 <= call.input_tokens < cached:
        call.input_tokens += cached
        call.flag("input_tokens excluded cache tokens (the provider's raw count); cache tokens added")


# The AI SDK: only the provider call spans (doGenerate, doStream, doEmbed) are calls. The span around them
# (ai.generateText, ai.streamText, ai.embed ...) carries the usage of all its steps again: a workflow.
_AI_SDK_CALLS: Final = {"doGenerate": R.CHAT, "doStream": R.CHAT, "doEmbed": R.EMBEDDINGS}
_AI_SDK_TOOL_CALL: Final = "ai.toolCall"


def _ai_sdk_kind(operation_id: Any) -> tuple[str, str | None] | None:
    if not isinstance(operation_id, str):
        return None
    if operation_id == _AI_SDK_TOOL_CALL:
        return R.TOOL, None
    step = operation_id.rpartition(".")[2]
    if step in _AI_SDK_CALLS:
        return R.LLM, _AI_SDK_CALLS[step]
    return R.WORKFLOW, None


def _ai_sdk_usage(call: R.GenAICall, attrs: Mapping[str, Any]) -> None:
    """What the AI SDK's counts leave out, from the provider's own usage in ``ai.response.providerMetadata``.

    Before ai 6 (no ``inputTokenDetails``) @ai-sdk/anthropic passed Anthropic's input count, which excludes
    cache reads and writes, and kept the cache counts in the metadata (``cacheReadInputTokens`` in ai 4, the
    raw ``usage`` in ai 5); ai 4's @ai-sdk/openai kept the cached and reasoning counts there too.
    """
    metadata = _json_object(attrs.get(A.AI_RESPONSE_PROVIDER_METADATA), call, "ai.response.providerMetadata")
    if metadata is None:
        return
    openai = metadata.get("openai")
    if isinstance(openai, Mapping):
        if call.service_tier is None and isinstance(tier := openai.get("serviceTier"), str):
            call.service_tier = tier
        if call.cache_read_tokens is None:
            call.cache_read_tokens = _count(openai.get("cachedPromptTokens"), call, "cache_read_tokens")
        if call.reasoning_tokens is None:
            call.reasoning_tokens = _count(openai.get("reasoningTokens"), call, "reasoning_tokens")
    anthropic = metadata.get("anthropic")
    if not isinstance(anthropic, Mapping):
        return
    usage = anthropic.get("usage")
    usage = usage if isinstance(usage, Mapping) else {}
    if call.service_tier is None and isinstance(tier := usage.get("service_tier"), str):
        call.service_tier = tier
    read = _count(_first(usage, ("cache_read_input_tokens",)), call, "cache_read_tokens")
    if read is None:
        read = _count(anthropic.get("cacheReadInputTokens"), call, "cache_read_tokens")
    write = _count(_first(usage, ("cache_creation_input_tokens",)), call, "cache_write_tokens")
    if write is None:
        write = _count(anthropic.get("cacheCreationInputTokens"), call, "cache_write_tokens")
    creation = usage.get("cache_creation")
    if isinstance(creation, Mapping) and call.cache_write_1h_tokens is None:
        call.cache_write_1h_tokens = _count(
            creation.get("ephemeral_1h_input_tokens"), call, "cache_write_1h_tokens"
        )
    if call.cache_read_tokens is None:
        call.cache_read_tokens = read
    if call.cache_write_tokens is None:
        call.cache_write_tokens = write
    if A.AI_USAGE_INPUT_NO_CACHE_TOKENS not in attrs and type(call.input_tokens) is int:
        # Anthropic's raw input count: the canonical one adds what was read from and written to the cache
        call.input_tokens += (read if type(read) is int else 0) + (write if type(write) is int else 0)


# Langfuse keeps usage as a JSON object. Its OpenAI integration writes OpenAI's usage object as it came
# (chat completions' prompt_tokens / completion_tokens with their *_details, or the Responses API's
# input_tokens / output_tokens with theirs): totals that include their details, as the canonical record's do.
# Anything else is Langfuse's own usage types, each priced on its own (langfuse/langfuse,
# packages/shared/src/server/ingestion/types.ts, which turns OpenAI's details into input_<key> /
# output_<key> and subtracts them from input / output; its default model prices price input_cached_tokens,
# input_cache_read, cache_read_input_tokens, input_cache_creation, cache_creation_input_tokens apart from
# input): there ``input`` excludes the cache and every other input_* detail, and ``output`` every output_*
# detail, reasoning included. Those are added back.
_OPENAI_USAGE_KEYS: Final = (
    "prompt_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
)
_LANGFUSE_CACHE_READ: Final = ("input_cached_tokens", "input_cache_read", "cache_read_input_tokens")
_LANGFUSE_CACHE_WRITE: Final = (
    "input_cache_creation",
    "cache_creation_input_tokens",
    "input_cache_write_tokens",
)
_LANGFUSE_CACHE_WRITE_1H: Final = ("input_cache_creation_1h", "input_ephemeral_1h_input_tokens")
_LANGFUSE_CACHE_WRITE_5M: Final = ("input_cache_creation_5m", "input_ephemeral_5m_input_tokens")
_LANGFUSE_REASONING: Final = ("output_reasoning_tokens", "output_reasoning")
# other units the catalog prices, each a part of input or output: (catalog usage key, Langfuse keys)
_LANGFUSE_EXTRA: Final = (
    ("input_audio_tokens", ("input_audio_tokens", "input_audio")),
    ("output_audio_tokens", ("output_audio_tokens", "output_audio")),
)
# keys that are no part of input or output of their own: a split of another key, or a tier
_LANGFUSE_NOT_PARTS: Final = frozenset(
    (*_LANGFUSE_CACHE_WRITE_1H, *_LANGFUSE_CACHE_WRITE_5M, "input", "output", "input_tokens", "output_tokens")
)


def _langfuse_usage(call: R.GenAICall, attrs: Mapping[str, Any]) -> None:
    """Usage from ``langfuse.observation.usage_details``; cost from ``cost_details``, an estimate."""
    if call.service_tier is None and A.LANGFUSE_OBSERVATION_MODEL_PARAMETERS in attrs:
        parameters = _json_object(
            attrs[A.LANGFUSE_OBSERVATION_MODEL_PARAMETERS], call, "langfuse model parameters"
        )
        if parameters is not None and isinstance(tier := parameters.get("service_tier"), str):
            call.service_tier = tier
    cost = _json_object(attrs.get(A.LANGFUSE_OBSERVATION_COST_DETAILS), call, "langfuse cost_details")
    if cost is not None:
        total = _amount(cost.get("total"))
        if total is None and cost.get("total") is None:
            parts = [_amount(v) for v in cost.values()]
            total = (
                math.fsum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
            )
        if total is not None and math.isfinite(total):
            call.reported_cost = total
    raw = _json_object(attrs.get(A.LANGFUSE_OBSERVATION_USAGE_DETAILS), call, "langfuse usage_details")
    if raw is None:
        return
    if any(key in raw for key in _OPENAI_USAGE_KEYS):
        _openai_usage(call, raw)
    else:
        _langfuse_usage_types(call, raw)


def _openai_usage(call: R.GenAICall, usage: Mapping[str, Any]) -> None:
    """OpenAI's usage object (chat completions or the Responses API): its totals include their details."""
    input_details = _first(usage, ("prompt_tokens_details", "input_tokens_details"))
    output_details = _first(usage, ("completion_tokens_details", "output_tokens_details"))
    input_details = input_details if isinstance(input_details, Mapping) else {}
    output_details = output_details if isinstance(output_details, Mapping) else {}
    call.input_tokens = _count(_first(usage, ("prompt_tokens", "input_tokens")), call, "input_tokens")
    call.output_tokens = _count(_first(usage, ("completion_tokens", "output_tokens")), call, "output_tokens")
    call.cache_read_tokens = _count(input_details.get("cached_tokens"), call, "cache_read_tokens")
    call.cache_write_tokens = _count(input_details.get("cache_write_tokens"), call, "cache_write_tokens")
    call.reasoning_tokens = _count(output_details.get("reasoning_tokens"), call, "reasoning_tokens")
    audio = (("input_audio_tokens", input_details), ("output_audio_tokens", output_details))
    for usage_key, details in audio:
        value = _count(details.get("audio_tokens"), call, usage_key)
        if value:
            call.other_usage = {**(call.other_usage or {}), usage_key: value}


def _langfuse_usage_types(call: R.GenAICall, usage: Mapping[str, Any]) -> None:
    """Langfuse's own usage types, each apart from the others: converted to the canonical arithmetic."""
    counted: set[str] = set()

    def take(keys: tuple[str, ...], name: str) -> Any:
        for key in keys:
            if usage.get(key) is not None:
                counted.add(key)
                return _count(usage[key], call, name)
        return None

    base_input = take(("input", "input_tokens", "prompt"), "input_tokens")
    base_output = take(("output", "output_tokens", "completion"), "output_tokens")
    read = take(_LANGFUSE_CACHE_READ, "cache_read_tokens")
    write = take(_LANGFUSE_CACHE_WRITE, "cache_write_tokens")
    one_hour = take(_LANGFUSE_CACHE_WRITE_1H, "cache_write_1h_tokens")
    if write is None and one_hour is not None:
        five_minutes = take(_LANGFUSE_CACHE_WRITE_5M, "cache_write_tokens")
        if type(one_hour) is int and type(five_minutes or 0) is int:
            write = one_hour + (five_minutes or 0)
    reasoning = take(_LANGFUSE_REASONING, "reasoning_tokens")
    for usage_key, keys in _LANGFUSE_EXTRA:
        value = take(keys, usage_key)
        if value:
            call.other_usage = {**(call.other_usage or {}), usage_key: value}
    # every other input_* / output_* detail was subtracted from input / output too
    input_parts = [read, write, (call.other_usage or {}).get("input_audio_tokens")]
    output_parts = [reasoning, (call.other_usage or {}).get("output_audio_tokens")]
    for key, value in usage.items():
        if key in counted or key in _LANGFUSE_NOT_PARTS or "priority" in key or type(value) is not int:
            continue
        if key.startswith("input_"):
            input_parts.append(value)
        elif key.startswith("output_"):
            output_parts.append(value)
    call.input_tokens = _with_parts(base_input, input_parts)
    call.output_tokens = _with_parts(base_output, output_parts)
    call.cache_read_tokens = read
    call.cache_write_tokens = write
    call.cache_write_1h_tokens = one_hour
    call.reasoning_tokens = reasoning


def _with_parts(base: Any, parts: list[Any]) -> Any:
    """``base`` plus the whole-number ``parts``; ``base`` as it came when it is not a whole number."""
    if base is not None and type(base) is not int:
        return base
    found = [p for p in parts if type(p) is int]
    if base is None and not found:
        return None
    return (base or 0) + sum(found)


def _json_object(raw: Any, call: R.GenAICall, what: str) -> Mapping[str, Any] | None:
    """A JSON object attribute, parsed; flagged when it is not JSON."""
    if isinstance(raw, str):
        try:
            raw = json_text.loads(raw)
        except json_text.JSONTextError:
            call.flag(f"{what} is not JSON")
            return None
    return raw if isinstance(raw, Mapping) else None


# -- values --------------------------------------------------------------------------------------------


def _first(attrs: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _text_at(attrs: Mapping[str, Any], key: str | None) -> str | None:
    """The value at ``key`` as a string; ``None`` when the span's shape has no such key."""
    if key is None:
        return None
    value = attrs[key]
    return value if type(value) is str else _str(value)


def _count_at(attrs: Mapping[str, Any], key: str | None, call: R.GenAICall, name: str) -> Any:
    """The token count at ``key`` (see :func:`_count`); ``None`` when the span's shape has no such key."""
    if key is None:
        return None
    value = attrs[key]
    return value if type(value) is int else _count(value, call, name)


def _count(value: Any, call: R.GenAICall, name: str) -> Any:
    """A token count as an int; anything else is kept as it came, and flagged (pricing rejects it)."""
    if value is None or type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    call.flag(f"{name} is not a whole number: {value!r}")
    return value


def _quantity(value: Any, call: R.GenAICall, name: str) -> Any:
    """A usage quantity beyond tokens: a whole count, or seconds of audio (a float)."""
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and not value.is_integer():
        return value
    return _count(value, call, name)


def _amount(value: Any) -> float | None:
    """A finite number as a float; ``None`` for anything else (a JSON integer too large for a float too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        amount = float(value)
    except OverflowError:
        return None
    return amount if math.isfinite(amount) else None


def _decimal(value: Any) -> Decimal | None:
    """A number as a Decimal, infinite, NaN and negative ones too: whether it makes sense is pricing's to
    say (``PricingEngine.price``, which ignores and flags a cost that does not)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None


# Paths of inference endpoints: an HTTP span to anything else at a provider (listing models, uploading
# files) is not a call that costs tokens.
_INFERENCE_PATHS: Final = (
    "/chat/completions",
    "/completions",
    "/responses",
    "/embeddings",
    "/messages",
    "/images/generations",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
    ":generatecontent",
    ":streamgeneratecontent",
    ":embedcontent",
    "/converse",
    "/converse-stream",
    "/invoke",
    "/invoke-with-response-stream",
)


def _http_provider(attrs: Mapping[str, Any]) -> str | None:
    url = _first(attrs, _HTTP_URL_KEYS)
    if isinstance(url, str):
        return _inference_provider(url)
    host = _first(attrs, _HTTP_HOST_KEYS)
    if isinstance(host, str):
        provider = provider_for_host(host)
        return provider if provider != SELF_HOSTED else None
    return None


@lru_cache(maxsize=4096)
def _inference_provider(url: str) -> str | None:
    """The provider of an inference endpoint URL; ``None`` for any other URL (an application calls a few)."""
    provider = provider_for_url(url)
    if provider is None or provider == SELF_HOSTED:
        return None
    path = url.split("?", 1)[0].lower()
    return provider if path.endswith(_INFERENCE_PATHS) else None
