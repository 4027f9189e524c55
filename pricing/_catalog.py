"""The price catalog: providers, models, dated prices and request variants, as data with provenance.

The catalog is a JSON document (``data/catalog.json`` is compiled from pydantic's genai-prices; other sources
are imported into the same shape). This module is its schema: it reads the document into small frozen
objects, compiles match clauses, and writes it back. Arithmetic lives in ``_engine``.

Document shape (``schema_version`` 1)::

    {"schema_version": 1, "source": "genai-prices", "source_version": "0.2.3", "built_at": "...",
     "units": {usage_key: {"price_key", "per", "dimensions"}},
     "providers": [{"id", "name", "api_pattern", "provider_match", "model_match",
                    "fallback_model_providers", "pricing_urls",
                    "models": [{"id", "name", "match", "context_window", "deprecated", "price_comments",
                                "prices": [{"when": CONSTRAINT | null, "prices": PRICES}],
                                "variants": [{"context": {"service_tier": "flex"}, "when": CONSTRAINT | null,
                                              "prices": PRICES}]}]}]}

    PRICES     = {price_key: "1.25" | {"base": "1.25", "tiers": [[200000, "2.5"], ...]}}
    CONSTRAINT = {"start_date": "2025-06-10"} | {"start_time": "16:30:00", "end_time": "00:30:00"}

Prices are decimal strings in USD per the unit's ``per`` (per million tokens for token units).
"""

from __future__ import annotations

import gzip
import json
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ._match import Predicate, compile_clause
from ._units import EXTRA_UNITS, UnitRegistry

SCHEMA_VERSION = 1


class CatalogError(ValueError):
    """A catalog document that does not follow the schema."""


