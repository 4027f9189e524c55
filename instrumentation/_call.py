"""One LLM call in flight: its span, what the request and response said, and how it ends.

Usage is kept in the canonical GenAI arithmetic of the latest conventions: ``input_tokens`` includes cache
reads and writes, ``output_tokens`` includes reasoning; the cache and reasoning counts are subsets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from costspan.semconv import attributes as A

from ._attribution import current_attribution
from ._endpoints import Endpoint
from ._failures import swallowed
from ._metrics import ClientMetrics

# usage in OpenInference's names, for its spans (see _others)
_OPENINFERENCE_USAGE = {
    A.GEN_AI_USAGE_INPUT_TOKENS: A.LLM_TOKEN_COUNT_PROMPT,
    A.GEN_AI_USAGE_OUTPUT_TOKENS: A.LLM_TOKEN_COUNT_COMPLETION,
    A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: A.LLM_TOKEN_COUNT_PROMPT_CACHE_READ,
    A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: A.LLM_TOKEN_COUNT_PROMPT_CACHE_WRITE,
    A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: A.LLM_TOKEN_COUNT_COMPLETION_REASONING,
}
STREAMING = "gen_ai.request.stream"  # as the official OpenTelemetry GenAI instrumentations write it


class Call:
    """What is known of one call; :meth:`end` writes it on the span and the metrics, once.

    The span is made when the call ends, from the start time, context and request attributes noted when it
    started, so that the SDK takes every attribute in one pass. Nothing sees the span while the call is in
    flight in any case: it is never the current span (the transport makes no spans beneath it).
    """

    __slots__ = (
        "attributes",
        "borrowed",
        "cache_read_tokens",
        "cache_write_1h_tokens",
        "cache_write_5m_tokens",
        "cache_write_tokens",
        "context",
        "ended",
        "endpoint",
        "extra",
        "first_chunk_s",
        "input_tokens",
        "metrics",
        "name",
        "output_tokens",
        "provider_attributes",
        "provider_cost",
        "reasoning_tokens",
        "request_model",
        "response_id",
        "response_model",
        "server_address",
        "server_port",
        "service_tier",
        "start_ns",
        "started",
        "streaming",
        "tracer",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        request_model: str | None,
        streaming: bool,
        server_address: str,
        server_port: int | None,
        *,
        tracer: Tracer | None = None,
        name: str = "",
        attributes: dict[str, Any] | None = None,
        parent: Context | None = None,
        metrics: ClientMetrics | None = None,
        borrowed: Span | None = None,
    ) -> None:
        """A call of costspan's own span (``tracer``, ``name``, the request's ``attributes``, the ``parent``
        context), or one whose span another instrumentation made (``borrowed``: only usage it lacks is added
        to it, see _others)."""
        self.endpoint = endpoint
        self.request_model = request_model
        self.streaming = streaming
        self.server_address = server_address
        self.server_port = server_port
        self.tracer = tracer
        self.name = name
        self.attributes = attributes if attributes is not None else {}
        self.context = parent
        self.metrics = metrics
        self.borrowed = borrowed
        self.start_ns = time.time_ns()
        self.started = time.perf_counter()
        self.ended = False
        self.first_chunk_s: float | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.service_tier: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.cache_write_5m_tokens: int | None = None
        self.cache_write_1h_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.extra: dict[str, Any] | None = None  # other usage: costspan.usage.<catalog usage key>
        self.provider_cost: Decimal | None = None  # what the provider billed (OpenRouter's usage.cost)
        self.provider_attributes: dict[str, Any] | None = None  # usage no catalog unit prices, by its name

    def first_chunk(self) -> None:
        if self.first_chunk_s is None:
            self.first_chunk_s = time.perf_counter() - self.started

    def end(self, error_type: str | None = None, cut_short: bool = False) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            if self.borrowed is not None:
                self._add_usage_to_borrowed(self.borrowed)
            else:
                self._write(error_type, cut_short)
        except Exception:  # never break the application
            swallowed("record an LLM call")

    def _usage(self, attributes: dict[str, Any]) -> None:
        """The usage counts that were read, into ``attributes``."""
        if self.input_tokens is not None:
            attributes[A.GEN_AI_USAGE_INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            attributes[A.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output_tokens
        if self.cache_read_tokens is not None:
            attributes[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read_tokens
        if self.cache_write_tokens is not None:
            attributes[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = self.cache_write_tokens
        if self.cache_write_5m_tokens is not None:
            attributes[A.ANTHROPIC_CACHE_CREATION_5M] = self.cache_write_5m_tokens
        if self.cache_write_1h_tokens is not None:
            attributes[A.ANTHROPIC_CACHE_CREATION_1H] = self.cache_write_1h_tokens
        if self.reasoning_tokens is not None:
            attributes[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_tokens

    def _add_usage_to_borrowed(self, span: Span) -> None:
        counts: dict[str, Any] = {}
        self._usage(counts)
        usage = {key: value for key, value in counts.items() if key.startswith("gen_ai.usage.")}
        present = span.attributes or {}  # type: ignore[attr-defined]
        if A.OPENINFERENCE_SPAN_KIND in present:
            usage = {_OPENINFERENCE_USAGE.get(key, key): value for key, value in usage.items()}
        if not any(key in present for key in usage):
            span.set_attributes(usage)

    def _write(self, error_type: str | None, cut_short: bool) -> None:
        duration = time.perf_counter() - self.started
        attributes = self.attributes
        if self.response_model:
            attributes[A.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id:
            attributes[A.GEN_AI_RESPONSE_ID] = self.response_id
        if self.service_tier:
            key = A.ANTHROPIC_RESPONSE_SERVICE_TIER if self.endpoint.provider == "anthropic" else None
            attributes[key or A.OPENAI_RESPONSE_SERVICE_TIER] = self.service_tier
        self._usage(attributes)
        if self.extra:
            for key, value in self.extra.items():
                attributes[A.COSTSPAN_USAGE_PREFIX + key] = value
        if self.provider_attributes:
            attributes.update(self.provider_attributes)
        if self.provider_cost is not None:
            # the draft convention's attributes, which the collector prices the call at
            attributes[A.GEN_AI_USAGE_COST_AMOUNT] = float(self.provider_cost)
            attributes[A.GEN_AI_USAGE_COST_CURRENCY] = "USD"
            attributes[A.GEN_AI_USAGE_COST_SOURCE] = "provider"
        if self.first_chunk_s is not None and self.streaming:
            attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = self.first_chunk_s
        if cut_short:
            attributes[A.COSTSPAN_STREAM_CUT_SHORT] = True
        if error_type is not None:
            attributes[A.ERROR_TYPE] = error_type
        if self.tracer is not None:
            span = self.tracer.start_span(
                self.name, self.context, SpanKind.CLIENT, attributes, start_time=self.start_ns
            )
            if error_type is not None:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
        if self.metrics is not None:
            self.metrics.add(self, duration, error_type)

    def metric_attributes(self, error_type: str | None) -> Mapping[str, Any]:
        """The attributes of this call's GenAI client metrics."""
        labels: dict[str, Any] = {
            A.GEN_AI_OPERATION_NAME: self.endpoint.operation,
            A.GEN_AI_PROVIDER_NAME: self.endpoint.provider,
            A.SERVER_ADDRESS: self.server_address,
        }
        if self.server_port is not None:
            labels[A.SERVER_PORT] = self.server_port
        if self.request_model:
            labels[A.GEN_AI_REQUEST_MODEL] = self.request_model
        if self.response_model:
            labels[A.GEN_AI_RESPONSE_MODEL] = self.response_model
        if error_type is not None:
            labels[A.ERROR_TYPE] = error_type
        return labels


