"""The cost engine: resolve a model reference, pick the prices in force, and price usage exactly.

Arithmetic is Decimal throughout. Each priced unit is charged its *leaf* count (its own count minus the
counts of its priced parts, see ``_units``), so cache reads inside ``input_tokens`` or reasoning inside
``output_tokens`` are charged once, at their own rate where the model has one and at the parent's rate
where it has not. Resolution and compiled price plans are cached, because a collector prices the same
few models millions of times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from . import _result as R
from ._catalog import Catalog, Model, Price, PriceSet, Provider, TieredPrice, prices_from_json
from ._names import candidates
from ._result import PriceResult
from ._rules import Rules, default_rules
from ._units import BUCKETS, UnitRegistry
from ._usage import DEFAULT_TOKEN_LIMIT, USAGE_KEY_TO_FIELD, Usage, problem_with

if TYPE_CHECKING:
    from ._overrides import Overrides

_BUCKET_INDEX = {bucket: i for i, bucket in enumerate(BUCKETS)}
_CACHE_LIMIT = 100_000  # entries per cache; cleared when full so hostile model names cannot grow memory
_ZERO = Decimal(0)
_APPORTION_QUANTUM = Decimal("1e-18")


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a model reference led: the catalog entry that prices it, and how it was found."""

    catalog: Catalog
    provider: Provider  # the provider the call is attributed to
    model: Model
    owner: Provider  # the provider whose list holds the model (differs on a fallback, e.g. azure -> openai)
    steps: tuple[str, ...]
    estimated: bool

    @property
    def via_fallback(self) -> bool:
        return self.owner is not self.provider


@dataclass(frozen=True, slots=True)
class _Line:
    """One priced unit of a plan."""

    usage_key: str
    field: str | None  # Usage attribute holding the count, or None for a key of ``Usage.other``
    per: int
    prices: tuple[Decimal, ...]  # the price at each tier level (one level when the price is flat)
    rates: tuple[Decimal, ...] | None  # the same per single unit, when ``per`` is a power of ten
    bucket: int
    parts: tuple[int, ...]  # indices of earlier lines that are parts of this unit
    per_request: bool


@dataclass(frozen=True, slots=True)
class _Lines:
    lines: tuple[_Line, ...]
    tier_starts: tuple[int, ...]  # ascending input-token thresholds of the tiered prices


@dataclass(frozen=True, slots=True)
class _Plan:
    lines: _Lines
    notes: tuple[str, ...]
    price_start: str | None
    prices: Mapping[str, Price]
    cache_1h_note: str | None  # said only when the call wrote one-hour cache


def _pow10_exponent(per: int) -> int | None:
    exponent = 0
    while per > 1 and per % 10 == 0:
        per //= 10
        exponent += 1
    return exponent if per == 1 else None