@dataclass(frozen=True, slots=True)
class TieredPrice:
    """A rate that changes for the whole request once its input passes a threshold (a "cliff")."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]  # (threshold, rate), ascending

    def rate_for(self, total_input_tokens: int) -> Decimal:
        for start, rate in reversed(self.tiers):
            if total_input_tokens > start:
                return rate
        return self.base


Price = Decimal | TieredPrice


@dataclass(frozen=True, slots=True)
class Constraint:
    """When a price applies: from a UTC date on, or during a daily UTC window."""

    start_date: date | None = None
    start_time: time | None = None
    end_time: time | None = None

    def active(self, at: datetime) -> bool:
        if self.start_date is not None:
            return at.date() >= self.start_date
        assert self.start_time is not None and self.end_time is not None
        now = at.timetz().replace(tzinfo=None)
        if self.end_time < self.start_time:  # the window crosses midnight
            return now >= self.start_time or now < self.end_time
        return self.start_time <= now < self.end_time

    @property
    def is_time_of_day(self) -> bool:
        return self.start_date is None

    def describe(self) -> str:
        if self.start_date is not None:
            return f"from {self.start_date.isoformat()}"
        assert self.start_time is not None and self.end_time is not None
        return f"daily {self.start_time.isoformat()}-{self.end_time.isoformat()} UTC"


@dataclass(frozen=True, slots=True)
class PriceSet:
    """Prices by price key, with the constraint under which they apply (``None``: always)."""

    prices: Mapping[str, Price]
    when: Constraint | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """Prices that replace some standard prices when the request context matches (batch, flex, a region)."""

    context: Mapping[str, str]
    prices: Mapping[str, Price]
    when: Constraint | None = None


@dataclass(eq=False, slots=True)
class Model:
    id: str
    match: Mapping[str, Any]
    prices: tuple[PriceSet, ...]
    variants: tuple[Variant, ...] = ()
    name: str | None = None
    context_window: int | None = None
    deprecated: bool = False
    price_comments: str | None = None
    origin: str | None = None  # where an override was written (file:line)
    is_match: Predicate = field(init=False, repr=False)
    # day ordinals on which a dated price or variant starts, and the daily windows (see ``period``)
    change_days: tuple[int, ...] = field(init=False, repr=False)
    daily_windows: tuple[Constraint, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.prices:
            raise CatalogError(f"model {self.id!r} has no prices")
        self.is_match = compile_clause(self.match)
        constraints = [p.when for p in self.prices if p.when] + [v.when for v in self.variants if v.when]
        self.change_days = tuple(sorted({c.start_date.toordinal() for c in constraints if c.start_date}))
        self.daily_windows = tuple(c for c in constraints if c.is_time_of_day)

    def period(self, at: datetime) -> int | tuple[int, tuple[bool, ...]]:
        """A key that is equal for two instants exactly when the same prices and variants are in force:
        the number of dated changes passed, and which daily windows are open."""
        passed = bisect_right(self.change_days, at.toordinal())
        if self.daily_windows:
            return passed, tuple(window.active(at) for window in self.daily_windows)
        return passed

    def price_set_at(self, at: datetime) -> PriceSet:
        """The price set in force at ``at``: the last one whose constraint holds, else the first."""
        for price_set in reversed(self.prices):
            if price_set.when is None or price_set.when.active(at):
                return price_set
        return self.prices[0]


@dataclass(eq=False, slots=True)
class Provider:
    id: str
    name: str
    models: list[Model]
    api_pattern: str | None = None
    provider_match: Mapping[str, Any] | None = None
    model_match: Mapping[str, Any] | None = None
    fallback_model_providers: tuple[str, ...] = ()
    pricing_urls: tuple[str, ...] = ()
    matches_provider: Predicate | None = field(init=False, repr=False)
    matches_model: Predicate | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.matches_provider = compile_clause(self.provider_match) if self.provider_match else None
        self.matches_model = compile_clause(self.model_match) if self.model_match else None

    def find_model(self, model_ref: str) -> Model | None:
        """The first model whose clause matches ``model_ref`` (lower-case); catalog order decides."""
        for model in self.models:
            if model.is_match(model_ref):
                return model
        return None


@dataclass(eq=False)
class Catalog:
    """One source's providers and models, with its provenance."""

    source: str
    source_version: str
    built_at: str
    providers: list[Provider]
    units: UnitRegistry
    path: str | None = None
    # User override catalogs: a model may be listed without a provider ("*"), and a reference with no
    # provider is looked up in every provider's models.
    search_all_providers: bool = False
    corrections: str | None = None  # the version of the corrections laid over the source, see _corrections

    @property
    def version(self) -> str:
        base = f"{self.source}@{self.source_version}/{self.built_at[:10]}"
        return f"{base}+{self.corrections}" if self.corrections else base

    def provider(self, provider_id: str) -> Provider | None:
        """A provider by id, or failing that by its ``provider_match`` clause (lower-case input)."""
        wanted = provider_id.strip().lower()
        for provider in self.providers:
            if provider.id == wanted:
                return provider
        for provider in self.providers:
            if provider.matches_provider is not None and provider.matches_provider(wanted):
                return provider
        return None

    def provider_for_model(self, model_ref: str) -> Provider | None:
        for provider in self.providers:
            if provider.matches_model is not None and provider.matches_model(model_ref):
                return provider
        return None

    def any_provider_model(self, model_ref: str) -> tuple[Provider, Provider, Model] | None:
        for provider in self.providers:
            found = provider.find_model(model_ref)
            if found is not None:
                return provider, provider, found
        return None

    @property
    def model_count(self) -> int:
        return sum(len(p.models) for p in self.providers)

    # -- reading and writing -------------------------------------------------------------------------

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, path: str | None = None) -> Catalog:
        where = path or "catalog"
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise CatalogError(
                f"{where}: schema_version {doc.get('schema_version')!r} is not {SCHEMA_VERSION}"
            )
        units = UnitRegistry({**EXTRA_UNITS, **doc.get("units", {})})
        try:
            providers = [_provider_from_json(raw, units) for raw in doc["providers"]]
            return cls(
                source=str(doc["source"]),
                source_version=str(doc["source_version"]),
                built_at=str(doc["built_at"]),
                providers=providers,
                units=units,
                path=path,
                corrections=doc.get("corrections"),
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise CatalogError(f"{where}: {exc.__class__.__name__}: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Catalog:
        return cls.from_json(read_document(path), path=str(path))


def read_document(path: str | Path) -> dict[str, Any]:
    """A catalog document as JSON, from a file (gzip when it ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CatalogError(f"{path}: a catalog is a JSON object")
    return doc


def dump_catalog(doc: Mapping[str, Any], path: str | Path) -> None:
    """Write a catalog document with one model per line: small, and readable in a diff."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["{"]
    for key in ("schema_version", "source", "source_version", "built_at", "units"):
        lines.append(f"{json.dumps(key)}: {json.dumps(doc[key], sort_keys=True)},")
    lines.append('"providers": [')
    for i, provider in enumerate(doc["providers"]):
        head = {k: v for k, v in provider.items() if k != "models"}
        lines.append(json.dumps(head, sort_keys=True)[:-1] + ', "models": [')
        models = provider["models"]
        for j, model in enumerate(models):
            lines.append(json.dumps(model, sort_keys=True) + ("," if j < len(models) - 1 else ""))
        lines.append("]}" + ("," if i < len(doc["providers"]) - 1 else ""))
    lines.append("]}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    json.loads(tmp.read_text(encoding="utf-8"))  # never leave a broken catalog behind
    tmp.replace(path)


# -- JSON <-> objects ---------------------------------------------------------------------------------


def decimal_from_json(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise CatalogError(f"a price is a decimal string; got {value!r}")
    price = Decimal(value)
    if not price.is_finite() or price < 0:
        raise CatalogError(f"a price is finite and not negative; got {value!r}")
    return price


def prices_from_json(raw: Mapping[str, Any], units: UnitRegistry) -> dict[str, Price]:
    prices: dict[str, Price] = {}
    for key, value in raw.items():
        if key not in units.by_price_key:
            raise CatalogError(f"unknown price key {key!r}")
        if isinstance(value, Mapping):
            tiers = tuple(sorted((int(start), decimal_from_json(rate)) for start, rate in value["tiers"]))
            prices[key] = TieredPrice(decimal_from_json(value["base"]), tiers)
        else:
            prices[key] = decimal_from_json(value)
    return prices


def constraint_from_json(raw: Mapping[str, Any] | None) -> Constraint | None:
    if raw is None:
        return None
    if "start_date" in raw:
        value = raw["start_date"]
        return Constraint(start_date=value if isinstance(value, date) else date.fromisoformat(str(value)))
    return Constraint(start_time=_utc_time(raw["start_time"]), end_time=_utc_time(raw["end_time"]))


def _utc_time(value: Any) -> time:
    """A time of day as naive UTC (a time written with an offset is converted)."""
    parsed = value if isinstance(value, time) else time.fromisoformat(str(value))
    if parsed.tzinfo is not None:
        parsed = datetime.combine(date(1970, 1, 1), parsed).astimezone(UTC).time()
    return parsed


def model_from_json(raw: Mapping[str, Any], units: UnitRegistry, *, origin: str | None = None) -> Model:
    return Model(
        id=str(raw["id"]),
        match=raw["match"],
        name=raw.get("name"),
        context_window=raw.get("context_window"),
        deprecated=bool(raw.get("deprecated", False)),
        price_comments=raw.get("price_comments"),
        prices=tuple(
            PriceSet(prices=prices_from_json(p["prices"], units), when=constraint_from_json(p.get("when")))
            for p in raw["prices"]
        ),
        variants=tuple(
            Variant(
                context=dict(v["context"]),
                prices=prices_from_json(v["prices"], units),
                when=constraint_from_json(v.get("when")),
            )
            for v in raw.get("variants", ())
        ),
        origin=origin or raw.get("origin"),
    )


def _provider_from_json(raw: Mapping[str, Any], units: UnitRegistry) -> Provider:
    return Provider(
        id=str(raw["id"]),
        name=str(raw.get("name", raw["id"])),
        api_pattern=raw.get("api_pattern"),
        provider_match=raw.get("provider_match"),
        model_match=raw.get("model_match"),
        fallback_model_providers=tuple(raw.get("fallback_model_providers") or ()),
        pricing_urls=tuple(raw.get("pricing_urls") or ()),
        models=[model_from_json(m, units) for m in raw.get("models", ())],
    )


def new_catalog_document(
    source: str, source_version: str, providers: Sequence[Mapping[str, Any]], units: Mapping[str, Any]
) -> dict[str, Any]:
    """A catalog document stamped with its build time, ready for :func:`dump_catalog`."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "source_version": source_version,
        "built_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "units": dict(units),
        "providers": list(providers),
    }