def start_call(
    endpoint: Endpoint,
    model: str | None,
    streaming: bool,
    server_address: str,
    server_port: int | None,
    *,
    tracer: Tracer,
    metrics: ClientMetrics | None,
    parent: Context,
    extra: Mapping[str, Any] | None = None,
) -> Call:
    """A call of costspan's own span, starting now, with the request attributes every call carries (those
    of the client that made it, ``extra``, and the attribution in effect in ``parent``): the one place both
    hooks, the HTTP transports' and botocore's, make their calls."""
    attributes: dict[str, Any] = {
        A.GEN_AI_OPERATION_NAME: endpoint.operation,
        A.GEN_AI_PROVIDER_NAME: endpoint.provider,
        A.SERVER_ADDRESS: server_address,
        STREAMING: streaming,
    }
    if server_port is not None:
        attributes[A.SERVER_PORT] = server_port
    if model:
        attributes[A.GEN_AI_REQUEST_MODEL] = model
    if extra:
        attributes.update(extra)
    attribution = current_attribution(parent)
    if attribution:
        attributes.update(attribution)
    return Call(
        endpoint,
        model,
        streaming,
        server_address,
        server_port,
        tracer=tracer,
        name=f"{endpoint.operation} {model}" if model else endpoint.operation,
        attributes=attributes,
        parent=parent,
        metrics=metrics,
    )


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its fully qualified class name."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
