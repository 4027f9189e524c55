"""price: exact cost of every LLM record, from the pricing engine.

The cost, its breakdown and its provenance go on the record (``cost_usd``, ``cost_amounts``,
``pricing_status``, ``cost_source`` ...); exporters write them as the ``llm_calls`` columns and, on
forwarded spans, as ``gen_ai.usage.cost.*`` and ``costspan.cost.*`` attributes
(:func:`costspan.semconv.enrich.cost_attributes`). A cost the provider billed wins. An unknown model, a
call without usage and nonsense counts are statuses, never drops; a failed attempt without usage costs
zero (``failed``). A model on a local server (Ollama, vLLM)
that neither the catalog nor an override prices costs zero, with status ``self_hosted``; a local gateway
in front of a provider names a model the catalog knows, and is priced as that provider's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from costspan.pricing import (
    INVALID_USAGE,
    NO_USAGE,
    NOTHING_NAMED,
    SOURCE_LOCAL,
    UNKNOWN_MODEL,
    Catalog,
    CatalogError,
    OverrideError,
    PricingEngine,
    Quote,
    load_engine,
    named_counts,
)
from costspan.semconv import LLM, SELF_HOSTED, GenAICall

from ._base import ConfigError, Processor, check_keys, register
from ._batch import SpanBatch

SELF_HOSTED_STATUS: Final = "self_hosted"
# An attempt that failed (a 429, a 5xx, a timeout) and reported no usage: providers bill none, so it costs
# zero, said so (an SDK's retry of it is a record of its own, and carries the call's cost).
FAILED_STATUS: Final = "failed"
_ZERO: Final = Decimal(0)
_NS_PER_DAY: Final = 86_400 * 1_000_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def price(batch: SpanBatch, counts: Counter[str], engine: PricingEngine) -> SpanBatch:
    # Calls group by quote (provider, model, service tier, UTC day): one resolution per group, then one
    # evaluation per call. Calls a quote does not cover (other usage, a provider-reported cost, bad counts,
    # an override) are priced one by one.
    quotes: dict[tuple[Any, ...], Quote | None] = {}
    statuses: dict[str, int] = {}
    version = engine.version
    for call in batch.calls:
        if call is None or call.kind != LLM:
            continue
        model = call.response_model or call.request_model
        named = named_counts(call)
        if call.other_usage is None and call.provider_cost is None:
            if call.error_type is not None and named == NOTHING_NAMED:
                call.pricing_status = FAILED_STATUS
                call.cost_usd = _ZERO
                call.cost_source = SOURCE_LOCAL
                call.catalog_version = version
                statuses[FAILED_STATUS] = statuses.get(FAILED_STATUS, 0) + 1
                continue
            if not model and named == NOTHING_NAMED:
                # an HTTP-level record: a call happened, with neither model nor usage. What
                # PricingEngine.price says of it, without building a result (one span in five, under calls)
                call.pricing_status = NO_USAGE
                call.catalog_version = version
                statuses[NO_USAGE] = statuses.get(NO_USAGE, 0) + 1
                continue
            if type(model) is str and named != NOTHING_NAMED and not call.cache_write_1h_tokens:
                day = call.start_time_ns // _NS_PER_DAY
                key = (call.provider, model, call.service_tier, day)
                # two lookups rather than a sentinel default, so that the quote keeps its type (compiled)
                if key in quotes:
                    quote = quotes[key]
                else:
                    quote = quotes[key] = engine.quote(
                        model, call.provider, _EPOCH + timedelta(days=day), call.service_tier
                    )
                outcome = quote.cost(named) if quote is not None else None
                if quote is not None and outcome is not None:
                    call.cost_amounts, call.cost_usd = outcome
                    call.cost_source = SOURCE_LOCAL
                    status = call.pricing_status = quote.status
                    call.pricing_provider = quote.provider
                    call.pricing_model = quote.model
                    call.pricing_rules = quote.rules
                    call.catalog_version = quote.catalog_version
                    statuses[status] = statuses.get(status, 0) + 1
                    continue
        status = _price_one(call, model, engine)
        statuses[status] = statuses.get(status, 0) + 1
    counts.update(statuses)
    return batch


def _price_one(call: GenAICall, model: str | None, engine: PricingEngine) -> str:
    result = engine.price(
        model,
        call,  # a record carries the usage fields under pricing's names
        provider=call.provider,
        timestamp=datetime.fromtimestamp(call.start_time_ns // 1_000_000_000, UTC),
        service_tier=call.service_tier,
        provider_cost=call.provider_cost,
    )
    status = result.status
    if (
        status == UNKNOWN_MODEL
        and result.cost_usd is None
        and (call.provider == SELF_HOSTED or call.local_server)
    ):
        # a local model (Ollama, vLLM) without a configured rate: free, and said so. A local gateway in
        # front of a provider (a LiteLLM proxy) names a model the catalog knows, and is priced as such.
        status = SELF_HOSTED_STATUS
        call.cost_usd = _ZERO
        call.cost_source = "local"
    else:
        call.cost_usd = result.cost_usd
        call.cost_source = result.source
        call.cost_amounts = result.amounts
    call.pricing_status = status
    call.pricing_provider = result.provider
    call.pricing_model = result.model
    call.pricing_rules = result.rules
    call.catalog_version = result.catalog_version
    call.chargeback_usd = result.chargeback_usd
    if result.detail and status in (UNKNOWN_MODEL, INVALID_USAGE):
        call.flag(result.detail)
    for warning in result.warnings:
        call.flag(warning)
    return status


@register("price")
def _factory(config: Mapping[str, Any], path: str) -> Processor:
    engine = engine_from_config(config, path)
    return Processor("price", lambda batch, counts: price(batch, counts, engine))


def engine_from_config(config: Mapping[str, Any], path: str = "processors.price") -> PricingEngine:
    """The engine the price processor's settings describe (``data_dir``, ``overrides``, ``catalogs``): the
    one that prices calls, and that the web console shows the prices of. ConfigError for a mistake."""
    check_keys(config, {"data_dir", "overrides", "catalogs"}, path)
    catalogs = config.get("catalogs")
    if catalogs is not None and (
        not isinstance(catalogs, list) or not all(isinstance(c, str) for c in catalogs)
    ):
        raise ConfigError(f"{path}.catalogs: a list of catalog file paths")
    try:
        engine = load_engine(
            config.get("data_dir"),
            overrides=config.get("overrides"),
            catalogs=[Catalog.load(c) for c in catalogs] if catalogs else None,
        )
    except (CatalogError, OverrideError, OSError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return engine
