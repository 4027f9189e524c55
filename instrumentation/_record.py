"""Calls no transport hook sees: ``record()`` for an LLM call (a gRPC API, an audio or image service billed
by seconds, characters or images) and ``record_retrieval()`` for a RAG retrieval stage.

Each writes one finished span in the GenAI conventions that the collector prices like any other: usage
beyond tokens goes under ``costspan.usage.<catalog usage key>`` (``input_audio_seconds``,
``input_characters``, ``output_images`` ...). The span carries the attribution in effect.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from costspan.semconv import attributes as A

from ._attribution import current_attribution

SCOPE = "costspan.instrumentation"
RETRIEVAL_CHUNKS = "costspan.retrieval.chunks"
RETRIEVAL_CONTEXT_TOKENS = "costspan.retrieval.context_tokens"

_tracer: Tracer | None = None


def use_tracer(tracer: Tracer | None) -> None:
    """The tracer the instrumentor was given; ``None``: the global tracer provider's."""
    global _tracer
    _tracer = tracer


def _get_tracer() -> Tracer:
    return _tracer if _tracer is not None else trace.get_tracer(SCOPE)


def _times(duration_s: float | None) -> tuple[int, int]:
    end = time.time_ns()
    return (end - int(duration_s * 1e9) if duration_s else end), end


def record(
    *,
    provider: str,
    model: str,
    operation: str = "chat",
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    usage: Mapping[str, int | float] | None = None,
    response_model: str | None = None,
    duration_s: float | None = None,
    error_type: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """Record one LLM call that ended just now, as a GenAI span.

    Token counts are in the GenAI conventions' arithmetic: ``input_tokens`` includes the cache reads and
    writes, ``output_tokens`` includes reasoning. ``usage`` holds other units by their catalog usage key,
    for example ``{"input_audio_seconds": 12.5}`` or ``{"output_images": 2}``.
    """
    start, end = _times(duration_s)
    values: dict[str, Any] = {
        A.GEN_AI_OPERATION_NAME: operation,
        A.GEN_AI_PROVIDER_NAME: provider,
        A.GEN_AI_REQUEST_MODEL: model,
    }
    for key, value in (
        (A.GEN_AI_RESPONSE_MODEL, response_model),
        (A.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
        (A.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
        (A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read_tokens),
        (A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, cache_write_tokens),
        (A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning_tokens),
        (A.ERROR_TYPE, error_type),
    ):
        if value is not None:
            values[key] = value
    for unit, amount in (usage or {}).items():
        values[A.COSTSPAN_USAGE_PREFIX + unit] = amount
    values.update(current_attribution())
    values.update(attributes or {})
    span = _get_tracer().start_span(
        f"{operation} {model}", kind=SpanKind.CLIENT, attributes=values, start_time=start
    )
    if error_type is not None:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=end)


def record_retrieval(
    *,
    chunks: int,
    context_tokens: int | None = None,
    source: str | None = None,
    duration_s: float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """Record one retrieval stage of a RAG pipeline that ended just now: how many chunks it returned and how
    many tokens of context they add to the prompt, from which source (an index, a collection)."""
    start, end = _times(duration_s)
    values: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: "retrieval", RETRIEVAL_CHUNKS: chunks}
    if context_tokens is not None:
        values[RETRIEVAL_CONTEXT_TOKENS] = context_tokens
    if source is not None:
        values[A.GEN_AI_DATA_SOURCE_ID] = source
    values.update(current_attribution())
    values.update(attributes or {})
    name = f"retrieval {source}" if source else "retrieval"
    span = _get_tracer().start_span(name, kind=SpanKind.INTERNAL, attributes=values, start_time=start)
    span.end(end_time=end)
