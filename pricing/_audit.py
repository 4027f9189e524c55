"""The catalog audit: every model of the primary catalog against a second source and the published prices.

Two comparisons, over the catalog as its source has it (before corrections):

* with a second source, LiteLLM's price file imported as a catalog: each catalog model is paired with the
  LiteLLM entry the catalog's own match clause takes (the one named like the model when several are), and
  their prices in force on the audit date, long-context tiers, service-tier variants and variant start
  dates are compared. LiteLLM's fine-tuned models (``ft:...``) that the catalog can only estimate at base
  rates are listed too;
* with the providers' published prices, as ``data/corrections.json`` records them with their sources:
  every field a correction changes is a disagreement the correction settles.

A disagreement is *settled* when a correction sets that field of that model (the catalog then prices it as
the correction says); the rest are *open*. Every disagreement is one or the other, so ``settled + open``
is the total.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._catalog import Catalog, Model, Price, TieredPrice, read_document
from ._corrections import Applied, Correction, Corrections, apply_corrections, context_label
from ._engine import PricingEngine
from ._plan import scale_token_prices
from ._result import decimal_str
from ._rules import Rules, default_rules
from ._units import UnitRegistry

SECOND_SOURCE = "litellm"

# Classes of disagreement (a correction's class is one of these too).
TIER_START = "tier_start"  # a service-tier variant dated later than the second source shows it sold
TIER_MISSING = "tier_missing"  # a service tier the second source prices and the catalog does not
LONG_CONTEXT = "long_context"  # a long-context tier on one side only, or at another threshold or rate
AUDIO = "audio"  # audio token rates the catalog lacks (audio priced as text)
FINE_TUNE = "fine_tune"  # a fine-tuned model the catalog prices only at its base model's rates
MISSING_PRICE = "missing_price"  # another rate the second source has and the catalog lacks
PRICE = "price"  # the same rate at another value


@dataclass
class Disagreement:
    provider: str
    model: str
    field: str  # a price key, "<tier>:<price key>", "<tier>:start_date", "model" or "history"
    cls: str
    catalog: str  # the catalog's value, as its source has it
    other: str  # the other source's value
    source: str  # "litellm", or the public page a correction cites
    settled_by: str = ""  # the correction that settles it; "" while open
    corrected: str = ""  # the catalog's value with corrections laid over it, when settled

    @property
    def status(self) -> str:
        return "settled" if self.settled_by else "open"

    def to_dict(self) -> dict[str, str]:
        out = asdict(self)
        out["class"] = out.pop("cls")
        out["status"] = self.status
        return out


@dataclass
class AuditReport:
    at: datetime
    catalog_version: str
    second_source: str | None
    corrections_version: str
    models_audited: int
    models_paired: int  # catalog models with a second-source counterpart
    disagreements: list[Disagreement]
    stale_corrections: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def settled(self) -> list[Disagreement]:
        return [d for d in self.disagreements if d.settled_by]

    @property
    def open(self) -> list[Disagreement]:
        return [d for d in self.disagreements if not d.settled_by]

    def summary(self) -> dict[str, Any]:
        by_class: dict[str, dict[str, int]] = {}
        for d in self.disagreements:
            counts = by_class.setdefault(d.cls, {"found": 0, "settled": 0, "open": 0})
            counts["found"] += 1
            counts[d.status] += 1
        return {
            "at": self.at.date().isoformat(),
            "catalog": self.catalog_version,
            "second_source": self.second_source,
            "corrections": self.corrections_version,
            "models_audited": self.models_audited,
            "models_paired_with_second_source": self.models_paired,
            "disagreements": len(self.disagreements),
            "settled": len(self.settled),
            "open": len(self.open),
            "by_source": dict(
                Counter("litellm" if d.source == SECOND_SOURCE else "published" for d in self.disagreements)
            ),
            "by_class": dict(sorted(by_class.items())),
            "stale_corrections": [list(s) for s in self.stale_corrections],
        }


def audit(
    primary_doc: Mapping[str, Any],
    corrections: Corrections,
    second: Catalog | None,
    at: datetime,
    rules: Rules | None = None,
) -> AuditReport:
    """Compare the primary catalog document (as imported) with the second source and the corrections."""
    rules = rules or default_rules()
    raw = Catalog.from_json(primary_doc)
    corrected_doc, applied = apply_corrections(primary_doc, corrections)
    corrected = Catalog.from_json(corrected_doc)
    found: list[Disagreement] = []
    paired = 0
    if second is not None:
        pairs = dict(_pairs(raw, second, rules))
        paired = len(pairs)
        for (provider_id, model_id), theirs in pairs.items():
            ours = _model(raw, provider_id, model_id)
            found.extend(_compare(provider_id, ours, theirs, at, rules, raw.units))
        found.extend(_fine_tunes(raw, second, at))
    by_id = {c.id: c for c in corrections.entries}
    for d in found:
        d.settled_by = applied.settled_by(d.provider, d.model, d.field) or ""
        if d.cls == FINE_TUNE and d.field == "model":
            # settled by the correction that lists the fine-tune this reference now resolves to
            now = PricingEngine([corrected]).resolve(_fine_tune_reference(d.model), d.provider)
            if now is not None and not now.estimated:
                d.settled_by = applied.settled_by(d.provider, now.model.id, "model") or ""
        if d.settled_by:
            d.corrected = _value_of(corrected, d, at)
    found.extend(_published(raw, corrected, applied, by_id, at))
    found.sort(key=lambda d: (d.status != "open", d.provider, d.model, d.cls, d.field, d.source))
    return AuditReport(
        at=at,
        catalog_version=raw.version,
        second_source=second.version if second is not None else None,
        corrections_version=corrections.version,
        models_audited=raw.model_count,
        models_paired=paired,
        disagreements=found,
        stale_corrections=list(applied.stale),
    )


def load_second_source(explicit: str | Path | None, imported_dir: Path) -> Catalog | None:
    """LiteLLM's prices as a catalog: a file given (LiteLLM's own JSON, or a catalog imported from it), else
    the one imported into the data directory, else the file the installed ``litellm`` package ships."""
    from .importers import litellm

    if explicit is not None:
        path = Path(explicit)
    elif (imported_dir / f"{SECOND_SOURCE}.json").is_file():
        path = imported_dir / f"{SECOND_SOURCE}.json"
    else:
        spec = importlib.util.find_spec("litellm")  # found without importing the package
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / litellm.PACKAGED_FILE
        if not path.is_file():
            return None
    doc = read_document(path)
    if litellm.looks_like_litellm(doc):
        return Catalog.from_json(litellm.import_file(path), path=str(path))
    return Catalog.from_json(doc, path=str(path))


# -- pairing ------------------------------------------------------------------------------------------


def _pairs(ours: Catalog, theirs: Catalog, rules: Rules) -> Iterator[tuple[tuple[str, str], Model]]:
    """(provider id, catalog model id) -> the second source's model that the catalog's matching takes;
    the one named as the catalog model is, when several are taken, then the one priced where the catalog's
    prices are (:func:`_placement_rank`)."""
    for their_provider in theirs.providers:
        our_provider = next((p for p in ours.providers if p.id == their_provider.id), None)
        if our_provider is None:
            continue
        taken: dict[str, tuple[tuple[int, int], Model]] = {}
        for their_model in their_provider.models:
            for name in _names(their_model.match):
                our_model = our_provider.find_model(name)
                if our_model is None:
                    continue
                placement = _placement_rank(their_provider.id, their_model.id, rules)
                if placement is None:
                    continue
                named = 0 if name == our_model.id.lower() else 1 if name in _names(our_model.match) else 2
                rank = (named, placement)
                if our_model.id not in taken or rank < taken[our_model.id][0]:
                    taken[our_model.id] = (rank, their_model)
        for model_id, (_, their_model) in taken.items():
            yield (our_provider.id, model_id), their_model


# LiteLLM prices one Bedrock model under several keys: the bare model id, each cross-region inference
# profile (``us.``, ``eu.``, ``global.`` ...) and single regions (``bedrock/us-gov-east-1/<model>``), at
# each one's own price. The catalog's Bedrock prices are those of the AWS price list for us-east-1 (its
# price comments say so), so among the keys one catalog model takes, the like-for-like counterpart is the
# ``us.`` profile, then the bare id, then a global profile, then another geography. A key pinned to one
# region (GovCloud, eu-west-2 ...) is that region's price, no second opinion on the catalog's: never paired.
_BEDROCK_PROVIDER = "aws"
# Endpoints LiteLLM files under a catalog provider that are priced apart from it: Mistral's Codestral
# endpoint (codestral.mistral.ai, LiteLLM's ``codestral`` provider, free) is not La Plateforme, whose
# codestral-latest LiteLLM lists as ``mistral/codestral-latest``. Never paired.
_SEPARATE_ENDPOINTS: dict[str, tuple[str, ...]] = {"mistral": ("codestral/", "text-completion-codestral/")}


def _placement_rank(provider_id: str, key: str, rules: Rules) -> int | None:
    """How well a second-source key stands for the catalog's price of a model (lower is better); None for a
    key priced for somewhere else."""
    if key.lower().startswith(_SEPARATE_ENDPOINTS.get(provider_id, ())):
        return None
    if provider_id != _BEDROCK_PROVIDER:
        return 0
    name = key.lower()
    for prefix in ("bedrock/", "bedrock_converse/", "bedrock_mantle/"):
        name = name.removeprefix(prefix)
    if "/" in name:  # ``<region>/<model>``: one region's price
        return None
    geography, dot, _ = name.partition(".")
    if not dot or geography not in rules.region_prefixes:
        return 1
    return {"us": 0, "global": 2}.get(geography, 3)


def _names(clause: Mapping[str, Any]) -> list[str]:
    """The exact names a match clause lists."""
    ((kind, arg),) = clause.items()
    if kind in ("or", "and"):
        return [name for part in arg for name in _names(part)]
    return [arg.lower()] if kind == "equals" else []


def _example_name(clause: Mapping[str, Any]) -> str | None:
    """A name a match clause takes: the first it lists exactly, or the prefix it starts with."""
    ((kind, arg),) = clause.items()
    if kind in ("or", "and"):
        return next((n for part in arg if (n := _example_name(part)) is not None), None)
    return arg.lower() if kind in ("equals", "starts_with") else None


def _model(catalog: Catalog, provider_id: str, model_id: str) -> Model:
    provider = catalog.provider(provider_id)
    assert provider is not None
    return next(m for m in provider.models if m.id == model_id)


# -- comparing ----------------------------------------------------------------------------------------


def _compare(
    provider: str, ours: Model, theirs: Model, at: datetime, rules: Rules, units: UnitRegistry
) -> Iterator[Disagreement]:
    standard = ours.price_set_at(at).prices
    their_standard = theirs.prices[0].prices

    def row(field_name: str, cls: str, mine: str, other: str) -> Disagreement:
        return Disagreement(provider, ours.id, field_name, cls, mine, other, SECOND_SOURCE)

    for key, their_price in their_standard.items():
        token_key = _PER_IMAGE_EQUIVALENTS.get(provider, {}).get(key)
        if token_key is not None and token_key in standard:
            continue
        # a rate that changes with the time of day agrees when one of the day's rates does
        differences = [
            _difference(units, prices, key, their_price, provider, their_standard)
            for prices in _rates_of_the_day(ours, at)
        ]
        if all(found is not None for found in differences):
            first = differences[0]
            assert first is not None
            shown = " | ".join(dict.fromkeys(found[1] for found in differences if found is not None))
            yield row(key, first[0], shown, first[2])
    for their_variant in theirs.variants:
        context = dict(their_variant.context)
        label = context_label(context)
        ours_of_context = [v for v in ours.variants if dict(v.context) == context]
        if not ours_of_context:
            batch = rules.batch_factors.get(provider) if label == "batch" else None
            if batch is None:
                yield row(f"{label}:variant", TIER_MISSING, "none", prices_text(their_variant.prices))
                continue
            # the provider's batch factor prices batch calls: compare what it charges, rate by rate
            charged = scale_token_prices(standard, batch[0], units)
            for key, their_price in their_variant.prices.items():
                found = _difference(units, charged, key, their_price, provider)
                if found is not None:
                    yield row(f"{label}:{key}", *found)
            continue
        # Before a batch variant starts, a provider's batch factor (rules.json) prices batch calls.
        covered = label == "batch" and provider in rules.batch_factors
        if not covered and all(v.when is not None and v.when.start_date is not None for v in ours_of_context):
            first = min(v.when.start_date for v in ours_of_context if v.when and v.when.start_date)
            yield row(f"{label}:start_date", TIER_START, f"from {first.isoformat()}", "sold, undated")
        in_force = {**standard, **_variant_prices(ours, context, at)}
        for key, their_price in their_variant.prices.items():
            found = _difference(units, in_force, key, their_price, provider)
            if found is not None:
                yield row(f"{label}:{key}", *found)


# Gemini bills images, in and out, by their tokens; a per-image price LiteLLM lists beside the per-token one
# is the pricing page's equivalent for an image of typical size ("$0.039 per image"), not a charge of its own.
_PER_IMAGE_EQUIVALENTS = {
    "google": {"output_image_each": "output_image_mtok", "input_image_each": "input_mtok"}
}


# LiteLLM writes per-second and some per-token costs rounded (0.0000583333 a second for $0.21 an hour):
# two rates that agree to this relative precision are the same price.
_TOLERANCE = Decimal("1e-5")


def same_price(mine: Price, theirs: Price) -> bool:
    mine, theirs = _without_repeated_tiers(mine), _without_repeated_tiers(theirs)
    if isinstance(mine, TieredPrice) or isinstance(theirs, TieredPrice):
        if not (isinstance(mine, TieredPrice) and isinstance(theirs, TieredPrice)):
            return False
        return (
            _close(mine.base, theirs.base)
            and [t for t, _ in mine.tiers] == [t for t, _ in theirs.tiers]
            and all(_close(a, b) for (_, a), (_, b) in zip(mine.tiers, theirs.tiers, strict=True))
        )
    return _close(mine, theirs)


def _without_repeated_tiers(price: Price) -> Price:
    """The price as it charges: a tier at the rate below it changes nothing (LiteLLM writes Gemini's audio
    rate "above 200K tokens" at the same rate as below), and a price whose tiers all do is flat."""
    if not isinstance(price, TieredPrice):
        return price
    tiers: list[tuple[int, Decimal]] = []
    for start, rate in price.tiers:
        if rate != (tiers[-1][1] if tiers else price.base):
            tiers.append((start, rate))
    return TieredPrice(price.base, tuple(tiers)) if tiers else price.base


# LiteLLM writes some rates in another unit than the catalog, rounded there: time-based rates per second
# (``input_cost_per_second``; $0.111 an hour is 0.00003083 a second), and Databricks rates as Databricks
# publishes them, in DBUs, at $0.070 a DBU (its metadata says so; 1.429 DBU per 1M tokens is $0.10003, the
# catalog's $0.10). A catalog rate agrees when, in that unit and rounded to as many significant digits as
# LiteLLM's figure has there, it is that figure.
_PER_SECOND_KEYS_END = "_hours"
_SECONDS_PER_HOUR = Decimal(3600)
_DOLLARS_PER_DBU = {"databricks": Decimal("0.07")}
_MAX_WRITTEN_DIGITS = 6  # a figure with more digits was not rounded in that unit


def _same_as_written(provider: str, key: str, mine: Price, theirs: Price) -> bool:
    if isinstance(mine, TieredPrice) or isinstance(theirs, TieredPrice):
        return False
    if key.endswith(_PER_SECOND_KEYS_END):
        per_unit = _SECONDS_PER_HOUR
    elif provider in _DOLLARS_PER_DBU:
        per_unit = _DOLLARS_PER_DBU[provider]
    else:
        return False
    written = (theirs / per_unit).normalize()
    mine_there = mine / per_unit
    if written == 0 or mine_there == 0:
        return written == mine_there
    digits = len(written.as_tuple().digits)
    if digits > _MAX_WRITTEN_DIGITS:
        return False
    exponent = mine_there.adjusted() - digits + 1
    return mine_there.quantize(Decimal(1).scaleb(exponent)) == written


def _close(a: Decimal, b: Decimal) -> bool:
    return a == b or abs(a - b) <= _TOLERANCE * max(abs(a), abs(b))


def _is_zero(price: Price) -> bool:
    """A zero rate the catalog leaves out charges the same: nothing."""
    if isinstance(price, TieredPrice):
        return price.base == 0 and all(rate == 0 for _, rate in price.tiers)
    return price == 0


def _parent_price(units: UnitRegistry, prices: Mapping[str, Price], key: str) -> tuple[Price, str] | None:
    """The rate the engine charges a unit the model has no own rate for: its nearest priced parent's
    (``input_audio_hours`` at ``audio_hours``)."""
    unit = units.by_price_key.get(key)
    if unit is None:
        return None
    parents = [
        other for k in prices if (other := units.by_price_key.get(k)) is not None and other.contains(unit)
    ]
    if not parents:
        return None
    nearest = max(parents, key=lambda other: len(other.dimensions))
    return prices[nearest.price_key], nearest.price_key


def _rates_of_the_day(model: Model, at: datetime) -> list[Mapping[str, Price]]:
    """The standard price sets in force during the audit's UTC day: one, or one per daily window."""
    if not model.daily_windows:
        return [model.price_set_at(at).prices]
    start = at.replace(hour=0, minute=0, second=0, microsecond=0)
    seen: dict[int, Mapping[str, Price]] = {}
    for quarter in range(96):  # daily windows start and end on the quarter hour
        price_set = model.price_set_at(start + timedelta(minutes=15 * quarter))
        seen.setdefault(id(price_set), price_set.prices)
    return list(seen.values())


