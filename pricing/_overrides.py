"""User overrides: a YAML file whose prices win over the catalog.

Four sections, all optional::

    aliases:            # names the catalog cannot know (an Azure deployment, a gateway route)
      - model: "prod-gpt4o-*"        # shell-style pattern, case-insensitive
        provider: azure              # optional: only for calls at this provider
        target: gpt-4o-2024-08-06    # priced as this model ...
        target_provider: openai      # ... at this provider (optional)
    models:             # custom models and negotiated prices; searched before the catalog
      - id: llama-3.1-70b-internal
        provider: self-hosted        # optional; "*" or absent: any provider
        match: "llama-3.1-70b*"      # optional pattern or clause ({starts_with: ...}); default: the id
        prices:                      # one price set, or a list of dated ones
          - {start_date: 2025-01-01, input_mtok: 0.20, output_mtok: 0.20}
    discounts:          # negotiated discounts on the computed cost; the first that matches applies
      - {provider: openai, model: "gpt-4o*", percent: 15, start_date: 2025-01-01, end_date: 2025-12-31}
    chargeback:         # what teams are charged internally, reported beside the true cost
      - {provider: "*", markup_percent: 10}
      - {model: "llama-*", prices: {input_mtok: 0.5, output_mtok: 1.5}}

Price keys are the catalog's (``input_mtok``, ``cache_read_mtok``, ``web_searches_kcount`` ...), in USD.
Provider names may be written in any convention the catalog lookups read (``azure``, ``azure.ai.openai``,
``gcp.vertex_ai``, ``aws.bedrock`` ...): each is read as its catalog provider id (``Rules.provider_id``),
as a collected span's provider is, so ``provider: azure`` covers spans that report ``azure.ai.openai``.
Discounts and chargeback match the provider the call was made to (an Azure call priced at OpenAI's rates
is an Azure call).
Numbers are read as exact decimals from the file's text. Any mistake is an :class:`OverrideError` that
names the file and line.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ._catalog import Catalog, CatalogError, Model, Provider, model_from_json
from ._match import ClauseError, glob_clause
from ._rules import Rules, default_rules
from ._units import UnitRegistry
from .yamlfile import Located, load_yaml

_HUNDRED = Decimal(100)


class OverrideError(ValueError):
    """A malformed override file; the message starts with ``file:line:``."""


@dataclass(frozen=True)
class Alias:
    model: str  # pattern
    provider: str | None
    target: str
    target_provider: str | None
    origin: str

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider is not None and provider != self.provider:
            return False
        return fnmatch.fnmatchcase(model, self.model)


@dataclass(frozen=True)
class Discount:
    provider: str
    model: str
    percent: Decimal
    start_date: date | None
    end_date: date | None
    name: str | None
    origin: str

    def applies(self, provider_id: str, model_id: str, day: date) -> bool:
        return (
            fnmatch.fnmatchcase(provider_id, self.provider)
            and fnmatch.fnmatchcase(model_id.lower(), self.model)
            and (self.start_date is None or day >= self.start_date)
            and (self.end_date is None or day <= self.end_date)
        )


@dataclass(frozen=True)
class Chargeback:
    provider: str
    model: str
    markup_percent: Decimal
    prices: Mapping[str, Any] | None
    origin: str

    def applies(self, provider_id: str, model_id: str) -> bool:
        return fnmatch.fnmatchcase(provider_id, self.provider) and fnmatch.fnmatchcase(
            model_id.lower(), self.model
        )


class Overrides:
    """A parsed override file. Build it with :func:`load_overrides`."""

    def __init__(
        self,
        path: str,
        digest: str,
        catalog: Catalog | None,
        aliases: list[Alias],
        discounts: list[Discount],
        chargebacks: list[Chargeback],
    ) -> None:
        self.path = path
        self.catalog = catalog
        self.aliases = aliases
        self.discounts = discounts
        self.chargebacks = chargebacks
        self.version = f"overrides:{Path(path).name}#{digest[:12]}"

    def alias_for(self, provider: str | None, model: str) -> tuple[str | None, str, str] | None:
        for alias in self.aliases:
            if alias.matches(provider, model):
                return (alias.target_provider or provider), alias.target, alias.origin
        return None

    def discount(
        self, provider_id: str, model_id: str, at: datetime, amounts: list[Decimal]
    ) -> tuple[list[Decimal], tuple[str, ...]]:
        day = at.date()
        for rule in self.discounts:
            if rule.applies(provider_id, model_id, day):
                factor = (_HUNDRED - rule.percent) / _HUNDRED
                label = (
                    f"discount {rule.percent}%" + (f" ({rule.name})" if rule.name else "") + f" {rule.origin}"
                )
                return [amount * factor for amount in amounts], (label,)
        return amounts, ()

    def chargeback_rule(self, provider_id: str, model_id: str) -> Chargeback | None:
        return next((rule for rule in self.chargebacks if rule.applies(provider_id, model_id)), None)


# -- loading ------------------------------------------------------------------------------------------


def load_overrides(path: str | Path, units: UnitRegistry, rules: Rules | None = None) -> Overrides:
    """Parse and validate an override file against the catalog's unit registry; provider names are read
    by ``rules`` (default: costspan's), as catalog lookups read them."""
    doc, text = load_yaml(path, OverrideError)
    return _Parser(str(path), units, rules or default_rules()).parse(
        doc, hashlib.sha256(text.encode()).hexdigest()
    )


class _Parser:
    def __init__(self, path: str, units: UnitRegistry, rules: Rules) -> None:
        self.path = path
        self.units = units
        self.rules = rules

    def error(self, line: int, message: str) -> OverrideError:
        return OverrideError(f"{self.path}:{line}: {message}")

    def parse(self, doc: Any, digest: str) -> Overrides:
        if doc is None:
            doc = Located()
            doc.line, doc.key_lines = 1, {}
        if not isinstance(doc, Located):
            raise self.error(1, "an override file is a mapping with aliases, models, discounts, chargeback")
        self.known_keys(doc, {"aliases", "models", "discounts", "chargeback"})
        aliases = [self.alias(item) for item in self.items(doc, "aliases")]
        models = [self.model(item) for item in self.items(doc, "models")]
        discounts = [self.discount(item) for item in self.items(doc, "discounts")]
        chargebacks = [self.chargeback(item) for item in self.items(doc, "chargeback")]
        catalog = self.catalog(models, digest) if models else None
        return Overrides(self.path, digest, catalog, aliases, discounts, chargebacks)

    # -- sections --------------------------------------------------------------------------------------

    def items(self, doc: Located, key: str) -> list[Located]:
        value = doc.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(doc.key_lines[key], f"{key!r} is a list")
        for item in value:
            if not isinstance(item, Located):
                raise self.error(doc.key_lines[key], f"each entry of {key!r} is a mapping; got {item!r}")
        return value

    def alias(self, item: Located) -> Alias:
        self.known_keys(item, {"model", "provider", "target", "target_provider"})
        return Alias(
            model=self.string(item, "model").lower(),
            provider=self.provider(item, "provider"),
            target=self.string(item, "target").lower(),
            target_provider=self.provider(item, "target_provider"),
            origin=f"{self.path}:{item.line}",
        )

    def model(self, item: Located) -> tuple[str, Model]:
        self.known_keys(item, {"id", "provider", "match", "name", "prices", "variants", "context_window"})
        model_id = self.string(item, "id")
        provider = self.provider(item, "provider") or "*"
        match = item.get("match", model_id)
        if isinstance(match, str):
            clause: Any = glob_clause(match.lower())
        elif isinstance(match, Mapping):
            clause = _plain(match)
        else:
            raise self.error(item.key_lines.get("match", item.line), "match is a pattern or a clause mapping")
        raw_prices = item.get("prices")
        if raw_prices is None:
            raise self.error(item.line, f"model {model_id!r} needs prices")
        price_list = raw_prices if isinstance(raw_prices, list) else [raw_prices]
        prices = [self.price_set(p, item.key_lines["prices"]) for p in price_list]
        variants = []
        for variant in item.get("variants") or []:
            if not isinstance(variant, Located):
                raise self.error(item.key_lines["variants"], "each variant is a mapping")
            self.known_keys(variant, {"context", "prices", "start_date"})
            context = variant.get("context")
            if not isinstance(context, Mapping) or not context:
                raise self.error(variant.line, "a variant needs a context, e.g. {processing: batch}")
            variants.append(
                {
                    "context": {str(k): str(v) for k, v in context.items()},
                    "prices": self.prices(variant.get("prices"), variant.line),
                    **self.start(variant),
                }
            )
        raw = {"id": model_id, "match": clause, "prices": prices, "variants": variants}
        if item.get("name") is not None:
            raw["name"] = str(item["name"])
        try:
            return provider, model_from_json(raw, self.units, origin=f"{self.path}:{item.line}")
        except (CatalogError, ClauseError, ValueError) as exc:
            raise self.error(item.line, str(exc)) from exc

    def price_set(self, raw: Any, line: int) -> dict[str, Any]:
        if not isinstance(raw, Located):
            raise self.error(line, "prices are a mapping of price keys, or a list of them with start_date")
        prices = {k: v for k, v in raw.items() if k != "start_date"}
        return {"prices": self.prices(prices, raw.line, raw), **self.start(raw)}

    def start(self, raw: Located) -> dict[str, Any]:
        if "start_date" not in raw:
            return {}
        return {"when": {"start_date": self.date(raw, "start_date").isoformat()}}

    def prices(self, raw: Any, line: int, located: Located | None = None) -> dict[str, Any]:
        if not isinstance(raw, Mapping) or not raw:
            raise self.error(line, "prices are a non-empty mapping of price keys to USD amounts")
        lines = located.key_lines if located is not None else getattr(raw, "key_lines", {})
        out: dict[str, Any] = {}
        for key, value in raw.items():
            key_line = lines.get(key, line)
            if key not in self.units.by_price_key:
                known = ", ".join(
                    sorted(k for k in self.units.by_price_key if k.endswith(("_mtok", "_kcount")))[:12]
                )
                raise self.error(key_line, f"unknown price key {key!r} (known keys include {known}, ...)")
            if isinstance(value, Mapping):
                base = self.amount(value.get("base"), key_line, key)
                tiers = value.get("tiers")
                if not isinstance(tiers, list) or not tiers:
                    raise self.error(key_line, f"{key}: tiers are a list of [threshold, price]")
                parsed = []
                for tier in tiers:
                    if not (isinstance(tier, list) and len(tier) == 2 and isinstance(tier[0], int)):
                        raise self.error(
                            key_line, f"{key}: each tier is [threshold_tokens, price]; got {tier!r}"
                        )
                    parsed.append([tier[0], str(self.amount(tier[1], key_line, key))])
                out[key] = {"base": str(base), "tiers": parsed}
            else:
                out[key] = str(self.amount(value, key_line, key))
        return out

    def discount(self, item: Located) -> Discount:
        self.known_keys(item, {"provider", "model", "percent", "start_date", "end_date", "name"})
        percent = self.amount(item.get("percent"), item.key_lines.get("percent", item.line), "percent")
        if percent > _HUNDRED:
            raise self.error(item.key_lines["percent"], f"percent is at most 100; got {percent}")
        start = self.date(item, "start_date") if "start_date" in item else None
        end = self.date(item, "end_date") if "end_date" in item else None
        if start and end and end < start:
            raise self.error(item.key_lines["end_date"], "end_date is before start_date")
        return Discount(
            provider=self.provider(item, "provider") or "*",
            model=(self.optional_string(item, "model") or "*").lower(),
            percent=percent,
            start_date=start,
            end_date=end,
            name=self.optional_string(item, "name"),
            origin=f"{self.path}:{item.line}",
        )

    def chargeback(self, item: Located) -> Chargeback:
        self.known_keys(item, {"provider", "model", "markup_percent", "prices"})
        if "markup_percent" not in item and "prices" not in item:
            raise self.error(item.line, "a chargeback rule needs markup_percent, prices, or both")
        markup = (
            self.amount(item["markup_percent"], item.key_lines["markup_percent"], "markup_percent")
            if "markup_percent" in item
            else Decimal(0)
        )
        prices = (
            self.prices(item["prices"], item.key_lines["prices"], item["prices"])
            if "prices" in item
            else None
        )
        return Chargeback(
            provider=self.provider(item, "provider") or "*",
            model=(self.optional_string(item, "model") or "*").lower(),
            markup_percent=markup,
            prices=prices,
            origin=f"{self.path}:{item.line}",
        )

    def catalog(self, models: list[tuple[str, Model]], digest: str) -> Catalog:
        providers: dict[str, Provider] = {}
        for provider_id, model in models:
            providers.setdefault(provider_id, Provider(id=provider_id, name=provider_id, models=[]))
            providers[provider_id].models.append(model)
        return Catalog(
            source="overrides",
            source_version=digest[:12],
            built_at=datetime.now().isoformat(),
            providers=list(providers.values()),
            units=self.units,
            path=self.path,
            search_all_providers=True,
        )

    # -- values ----------------------------------------------------------------------------------------

    def known_keys(self, item: Located, allowed: set[str]) -> None:
        for key in item:
            if key not in allowed:
                raise self.error(
                    item.key_lines.get(key, item.line),
                    f"unknown key {key!r}; expected one of {sorted(allowed)}",
                )

    def string(self, item: Located, key: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self.error(item.key_lines.get(key, item.line), f"{key!r} is a non-empty string")
        return value.strip()

    def provider(self, item: Located, key: str) -> str | None:
        """A provider name read as its catalog id; a pattern (``*``, ``az*``) is kept, lower-cased."""
        name = self.optional_string(item, key)
        if name is None:
            return None
        return name.lower() if any(ch in name for ch in "*?[") else self.rules.provider_id(name)

    def optional_string(self, item: Located, key: str) -> str | None:
        return self.string(item, key) if item.get(key) is not None else None

    def amount(self, value: Any, line: int, key: str) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise self.error(line, f"{key}: a non-negative number; got {value!r}")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise self.error(line, f"{key}: not a number: {value!r}") from None
        if not amount.is_finite() or amount < 0:
            raise self.error(line, f"{key}: a finite, non-negative number; got {value!r}")
        return amount

    def date(self, item: Located, key: str) -> date:
        value = item[key]
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise self.error(item.key_lines[key], f"{key}: a date as YYYY-MM-DD; got {value!r}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
