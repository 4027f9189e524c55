"""The attributes costspan writes on a span it forwards: cost (the draft GenAI cost convention), its
breakdown and provenance (``costspan.*``), and the attribution it found."""

from __future__ import annotations

from typing import Any

from . import attributes as A
from .record import GenAICall

_ATTRIBUTION = (
    ("user_id", A.COSTSPAN_USER_ID),
    ("customer_id", A.COSTSPAN_CUSTOMER_ID),
    ("feature", A.COSTSPAN_FEATURE),
    ("team", A.COSTSPAN_TEAM),
    ("environment", A.COSTSPAN_ENVIRONMENT),
    ("agent_name", A.COSTSPAN_AGENT),
    ("prompt_key", A.COSTSPAN_PROMPT_KEY),
    ("prompt_version", A.COSTSPAN_PROMPT_VERSION),
)


def cost_attributes(call: GenAICall) -> dict[str, Any]:
    """Attributes to add to the call's span. Amounts are doubles here: OTLP has no decimal type."""
    # imported here: costspan.semconv is imported by instrumented applications, which never price
    from costspan.pricing import BUCKETS

    out: dict[str, Any] = {A.COSTSPAN_DIALECT: call.dialect}
    if call.pricing_status is not None:
        out[A.COSTSPAN_PRICING_STATUS] = call.pricing_status
    if call.cost_usd is not None:
        out[A.GEN_AI_USAGE_COST_AMOUNT] = float(call.cost_usd)
        out[A.GEN_AI_USAGE_COST_CURRENCY] = "USD"
        out[A.GEN_AI_USAGE_COST_SOURCE] = call.cost_source or "local"
    if call.cost_amounts is not None:
        for bucket, amount in zip(BUCKETS, call.cost_amounts, strict=True):
            out[A.COSTSPAN_COST_PREFIX + bucket] = float(amount)
    if call.pricing_model:
        out[A.COSTSPAN_PRICING_MODEL] = call.pricing_model
    if call.pricing_provider:
        out[A.COSTSPAN_PRICING_PROVIDER] = call.pricing_provider
    if call.catalog_version:
        out[A.COSTSPAN_PRICING_CATALOG] = call.catalog_version
    if call.pricing_rules:
        out[A.COSTSPAN_PRICING_RULES] = list(call.pricing_rules)
    if call.cache_write_1h_tokens:
        out[A.COSTSPAN_USAGE_CACHE_WRITE_1H] = call.cache_write_1h_tokens
    if call.duplicate_of:
        out[A.COSTSPAN_DUPLICATE_OF] = call.duplicate_of
    if call.input_hash:
        out[A.COSTSPAN_INPUT_HASH] = call.input_hash
    if call.flags:
        out[A.COSTSPAN_FLAGS] = list(call.flags)
    for name, key in _ATTRIBUTION:
        value = getattr(call, name)
        if value is not None:
            out[key] = value
    for tag, value in (call.tags or {}).items():
        out[A.COSTSPAN_TAG_PREFIX + tag] = value
    return out