def _as_decimal(value: int | float | Decimal) -> Decimal | int:
    if type(value) is float:
        return Decimal(repr(value))
    return value


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
        self._resolutions: dict[tuple[str | None, str], Resolution | str] = {}
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._context_cache: dict[str | None, tuple[tuple[str, str], ...]] = {}
        self._chargeback_lines: dict[str, _Lines] = {}

    # -- public API ----------------------------------------------------------------------------------

    def price(
        self,
        model: str | None,
        usage: Usage,
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
            self._apply_provider_cost(result, provider_cost)
        return result

    def resolve(self, model: str, provider: str | None = None) -> Resolution | None:
        """The catalog entry that prices ``model`` (at ``provider``), or ``None`` when none does."""
        found = self._resolve(provider, model)
        return found if isinstance(found, Resolution) else None

    def unresolved_reason(self, model: str, provider: str | None = None) -> str | None:
        found = self._resolve(provider, model)
        return found if isinstance(found, str) else None

    def price_set_at(self, resolution: Resolution, at: datetime) -> PriceSet:
        return resolution.model.price_set_at(to_utc(at))

    # -- resolution ----------------------------------------------------------------------------------

    def _resolve(self, provider: str | None, model: str) -> Resolution | str:
        key = (provider, model)
        found = self._resolutions.get(key)
        if found is None:
            found = self._resolve_uncached(provider, model)
            if len(self._resolutions) >= _CACHE_LIMIT:
                self._resolutions.clear()
            self._resolutions[key] = found
        return found

    def _resolve_uncached(self, provider: str | None, model: str) -> Resolution | str:
        model_ref = model.strip().lower()
        provider_ref = provider.strip().lower() if provider else None
        if provider_ref == "litellm":  # LiteLLM reports itself; the real provider is the model's prefix
            provider_ref = None
        steps: list[str] = []
        if self.overrides is not None:
            aliased = self.overrides.alias_for(provider_ref, model_ref)
            if aliased is not None:
                provider_ref, model_ref, origin = aliased
                steps.append(f"alias {origin}")
        if provider_ref is not None and provider_ref in self.rules.provider_aliases:
            steps.append(f"provider '{provider_ref}' read as '{self.rules.provider_aliases[provider_ref]}'")
            provider_ref = self.rules.provider_aliases[provider_ref]
        forms = list(candidates(provider_ref, model_ref, self.rules))
        for estimated in (False, True):
            for form in forms:
                if form.estimated is not estimated:
                    continue
                for catalog in self.layers:
                    hit = self._find(catalog, form.provider, form.model)
                    if hit is not None:
                        prov, owner, found = hit
                        form_steps = [*steps, form.step] if form.step else steps
                        if owner is not prov:
                            form_steps = [*form_steps, f"'{prov.id}' falls back to '{owner.id}' prices"]
                        return Resolution(catalog, prov, found, owner, tuple(form_steps), form.estimated)
        if provider_ref is not None and all(c.provider(provider_ref) is None for c in self.layers):
            return f"provider {provider_ref!r} is not in the catalog"
        return f"no catalog entry matches model {model_ref!r}" + (
            f" at provider {provider_ref!r}" if provider_ref else ""
        )

    @staticmethod
    def _find(
        catalog: Catalog, provider_ref: str | None, model_ref: str
    ) -> tuple[Provider, Provider, Model] | None:
        """genai-prices' lookup: the provider by id or clause (or by the model's name), then its models in
        order, then its fallback providers' models; a compact date (-20251211) is retried dashed."""
        if provider_ref is not None:
            prov = catalog.provider(provider_ref)
            if prov is None:
                wildcard = catalog.provider("*")
                if wildcard is None:
                    return None
                prov = wildcard
        else:
            prov = catalog.provider_for_model(model_ref)
            if prov is None:
                return catalog.any_provider_model(model_ref) if catalog.search_all_providers else None
        for ref in _ref_forms(model_ref):
            found = prov.find_model(ref)
            if found is not None:
                return prov, prov, found
            for fallback_id in prov.fallback_model_providers:
                owner = next((p for p in catalog.providers if p.id == fallback_id), None)
                if owner is not None and (found := owner.find_model(ref)) is not None:
                    return prov, owner, found
        if catalog.search_all_providers and provider_ref is not None and prov.id != "*":
            wildcard = catalog.provider("*")
            if wildcard is not None and (found := wildcard.find_model(model_ref)) is not None:
                return wildcard, wildcard, found
        return None

    # -- plans ---------------------------------------------------------------------------------------

    def _context(self, service_tier: str | None) -> tuple[tuple[str, str], ...]:
        ctx = self._context_cache.get(service_tier)
        if ctx is None:
            ctx = tuple(sorted(self.rules.price_context(service_tier).items()))
            self._context_cache[service_tier] = ctx
        return ctx

    def _plan(self, resolution: Resolution, at: datetime, ctx: tuple[tuple[str, str], ...]) -> _Plan:
        model = resolution.model
        key = (
            model,
            resolution.owner,
            resolution.via_fallback,
            at if model.has_time_of_day else at.date(),
            ctx,
        )
        plan = self._plans.get(key)
        if plan is None:
            plan = self._build_plan(resolution, at, dict(ctx))
            if len(self._plans) >= _CACHE_LIMIT:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _build_plan(self, resolution: Resolution, at: datetime, ctx: dict[str, str]) -> _Plan:
        model = resolution.model
        price_set = model.price_set_at(at)
        prices: dict[str, Price] = dict(price_set.prices)
        notes: list[str] = []
        if price_set.when is not None:
            notes.append(f"price {price_set.when.describe()}")
        variant_keys: set[str] = set()
        # Like genai-prices, a model reached through a fallback provider is priced at standard rates.
        if ctx and not resolution.via_fallback:
            chosen: dict[str, Price] = {}
            for variant in model.variants:
                if variant.when is not None and not variant.when.active(at):
                    continue
                if all(ctx.get(k) == v for k, v in variant.context.items()):
                    for price_key, price in variant.prices.items():
                        chosen.setdefault(price_key, price)
                    label = ",".join(f"{k}={v}" for k, v in variant.context.items())
                    notes.append(f"variant {label}" + (f" {variant.when.describe()}" if variant.when else ""))
                    variant_keys.update(k for k, _ in variant.context.items())
            prices.update(chosen)
        units = resolution.catalog.units
        if ctx.get("processing") == "batch" and "processing" not in variant_keys:
            batch = self.rules.batch_factors.get(resolution.owner.id)
            if batch is not None:
                factor, source = batch
                prices = _scale_token_prices(prices, factor, units)
                notes.append(f"batch x{factor} on token prices ({source})")
        rules = self.rules
        deployment = ctx.get("deployment")
        if deployment is not None:
            factor = rules.deployment_factors.get(resolution.provider.id, {}).get(deployment)
            if factor is not None:
                prices = _scale_token_prices(prices, factor, units)
                source = rules.deployment_sources[resolution.provider.id]
                notes.append(f"{deployment} deployment x{factor} on token prices ({source})")
        if (
            "cache_write_mtok" in prices
            and "cache_write_1h_mtok" not in prices
            and "input_mtok" in prices
            and resolution.owner.id in rules.cache_1h_providers
            and rules.cache_1h_model_contains in model.id.lower()
        ):
            prices["cache_write_1h_mtok"] = _scaled(prices["input_mtok"], rules.cache_1h_input_multiplier)
            cache_1h_note = (
                f"1h cache write at {rules.cache_1h_input_multiplier}x input ({rules.cache_1h_source})"
            )
        else:
            cache_1h_note = None
        price_start = (
            price_set.when.start_date.isoformat() if price_set.when and price_set.when.start_date else None
        )
        return _Plan(_compile_lines(prices, units), tuple(notes), price_start, prices, cache_1h_note)

    # -- arithmetic ----------------------------------------------------------------------------------

    def _price_locally(
        self,
        model: str | None,
        usage: Usage,
        provider: str | None,
        at: datetime,
        service_tier: str | None,
        context: Mapping[str, str] | None,
    ) -> PriceResult:
        version = self.version
        if not model or not isinstance(model, str):
            return PriceResult(R.UNKNOWN_MODEL, catalog_version=version, detail="no model name")
        found = self._resolve(provider, model)
        if isinstance(found, str):
            status = R.NO_USAGE if usage.is_empty() else R.UNKNOWN_MODEL
            return PriceResult(status, catalog_version=version, detail=found)
        if usage.is_empty():
            return PriceResult(
                R.NO_USAGE,
                provider=found.provider.id,
                model=found.model.id,
                catalog_version=version,
                detail="no usage reported",
            )
        problem = problem_with(usage, self.token_limit)
        if problem is not None:
            return PriceResult(
                R.INVALID_USAGE,
                provider=found.provider.id,
                model=found.model.id,
                catalog_version=version,
                detail=problem,
            )
        ctx = self._context(service_tier)
        if context:
            ctx = tuple(sorted({**dict(ctx), **context}.items()))
        plan = self._plan(found, at, ctx)
        usage = self._billed_usage(found, usage)
        outcome = _evaluate(plan.lines, usage)
        if isinstance(outcome, str):
            return PriceResult(
                R.INVALID_USAGE,
                provider=found.provider.id,
                model=found.model.id,
                catalog_version=version,
                detail=outcome,
            )
        amounts = outcome
        rules = found.steps + plan.notes if found.steps else plan.notes
        if plan.cache_1h_note is not None and usage.cache_write_1h_tokens:
            rules = (*rules, plan.cache_1h_note)
        if self.overrides is not None:
            amounts, applied = self.overrides.discount(found.owner.id, found.model.id, at, amounts)
            rules = (*rules, *applied)
        total = sum(amounts, _ZERO)
        result = PriceResult(
            R.ESTIMATED if found.estimated else R.PRICED,
            cost_usd=total,
            source=R.SOURCE_LOCAL,
            provider=found.provider.id,
            model=found.model.id,
            breakdown=dict(zip(BUCKETS, amounts)),  # noqa: B905 - both have six entries by construction
            rules=rules,
            catalog_version=version,
            price_start=plan.price_start,
        )
        if found.model.origin:
            result.rules = (f"override {found.model.origin}", *result.rules)
        if usage.other:
            unpriced = _unpriced_keys(usage.other, plan.lines, found.catalog.units)
            if unpriced:
                result.warnings.append("reported but not priced for this model: " + ", ".join(unpriced))
        if self.overrides is not None:
            self._apply_chargeback(result, found, usage)
        return result

    def _apply_chargeback(self, result: PriceResult, found: Resolution, usage: Usage) -> None:
        """What the team is charged internally: an internal rate card and/or a markup on the cost."""
        assert self.overrides is not None and result.cost_usd is not None
        rule = self.overrides.chargeback_rule(found.owner.id, found.model.id)
        if rule is None:
            return
        base = result.cost_usd
        if rule.prices is not None:
            lines = self._chargeback_lines.get(rule.origin)
            if lines is None:
                lines = _compile_lines(
                    prices_from_json(rule.prices, found.catalog.units), found.catalog.units
                )
                self._chargeback_lines[rule.origin] = lines
            amounts = _evaluate(lines, usage)
            if isinstance(amounts, str):
                result.warnings.append(f"chargeback rate not applied: {amounts}")
                return
            base = sum(amounts, _ZERO)
        result.chargeback_usd = base * (1 + rule.markup_percent / 100)
        result.rules = (*result.rules, f"chargeback {rule.origin}")

    def _billed_usage(self, found: Resolution, usage: Usage) -> Usage:
        """Apply per-request minimums (Groq Whisper bills at least 10 seconds)."""
        if not usage.other:
            return usage
        for rule in self.rules.minimum_billed_seconds:
            if found.owner.id != rule.provider or found.model.id not in rule.models:
                continue
            seconds = usage.other.get("audio_seconds") or usage.other.get("input_audio_seconds")
            if seconds is None:
                return usage
            billed = max(seconds, rule.seconds) if seconds > 0 else 0
            other = {**usage.other, "audio_seconds": billed, "input_audio_seconds": billed}
            return Usage(
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
                usage.cache_write_1h_tokens,
                usage.reasoning_tokens,
                other,
            )
        return usage

    @staticmethod
    def _apply_provider_cost(result: PriceResult, provider_cost: Decimal | str | float) -> None:
        """A cost the provider reported (OpenRouter's ``usage.cost``) is what was billed: it wins."""
        try:
            cost = provider_cost if isinstance(provider_cost, Decimal) else Decimal(str(provider_cost))
        except (InvalidOperation, ValueError):
            result.warnings.append(f"provider-reported cost ignored: not a number: {provider_cost!r}")
            return
        if not cost.is_finite() or cost < 0:
            result.warnings.append(f"provider-reported cost ignored: {provider_cost!r}")
            return
        result.local_cost_usd = result.cost_usd
        result.cost_usd = cost
        result.source = R.SOURCE_PROVIDER
        if result.local_cost_usd and result.breakdown is not None:
            result.breakdown = _apportion(cost, result.breakdown, result.local_cost_usd)
        else:
            result.breakdown = {**dict.fromkeys(BUCKETS, _ZERO), "other": cost}


def _apportion(total: Decimal, breakdown: dict[str, Decimal], local_total: Decimal) -> dict[str, Decimal]:
    """Split a billed total in the proportions of the local breakdown, summing to the total exactly."""
    scale = total / local_total
    shares = {k: (v * scale).quantize(_APPORTION_QUANTUM) for k, v in breakdown.items()}
    largest = max(shares, key=lambda k: shares[k])
    shares[largest] += total - sum(shares.values(), _ZERO)
    return shares


def _ref_forms(model_ref: str) -> tuple[str, ...]:
    normalized = _normalize_compact_date(model_ref)
    return (model_ref,) if normalized == model_ref else (model_ref, normalized)


def _normalize_compact_date(model_ref: str) -> str:
    """``gpt-5.2-20251211`` -> ``gpt-5.2-2025-12-11`` (LiteLLM and OpenRouter write dates compactly)."""

    def dashed(match: re.Match[str]) -> str:
        year, month, day = (int(match.group(i)) for i in (2, 3, 4))
        try:
            date(year, month, day)
        except ValueError:
            return match.group(0)
        return f"{match.group(1)}{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(dashed, model_ref)


_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def _scale_token_prices(prices: dict[str, Price], factor: Decimal, units: UnitRegistry) -> dict[str, Price]:
    """Scale token prices by a factor (a batch discount, a deployment premium); fees stay as they are."""
    return {
        key: _scaled(price, factor) if units.by_price_key[key].dimensions.get("family") == "tokens" else price
        for key, price in prices.items()
    }


def _scaled(price: Price, factor: Decimal) -> Price:
    if isinstance(price, TieredPrice):
        return TieredPrice(price.base * factor, tuple((start, rate * factor) for start, rate in price.tiers))
    return price * factor


def _compile_lines(prices: Mapping[str, Price], units: UnitRegistry) -> _Lines:
    priced = [units.by_price_key[key] for key in prices]
    # Most specific first, so every unit's parts are evaluated before it.
    priced.sort(key=lambda unit: (-len(unit.dimensions), unit.usage_key))
    # Every threshold any tiered price has: level k means input_tokens is above the k-th threshold.
    tier_starts = tuple(
        sorted(
            {start for price in prices.values() if isinstance(price, TieredPrice) for start, _ in price.tiers}
        )
    )
    lines: list[_Line] = []
    for i, unit in enumerate(priced):
        price = prices[unit.price_key]
        by_level = tuple(
            price.rate_for(start + 1) if isinstance(price, TieredPrice) else price
            for start in (-1, *tier_starts)
        )
        exponent = _pow10_exponent(unit.per)
        per_request = unit.usage_key == "requests"
        parts = (
            ()
            if per_request
            else tuple(
                j
                for j, other in enumerate(priced[:i])
                if other.usage_key != "requests" and unit.contains(other)
            )
        )
        lines.append(
            _Line(
                usage_key=unit.usage_key,
                field=USAGE_KEY_TO_FIELD.get(unit.usage_key),
                per=unit.per,
                prices=by_level,
                # price per single unit, exact when ``per`` is a power of ten (scaleb only moves the point)
                rates=tuple(p.scaleb(-exponent) for p in by_level) if exponent is not None else None,
                bucket=_BUCKET_INDEX[unit.bucket],
                parts=parts,
                per_request=per_request,
            )
        )
    return _Lines(tuple(lines), tier_starts)


def _evaluate(compiled: _Lines, usage: Usage) -> list[Decimal] | str:
    """Amounts per bucket, or why the counts are inconsistent."""
    lines = compiled.lines
    other = usage.other
    leaves: list[Any] = []
    for line in lines:
        if line.per_request:
            leaves.append(1)
            continue
        if line.field is not None:
            value = getattr(usage, line.field)
        else:
            value = other.get(line.usage_key) if other else None
        if value is None:
            # Not reported: the unit holds just its reported parts (a transcription that reports only
            # input_audio_seconds has that many audio_seconds), so its own leaf is zero.
            leaves.append(0)
            continue
        if type(value) is float:
            value = Decimal(repr(value))
        leaf = value
        for j in line.parts:
            leaf -= leaves[j]
        if leaf < 0:
            return _inconsistency(line, lines, leaves, value)
        leaves.append(leaf)
    level = 0
    if compiled.tier_starts:
        total_input = usage.input_tokens or 0
        for start in compiled.tier_starts:
            if total_input > start:
                level += 1
    amounts = [_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO]
    for line, leaf in zip(lines, leaves):  # noqa: B905 - one leaf per line by construction
        if leaf:
            rates = line.rates
            if rates is not None:
                amounts[line.bucket] += rates[level] * leaf
            else:
                amounts[line.bucket] += line.prices[level] * leaf / line.per
    return amounts


def _inconsistency(line: _Line, lines: tuple[_Line, ...], leaves: list[Any], value: Any) -> str:
    parts = [lines[j].usage_key for j in line.parts if leaves[j]]
    return (
        f"inconsistent usage: {', '.join(parts)} add up to more than {line.usage_key} ({value}); "
        f"{line.usage_key} must include them"
    )


def _unpriced_keys(other: Mapping[str, Any], compiled: _Lines, units: UnitRegistry) -> list[str]:
    """Reported usage keys that no priced unit counts (neither priced itself nor part of a priced unit)."""
    priced = [units.by_usage_key[line.usage_key] for line in compiled.lines]
    out = []
    for key, value in other.items():
        if not value:
            continue
        unit = units.by_usage_key.get(key)
        if unit is None or not any(p.contains(unit) for p in priced):
            out.append(key)
    return sorted(out)
