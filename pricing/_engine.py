"""The cost engine: resolve a model reference, pick the prices in force, and price usage exactly.

Arithmetic is Decimal throughout. Each priced unit is charged its *leaf* count (its own count minus the
counts of its priced parts, see ``_units``), so cache reads inside ``input_tokens`` or reasoning inside
``output_tokens`` are charged once, at their own rate where the model has one and at the parent's rate
where it has not. Resolutions (``_resolve``) and compiled price plans (``_plan``) are cached, because a
collector prices the same few models millions of times.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from ._catalog import Catalog, PriceSet, prices_from_json
from ._plan import (
    CompiledPrices,
    PricePlan,
    build_plan,
    compile_prices,
    evaluate,
    evaluate_named,
    unpriced_keys,
)
from ._quote import Quote
from ._resolve import Resolution, Resolver
from ._result import (
    ESTIMATED,
    INVALID_USAGE,
    NO_USAGE,
    PRICED,
    SOURCE_LOCAL,
    SOURCE_PROVIDER,
    UNKNOWN_MODEL,
    PriceResult,
)
from ._rules import Rules, default_rules
from ._units import BUCKETS
from ._usage import DEFAULT_TOKEN_LIMIT, NOTHING_NAMED, UsageLike, named_counts, problem_with

if TYPE_CHECKING:
    from ._overrides import Overrides

_ZERO = Decimal(0)
# More than any one call can cost (100 million tokens, the count limit, at the dearest published rate is
# some tens of thousands of dollars): a corrupt figure, which would outweigh every real cost in the sums.
MAX_PROVIDER_COST = Decimal(1_000_000)
_APPORTION_QUANTUM = Decimal("1e-18")
_PLANS_PER_RESOLUTION = 1_000  # periods x contexts; a flood of made-up service tiers cannot grow memory


def to_utc(timestamp: datetime | None) -> datetime:
    if timestamp is None:
        return datetime.now(UTC)
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=UTC)
    if timestamp.tzinfo is UTC:
        return timestamp
    return timestamp.astimezone(UTC)


class PricingEngine:
    """Prices calls against a stack of catalogs: user overrides first, then each catalog in order."""

    def __init__(
        self,
        catalogs: Sequence[Catalog],
        *,
        overrides: Overrides | None = None,
        rules: Rules | None = None,
        token_limit: int = DEFAULT_TOKEN_LIMIT,
    ) -> None:
        if not catalogs:
            raise ValueError("a pricing engine needs at least one catalog")
        self.catalogs = tuple(catalogs)
        self.overrides = overrides
        self.rules = rules or default_rules()
        self.token_limit = token_limit
        self.layers: tuple[Catalog, ...] = (
            (overrides.catalog, *self.catalogs) if overrides and overrides.catalog else self.catalogs
        )
        versions = [c.version for c in self.catalogs]
        if overrides is not None:
            versions.append(overrides.version)
        self.version = " + ".join(versions)
        self._resolve = Resolver(self.layers, self.rules, overrides)
        self._resolutions = self._resolve.cache  # read directly on the hot path
        self._chargeback_prices: dict[str, CompiledPrices] = {}

    # -- public API ----------------------------------------------------------------------------------

    def price(
        self,
        model: str | None,
        usage: UsageLike,
        *,
        provider: str | None = None,
        timestamp: datetime | None = None,
        service_tier: str | None = None,
        context: Mapping[str, str] | None = None,
        provider_cost: Decimal | str | float | None = None,
    ) -> PriceResult:
        """Price one call. Never raises for bad input: problems come back as the result's status."""
        at = to_utc(timestamp)
        result = self._price_locally(model, usage, provider, at, service_tier, context)
        if provider_cost is not None:
            _apply_provider_cost(result, provider_cost)
        return result

    def quote(
        self, model: str, provider: str | None, day: datetime, service_tier: str | None = None
    ) -> Quote | None:
        """The :class:`Quote` of ``model`` on the UTC day of ``day``, or ``None`` when its calls cannot be
        priced by quote (the model is unknown, its price changes within a day, or an override discounts it
        or charges it back): price those with :meth:`price`."""
        found = self._resolutions.get((provider, model)) or self._resolve(provider, model)
        if isinstance(found, str) or found.model.daily_windows:
            return None
        at = to_utc(day)
        plan = self._plan(found, at, service_tier, None)
        compiled = plan.named_only
        if compiled.named_units is None:
            return None
        rules = found.steps + plan.notes if found.steps else plan.notes
        overrides = self.overrides
        if overrides is not None:
            billed, model_id = found.provider.id, found.model.id
            if overrides.chargeback_rule(billed, model_id) is not None or any(
                rule.applies(billed, model_id, at.date()) for rule in overrides.discounts
            ):
                return None
            if found.model.origin:
                rules = (f"override {found.model.origin}", *rules)
        return Quote(
            compiled,
            ESTIMATED if found.estimated else PRICED,
            found.provider.id,
            found.model.id,
            rules,
            self.version,
            self.token_limit,
        )

    def resolve(self, model: str, provider: str | None = None) -> Resolution | None:
        """The catalog entry that prices ``model`` (at ``provider``), or ``None`` when none does."""
        found = self._resolve(provider, model)
        return found if isinstance(found, Resolution) else None

    def unresolved_reason(self, model: str, provider: str | None = None) -> str | None:
        found = self._resolve(provider, model)
        return found if isinstance(found, str) else None

    def price_set_at(self, resolution: Resolution, at: datetime) -> PriceSet:
        return resolution.model.price_set_at(to_utc(at))

    # -- pricing -------------------------------------------------------------------------------------

    def _price_locally(
        self,
        model: str | None,
        usage: UsageLike,
        provider: str | None,
        at: datetime,
        service_tier: str | None,
        context: Mapping[str, str] | None,
    ) -> PriceResult:
        version = self.version
        named = named_counts(usage)
        other = usage.other
        empty = named == NOTHING_NAMED and not other
        if not model or not isinstance(model, str):
            # an HTTP-level span knows a call happened, but neither model nor usage
            status = NO_USAGE if empty else UNKNOWN_MODEL
            return PriceResult(status, catalog_version=version, detail="no model name")
        found = self._resolutions.get((provider, model)) or self._resolve(provider, model)
        if isinstance(found, str):
            return PriceResult(NO_USAGE if empty else UNKNOWN_MODEL, catalog_version=version, detail=found)
        if empty:
            return PriceResult(
                NO_USAGE, provider=found.provider.id, model=found.model.id, catalog_version=version,
                detail="no usage reported",
            )  # fmt: skip
        problem = problem_with(named, other, self.token_limit)
        if problem is not None:
            return PriceResult(
                INVALID_USAGE, provider=found.provider.id, model=found.model.id, catalog_version=version,
                detail=problem,
            )  # fmt: skip
        plan = self._plan(found, at, service_tier, context)
        if found.minimum_seconds is not None and other:
            other = _billed_seconds(found, other)
        compiled = plan.compiled if other else plan.named_only
        fast = None if compiled.named_units is None else evaluate_named(compiled, named)
        outcome = fast if fast is not None else evaluate(compiled, named, other)
        if isinstance(outcome, str):
            return PriceResult(
                INVALID_USAGE, provider=found.provider.id, model=found.model.id, catalog_version=version,
                detail=outcome,
            )  # fmt: skip
        amounts, total = outcome
        rules = found.steps + plan.notes if found.steps else plan.notes
        if plan.cache_1h_note is not None and usage.cache_write_1h_tokens:
            rules = (*rules, plan.cache_1h_note)
        overrides = self.overrides
        if overrides is not None:
            amounts, applied = overrides.discount(found.provider.id, found.model.id, at, amounts)
            if applied:
                rules = (*rules, *applied)
                total = sum(amounts, _ZERO)
            if found.model.origin:
                rules = (f"override {found.model.origin}", *rules)
        result = PriceResult(
            ESTIMATED if found.estimated else PRICED,
            total,
            SOURCE_LOCAL,
            found.provider.id,
            found.model.id,
            amounts,
            rules,
            version,
            plan.price_start,
        )
        if other:
            unpriced = unpriced_keys(other, plan.compiled, found.catalog.units)
            if unpriced:
                result.warnings = ("reported but not priced for this model: " + ", ".join(unpriced),)
        if overrides is not None:
            self._apply_chargeback(result, found, named, other)
        return result

    def _plan(
        self, found: Resolution, at: datetime, service_tier: str | None, context: Mapping[str, str] | None
    ) -> PricePlan:
        # Plans by request context, then by price period: two small dicts keyed by a string and an int.
        by_period = found.plans.get(
            context_key := service_tier if not context else (service_tier, *context.items())
        )
        if by_period is None:
            if len(found.plans) >= _PLANS_PER_RESOLUTION:
                found.plans.clear()
            by_period = found.plans[context_key] = {}
        model = found.model
        # Model.period, inlined for the common case of dated prices only
        period = model.period(at) if model.daily_windows else bisect_right(model.change_days, at.toordinal())
        plan = by_period.get(period)
        if plan is None:
            ctx = self.rules.price_context(service_tier)
            if context:
                ctx = {**ctx, **context}
            plan = by_period[period] = build_plan(found, at, ctx, self.rules)
        return plan

    def _apply_chargeback(
        self, result: PriceResult, found: Resolution, named: tuple, other: Mapping | None
    ) -> None:
        """What the team is charged internally: an internal rate card and/or a markup on the cost."""
        assert self.overrides is not None and result.cost_usd is not None
        rule = self.overrides.chargeback_rule(found.provider.id, found.model.id)
        if rule is None:
            return
        base = result.cost_usd
        if rule.prices is not None:
            compiled = self._chargeback_prices.get(rule.origin)
            if compiled is None:
                units = found.catalog.units
                compiled = compile_prices(prices_from_json(rule.prices, units), units)
                self._chargeback_prices[rule.origin] = compiled
            outcome = evaluate(compiled, named, other)
            if isinstance(outcome, str):
                result.warnings = (*result.warnings, f"chargeback rate not applied: {outcome}")
                return
            base = outcome[1]
        result.chargeback_usd = base * (1 + rule.markup_percent / 100)
        result.rules = (*result.rules, f"chargeback {rule.origin}")


