"""The canonical GenAI call: one record per LLM, embedding, image or audio call, whatever dialect reported it.

Token counts follow the OpenTelemetry GenAI arithmetic: ``input_tokens`` includes cache reads and cache
writes, ``output_tokens`` includes reasoning; ``cache_write_1h_tokens`` is the part of
``cache_write_tokens`` written with a one-hour lifetime. The processors fill the record in turn (normalize,
dedupe, price, attribute, redact) and the exporters write it as a row of the ``llm_calls`` table.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

# What a span is, once classified.
LLM: Final = "llm"  # a priced call: chat, text completion, generate_content, embeddings, image, audio
AGENT: Final = "agent"
TOOL: Final = "tool"
WORKFLOW: Final = "workflow"
RETRIEVAL: Final = "retrieval"
OTHER: Final = "other"

# Operations of LLM calls (gen_ai.operation.name values, and what other dialects say for them).
CHAT: Final = "chat"
TEXT_COMPLETION: Final = "text_completion"
GENERATE_CONTENT: Final = "generate_content"
EMBEDDINGS: Final = "embeddings"
IMAGE: Final = "image_generation"
AUDIO: Final = "audio"
RERANK: Final = "rerank"


# Records are compared by identity. ``__init__`` sets the identity only; every other field reads its class
# default until a processor sets it, because normalizing a span must be cheap. A plain class, not a
# dataclass: compiled (``COSTSPAN_COMPILE=1``), its class defaults are what a new record starts with.
class GenAICall:
    """A canonical LLM call (``kind == LLM``), or a GenAI span of another kind (agent, tool ...)."""

    # identity
    trace_id: str
    span_id: str
    parent_span_id: str | None
    start_time_ns: int
    end_time_ns: int
    service_name: str | None
    kind: str
    dialect: str
    operation: str | None = None
    name: str | None = None  # agent, tool or workflow name for spans that are not calls
    # what was called
    provider: str | None = None
    server_address: str | None = None
    local_server: bool = False  # the server is on this machine or a private network
    request_model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    service_tier: str | None = None
    streaming: bool | None = None
    time_to_first_chunk_s: float | None = None
    error_type: str | None = None
    # usage, in the canonical arithmetic
    input_tokens: Any = None
    output_tokens: Any = None
    cache_read_tokens: Any = None
    cache_write_tokens: Any = None
    cache_write_1h_tokens: Any = None
    reasoning_tokens: Any = None
    other_usage: dict[str, Any] | None = None  # other pricing units by their catalog usage key
    provider_cost: Decimal | None = None  # billed cost the provider reported (wins over local pricing)
    reported_cost: float | None = None  # another tool's own estimate (OpenLIT, Logfire, OpenInference)
    # pricing (the price processor)
    cost_usd: Decimal | None = None
    cost_source: str | None = None
    pricing_status: str | None = None
    cost_amounts: Sequence[Decimal] | None = None  # by pricing BUCKETS
    pricing_provider: str | None = None
    pricing_model: str | None = None
    pricing_rules: tuple[str, ...] = ()
    catalog_version: str | None = None
    chargeback_usd: Decimal | None = None
    # attribution (the attribute processor)
    user_id: str | None = None
    customer_id: str | None = None
    feature: str | None = None
    team: str | None = None
    environment: str | None = None
    agent_name: str | None = None
    step: str | None = None
    conversation_id: str | None = None
    prompt_key: str | None = None
    prompt_version: str | None = None
    tags: dict[str, str] | None = None  # created when the first tag is set
    # bookkeeping
    duplicate_of: str | None = None  # span id of the record this one duplicates
    input_hash: str | None = None  # keyed hash of the input, when configured (redact processor)
    flags: tuple[str, ...] = ()  # problems found on the way, for people to read

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        start_time_ns: int,
        end_time_ns: int,
        service_name: str | None,
        kind: str,
        dialect: str,
        operation: str | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.start_time_ns = start_time_ns
        self.end_time_ns = end_time_ns
        self.service_name = service_name
        self.kind = kind
        self.dialect = dialect
        self.operation = operation

    def __repr__(self) -> str:
        return (
            f"GenAICall(trace_id={self.trace_id!r}, span_id={self.span_id!r}, kind={self.kind!r}, "
            f"dialect={self.dialect!r}, model={self.model!r}, cost_usd={self.cost_usd!r})"
        )

    def flag(self, problem: str) -> None:
        self.flags = (*self.flags, problem)

    @property
    def duration_s(self) -> float:
        return max(0, self.end_time_ns - self.start_time_ns) / 1e9

    @property
    def other(self) -> dict[str, Any] | None:
        """``other_usage`` under the name pricing reads (a record prices as a ``costspan.pricing.Usage``)."""
        return self.other_usage

    @property
    def model(self) -> str | None:
        """The model to price: what the response says was used, else what was asked for."""
        return self.response_model or self.request_model

    def usage_count(self) -> int:
        """How many usage figures the record carries: the richer of two duplicates has more."""
        other = self.other_usage
        return (
            (self.input_tokens is not None)
            + (self.output_tokens is not None)
            + (self.cache_read_tokens is not None)
            + (self.cache_write_tokens is not None)
            + (self.cache_write_1h_tokens is not None)
            + (self.reasoning_tokens is not None)
            + (len(other) if other else 0)
        )