def _difference(
    units: UnitRegistry,
    prices: Mapping[str, Price],
    key: str,
    theirs: Price,
    provider: str = "",
    their_prices: Mapping[str, Price] | None = None,
) -> tuple[str, str, str] | None:
    """(class, catalog value, other value) when the catalog charges ``key`` otherwise than ``theirs``
    (``their_prices``: the other rates of the second source's price set)."""
    mine = prices.get(key)
    if mine is not None:
        if same_price(mine, theirs) or _same_as_written(provider, key, mine, theirs):
            return None
        return _value_class(mine, theirs), price_text(mine), price_text(theirs)
    missing = AUDIO if "audio" in key else MISSING_PRICE
    parent = _parent_price(units, prices, key)
    if parent is None:
        return None if _is_zero(theirs) else (missing, "none", price_text(theirs))
    price, parent_key = parent
    if same_price(price, theirs) or _same_as_written(provider, key, price, theirs):
        return None
    # LiteLLM writes a part of the input (image tokens) at the input's base rate, leaving out the long-context
    # tier its own input rate has: the catalog charging it as input, tier included, is the same price (the
    # tiers themselves are compared on the input rate's row)
    their_parent = (their_prices or {}).get(parent_key)
    if (
        isinstance(price, TieredPrice)
        and isinstance(their_parent, TieredPrice)
        and not isinstance(theirs, TieredPrice)
        and _close(price.base, theirs)
        and _close(their_parent.base, theirs)
    ):
        return None
    return missing, f"none ({price_text(price)} as {parent_key})", price_text(theirs)


