"""Price plans: the prices in force for one model, period and request context, compiled for arithmetic.

A plan is built once per (resolution, price period, context) and then prices every call that falls in it.
Building applies the dated price set, the request's variants (batch, flex, a region) and costspan's rules;
compiling orders the priced units most specific first and precomputes each one's rate per single unit
at every tier level, so pricing a call is a few subtractions and multiplications.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from ._catalog import Price, TieredPrice
from ._resolve import Resolution
from ._rules import Rules
from ._units import BUCKETS, UnitRegistry
from ._usage import FIELD_TO_USAGE_KEY, USAGE_KEY_TO_FIELD

_BUCKET_INDEX: Final = {bucket: i for i, bucket in enumerate(BUCKETS)}
_NAMED_INDEX: Final = {FIELD_TO_USAGE_KEY[name]: i for i, name in enumerate(FIELD_TO_USAGE_KEY)}
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class CompiledPrices:
    """Priced units in evaluation order, as plain tuples (the hot loop unpacks them)."""

    # per unit: (index into the named counts or -1, usage key, indices of its priced parts, per-request?,
    #            bucket index, rate per single unit at each tier level or None, price at each level, per)
    units: tuple[
        tuple[int, str, tuple[int, ...], bool, int, tuple[Decimal, ...] | None, tuple[Decimal, ...], int], ...
    ]
    tier_starts: tuple[int, ...]  # ascending input-token thresholds of the tiered prices
    usage_keys: tuple[str, ...]
    # When every unit is a named count priced per power of ten (or a per-request fee), the same units
    # reduced to (index into the named counts, parts, bucket index, rate per unit at each tier level),
    # and the per-request fees by bucket: the shape :func:`evaluate_named` prices fastest.
    named_units: tuple[tuple[int, tuple[int, ...], int, tuple[Decimal, ...]], ...] | None = None
    request_fees: tuple[tuple[int, tuple[Decimal, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class PricePlan:
    compiled: CompiledPrices
    # the same without units that only ``Usage.other`` can report (searches, audio tokens ...): most calls
    # report just the named counts, and those units' leaves would all be zero
    named_only: CompiledPrices
    notes: tuple[str, ...]  # what shaped these prices: the dated price, variants, costspan's rules
    price_start: str | None
    prices: Mapping[str, Price]
    cache_1h_note: str | None  # said only when a call wrote one-hour cache


def build_plan(resolution: Resolution, at: datetime, ctx: Mapping[str, str], rules: Rules) -> PricePlan:
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
                    chosen.setdefault(price_key, price)  # the first matching variant wins, per price
                label = ",".join(f"{k}={v}" for k, v in variant.context.items())
                notes.append(f"variant {label}" + (f" {variant.when.describe()}" if variant.when else ""))
                variant_keys.update(variant.context)
        prices.update(chosen)
    units = resolution.catalog.units
    if ctx.get("processing") == "batch" and "processing" not in variant_keys:
        batch = rules.batch_factors.get(resolution.owner.id)
        if batch is not None:
            factor, source = batch
            prices = scale_token_prices(prices, factor, units)
            notes.append(f"batch x{factor} on token prices ({source})")
    deployment = ctx.get("deployment")
    if deployment is not None:
        deployment_factor = rules.deployment_factors.get(resolution.provider.id, {}).get(deployment)
        if deployment_factor is not None:
            prices = scale_token_prices(prices, deployment_factor, units)
            source = rules.deployment_sources[resolution.provider.id]
            notes.append(f"{deployment} deployment x{deployment_factor} on token prices ({source})")
    cache_1h_note = None
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
    start = price_set.when.start_date if price_set.when else None
    named_prices = {
        key: price
        for key, price in prices.items()
        if units.by_price_key[key].usage_key in _NAMED_INDEX
        or units.by_price_key[key].usage_key == "requests"
    }
    return PricePlan(
        compile_prices(prices, units),
        compile_prices(named_prices, units),
        tuple(notes),
        start.isoformat() if start else None,
        prices,
        cache_1h_note,
    )


def scale_token_prices(prices: Mapping[str, Price], factor: Decimal, units: UnitRegistry) -> dict[str, Price]:
    """Scale token prices by a factor (a batch discount, a deployment premium); fees stay as they are."""
    return {
        key: _scaled(price, factor) if units.by_price_key[key].dimensions.get("family") == "tokens" else price
        for key, price in prices.items()
    }


def _scaled(price: Price, factor: Decimal) -> Price:
    if isinstance(price, TieredPrice):
        return TieredPrice(price.base * factor, tuple((start, rate * factor) for start, rate in price.tiers))
    return price * factor


def compile_prices(prices: Mapping[str, Price], units: UnitRegistry) -> CompiledPrices:
    priced = [units.by_price_key[key] for key in prices]
    # Most specific first, so every unit's parts are evaluated before it.
    priced.sort(key=lambda unit: (-len(unit.dimensions), unit.usage_key))
    # Every threshold any tiered price has: level k means input_tokens is above the k-th threshold.
    tier_starts = tuple(
        sorted(
            {start for price in prices.values() if isinstance(price, TieredPrice) for start, _ in price.tiers}
        )
    )
    compiled = []
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
                j for j, part in enumerate(priced[:i]) if part.usage_key != "requests" and unit.contains(part)
            )
        )
        # a price per single unit is exact when ``per`` is a power of ten: scaleb only moves the point
        rates = tuple(p.scaleb(-exponent) for p in by_level) if exponent is not None else None
        index = _NAMED_INDEX.get(unit.usage_key, -1)
        compiled.append(
            (index, unit.usage_key, parts, per_request, _BUCKET_INDEX[unit.bucket], rates, by_level, unit.per)
        )
    named_units = None
    request_fees: list[tuple[int, tuple[Decimal, ...]]] = []
    # The fast path (:func:`evaluate_named`) needs every unit to be a named count or a request fee, at an
    # exact rate per single unit.
    exact = [
        (index, parts, per_request, bucket, rates)
        for index, _, parts, per_request, bucket, rates, _, _ in compiled
        if rates is not None and (index >= 0 or per_request)
    ]
    if len(exact) == len(compiled):
        named_units = tuple(
            (index, parts, bucket, rates)
            for index, parts, per_request, bucket, rates in exact
            if not per_request
        )
        request_fees = [(bucket, rates) for _, _, per_request, bucket, rates in exact if per_request]
    return CompiledPrices(
        tuple(compiled), tier_starts, tuple(u.usage_key for u in priced), named_units, tuple(request_fees)
    )


def evaluate(
    compiled: CompiledPrices, named: tuple[Any, ...], other: Mapping[str, Any] | None
) -> tuple[list[Decimal], Decimal] | str:
    """Amounts per bucket and their total for validated counts, or why the counts are inconsistent.

    ``named`` holds the six named counts of ``Usage`` in ``FIELD_TO_USAGE_KEY`` order.
    """
    level = _tier_level(compiled.tier_starts, named[0]) if compiled.tier_starts else 0
    leaves: list[Any] = []
    append = leaves.append
    amounts = [_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO]
    total = _ZERO
    leaf: Any  # a whole count, or a Decimal quantity (seconds of audio)
    for index, key, parts, per_request, bucket, rates, by_level, per in compiled.units:
        if per_request:
            leaf = 1
        else:
            if index >= 0:
                value = named[index]  # validated: an int or None
            else:
                value = other.get(key) if other else None
                if type(value) is float:
                    value = Decimal(repr(value))
            if value is None:
                # Not reported: the unit holds just its reported parts (a transcription that reports only
                # input_audio_seconds has that many audio_seconds), so its own leaf is zero.
                append(0)
                continue
            leaf = value
            for j in parts:
                leaf -= leaves[j]
            if leaf < 0:
                return _inconsistency(compiled, key, parts, leaves, value)
        append(leaf)
        if leaf:
            amount = rates[level] * leaf if rates is not None else by_level[level] * leaf / per
            amounts[bucket] += amount
            total += amount
    return amounts, total


def evaluate_named(compiled: CompiledPrices, named: tuple[Any, ...]) -> tuple[list[Decimal], Decimal] | None:
    """:func:`evaluate` for plans with ``named_units``; ``None`` when the counts are inconsistent (then
    :func:`evaluate` says why)."""
    units = compiled.named_units
    if units is None:
        raise ValueError("evaluate_named: the plan has no named_units; use evaluate")
    level = _tier_level(compiled.tier_starts, named[0]) if compiled.tier_starts else 0
    leaves: list[int] = []
    amounts = [_ZERO, _ZERO, _ZERO, _ZERO, _ZERO, _ZERO]
    total = _ZERO
    for index, parts, bucket, rates in units:
        count = named[index]
        if count is None:
            leaves.append(0)
            continue
        leaf: int = count  # a whole number: the caller checked the counts (problem_with)
        for j in parts:
            leaf -= leaves[j]
        if leaf < 0:
            return None
        leaves.append(leaf)
        if leaf:
            amount = rates[level] * leaf
            amounts[bucket] += amount
            total += amount
    for bucket, rates in compiled.request_fees:
        amounts[bucket] += rates[level]
        total += rates[level]
    return amounts, total


def _tier_level(tier_starts: tuple[int, ...], input_tokens: int | None) -> int:
    """How many tier thresholds the request's input passed (the whole request pays that tier's rate)."""
    total_input = input_tokens or 0
    return sum(1 for start in tier_starts if total_input > start)


def unpriced_keys(other: Mapping[str, Any], compiled: CompiledPrices, units: UnitRegistry) -> list[str]:
    """Reported usage keys that no priced unit counts (neither priced itself nor part of a priced unit)."""
    priced = [units.by_usage_key[key] for key in compiled.usage_keys]
    out = []
    for key, value in other.items():
        if not value:
            continue
        unit = units.by_usage_key.get(key)
        if unit is None or not any(p.contains(unit) for p in priced):
            out.append(key)
    return sorted(out)


def _pow10_exponent(per: int) -> int | None:
    exponent = 0
    while per > 1 and per % 10 == 0:
        per //= 10
        exponent += 1
    return exponent if per == 1 else None


def _inconsistency(
    compiled: CompiledPrices, key: str, parts: tuple[int, ...], leaves: list[Any], value: Any
) -> str:
    names = [compiled.usage_keys[j] for j in parts if leaves[j]]
    field = USAGE_KEY_TO_FIELD.get(key, key)
    return (
        f"inconsistent usage: {', '.join(USAGE_KEY_TO_FIELD.get(n, n) for n in names)} add up to more than "
        f"{field} ({value}); {field} must include them"
    )