def _billed_seconds(found: Resolution, other: Mapping) -> Mapping:
    """Apply a per-request minimum duration (Groq Whisper bills at least 10 seconds)."""
    rule = found.minimum_seconds
    assert rule is not None
    seconds = other.get("audio_seconds") or other.get("input_audio_seconds")
    if seconds is None:
        return other
    billed = max(seconds, rule.seconds) if seconds > 0 else 0
    return {**other, "audio_seconds": billed, "input_audio_seconds": billed}


def _apply_provider_cost(result: PriceResult, provider_cost: Decimal | str | float) -> None:
    """A cost the provider reported (OpenRouter's ``usage.cost``) is what was billed: it wins."""
    try:
        cost = provider_cost if isinstance(provider_cost, Decimal) else Decimal(str(provider_cost))
    except (InvalidOperation, ValueError):
        result.warnings = (
            *result.warnings,
            f"provider-reported cost ignored: not a number: {provider_cost!r}",
        )
        return
    if not cost.is_finite() or cost < 0:
        result.warnings = (*result.warnings, f"provider-reported cost ignored: {provider_cost!r}")
        return
    if cost > MAX_PROVIDER_COST:
        result.warnings = (
            *result.warnings,
            f"provider-reported cost ignored: implausibly large: {provider_cost!r} "
            f"(limit {MAX_PROVIDER_COST})",
        )
        return
    result.local_cost_usd = result.cost_usd
    result.cost_usd = cost
    result.source = SOURCE_PROVIDER
    if result.local_cost_usd and result.amounts is not None:
        result.amounts = _apportion(cost, result.amounts, result.local_cost_usd)
    else:
        result.amounts = (_ZERO,) * (len(BUCKETS) - 1) + (cost,)  # all of it under "other"


def _apportion(total: Decimal, amounts: Sequence[Decimal], local_total: Decimal) -> list[Decimal]:
    """Split a billed total in the proportions of the local amounts, summing to the total exactly."""
    scale = total / local_total
    shares = [(amount * scale).quantize(_APPORTION_QUANTUM) for amount in amounts]
    largest = max(range(len(shares)), key=shares.__getitem__)
    shares[largest] += total - sum(shares, _ZERO)
    return shares