def _variant_prices(model: Model, context: Mapping[str, str], at: datetime) -> dict[str, Price]:
    """The prices the variants of ``context`` in force at ``at`` set (the first in force wins, per key)."""
    out: dict[str, Price] = {}
    for variant in model.variants:
        if dict(variant.context) == dict(context) and (variant.when is None or variant.when.active(at)):
            for key, price in variant.prices.items():
                out.setdefault(key, price)
    return out


def _value_class(mine: Price, theirs: Price) -> str:
    """A long-context difference when the tiers differ and the base rate agrees (or one side has none)."""
    mine, theirs = _without_repeated_tiers(mine), _without_repeated_tiers(theirs)
    my_base = mine.base if isinstance(mine, TieredPrice) else mine
    their_base = theirs.base if isinstance(theirs, TieredPrice) else theirs
    my_tiers = mine.tiers if isinstance(mine, TieredPrice) else ()
    their_tiers = theirs.tiers if isinstance(theirs, TieredPrice) else ()
    return LONG_CONTEXT if my_base == their_base and my_tiers != their_tiers else PRICE


def _fine_tunes(raw: Catalog, second: Catalog, at: datetime) -> Iterator[Disagreement]:
    """LiteLLM's fine-tuned models that the catalog prices only as an estimate at base rates."""
    engine = PricingEngine([raw])
    for their_provider in second.providers:
        if raw.provider(their_provider.id) is None:
            continue
        for their_model in their_provider.models:
            names = [n for n in _names(their_model.match) if n.startswith("ft:")]
            if not names:
                continue
            resolution = engine.resolve(_fine_tune_reference(names[-1]), their_provider.id)
            if resolution is not None and not resolution.estimated:
                continue
            mine = (
                f"estimated at {resolution.model.id} rates: "
                + prices_text(resolution.model.price_set_at(at).prices)
                if resolution is not None
                else "unknown"
            )
            yield Disagreement(
                their_provider.id,
                names[-1],
                "model",
                FINE_TUNE,
                mine,
                prices_text(their_model.prices[0].prices),
                SECOND_SOURCE,
            )


def _fine_tune_reference(name: str) -> str:
    """A fine-tune as applications name it, ``ft:BASE:ORG:SUFFIX:ID``, from a price list's ``ft:BASE``."""
    return f"{name}:org::audit"


def _published(
    raw: Catalog, corrected: Catalog, applied: Applied, corrections: Mapping[str, Correction], at: datetime
) -> Iterator[Disagreement]:
    """Every field a correction changes: the catalog's value against the published one it cites."""
    for (provider, model_id, field_name), correction_id in applied.fields.items():
        correction = corrections[correction_id]
        if correction.kind == "confirm":
            continue  # the catalog already has the published value
        probe = Disagreement(provider, model_id, field_name, correction.cls, "", "", correction.source)
        probe.catalog = _value_of(raw, probe, at) if field_name != "model" else _estimate_of(raw, correction)
        probe.other = probe.corrected = _value_of(corrected, probe, at)
        probe.settled_by = correction_id
        yield probe


def _estimate_of(raw: Catalog, correction: Correction) -> str:
    """How the catalog priced a model a correction adds: an estimate from a related model, or nothing."""
    model = correction.spec["model"]
    name = _example_name(model["match"]) or str(model["id"]).lower()
    resolution = PricingEngine([raw]).resolve(_fine_tune_reference(name), correction.provider)
    if resolution is None:
        return "not listed"
    how = "estimated at" if resolution.estimated else "priced as"
    return f"{how} {resolution.model.id} rates: " + prices_text(resolution.model.prices[-1].prices)


def _value_of(catalog: Catalog, d: Disagreement, at: datetime) -> str:
    """The catalog's value of a disagreement's field, as text."""
    provider = catalog.provider(d.provider)
    model = next((m for m in provider.models if m.id == d.model), None) if provider is not None else None
    if d.field == "model" and d.cls == FINE_TUNE and model is None:
        found = PricingEngine([catalog]).resolve(_fine_tune_reference(d.model), d.provider)
        if found is None:
            return "unknown"
        prefix = "estimated at " if found.estimated else ""
        return f"{prefix}{found.model.id}: " + prices_text(found.model.prices[-1].prices)
    if model is None:
        return "not listed"
    if d.field == "model":
        return prices_text(model.prices[-1].prices)
    if d.field == "history":
        return history_text(model)
    label, sep, key = d.field.rpartition(":")
    if not sep:
        price = model.price_set_at(at).prices.get(key)
        return price_text(price) if price is not None else "none"
    variants = [v for v in model.variants if context_label(v.context) == label]
    if key == "start_date":
        if not variants:
            return "none"
        starts = [v.when.start_date for v in variants if v.when and v.when.start_date]
        return f"from {min(starts).isoformat()}" if len(starts) == len(variants) else "always"
    if key == "variant":
        return prices_text(variants[0].prices) if variants else "none"
    dated = sorted(
        (v for v in variants if key in v.prices),
        key=lambda v: v.when.start_date.isoformat() if v.when and v.when.start_date else "",
    )
    if not dated:
        price = model.price_set_at(at).prices.get(key)
        return price_text(price) if price is not None else "none"
    return "; ".join(
        price_text(v.prices[key])
        + (f" from {v.when.start_date.isoformat()}" if v.when and v.when.start_date else "")
        for v in dated
    )


# -- text ---------------------------------------------------------------------------------------------


def price_text(price: Price) -> str:
    if isinstance(price, TieredPrice):
        tiers = ", ".join(f"{decimal_str(rate)} above {start:,}" for start, rate in price.tiers)
        return f"{decimal_str(price.base)} ({tiers})"
    return decimal_str(price) if isinstance(price, Decimal) else str(price)


def prices_text(prices: Mapping[str, Price]) -> str:
    return " ".join(f"{key}={price_text(price)}" for key, price in sorted(prices.items()))


def history_text(model: Model) -> str:
    return "; ".join(
        (p.when.describe() if p.when else "always") + ": " + prices_text(p.prices) for p in model.prices
    )


def rows(report: AuditReport, *, only_open: bool = False) -> Iterable[dict[str, str]]:
    for d in report.disagreements:
        if not only_open or not d.settled_by:
            yield d.to_dict()


COLUMNS = (
    "status",
    "class",
    "provider",
    "model",
    "field",
    "catalog",
    "other",
    "source",
    "settled_by",
    "corrected",
)
