"""costspan's own pricing rules (``data/rules.json``): provider aliases, name prefixes, batch factors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class MinimumBilledSeconds:
    provider: str
    models: frozenset[str]
    seconds: int
    source: str


@dataclass(frozen=True)
class Rules:
    provider_aliases: dict[str, str]
    model_prefixes: frozenset[str]
    region_prefixes: tuple[str, ...]
    batch_factors: dict[str, tuple[Decimal, str]]
    minimum_billed_seconds: tuple[MinimumBilledSeconds, ...]
    batch_tiers: frozenset[str]
    default_tiers: frozenset[str]
    cache_1h_providers: frozenset[str]
    cache_1h_model_contains: str
    cache_1h_input_multiplier: Decimal
    cache_1h_source: str
    deployment_factors: dict[str, dict[str, Decimal]]
    deployment_sources: dict[str, str]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Rules:
        return cls(
            provider_aliases={k.lower(): v for k, v in doc["provider_aliases"]["names"].items()},
            model_prefixes=frozenset(doc["model_prefixes"]["prefixes"]),
            region_prefixes=tuple(doc["bedrock_region_profiles"]["prefixes"]),
            batch_factors={
                provider: (Decimal(rule["factor"]), rule["source"])
                for provider, rule in doc["batch_discounts"]["providers"].items()
            },
            minimum_billed_seconds=tuple(
                MinimumBilledSeconds(r["provider"], frozenset(r["models"]), int(r["seconds"]), r["source"])
                for r in doc["minimum_billed_seconds"]["rules"]
            ),
            batch_tiers=frozenset(doc["service_tiers"]["batch"]),
            default_tiers=frozenset(doc["service_tiers"]["default"]),
            cache_1h_providers=frozenset(doc["cache_write_1h"]["providers"]),
            cache_1h_model_contains=doc["cache_write_1h"]["model_contains"],
            cache_1h_input_multiplier=Decimal(doc["cache_write_1h"]["input_multiplier"]),
            cache_1h_source=doc["cache_write_1h"]["source"],
            deployment_factors={
                provider: {kind: Decimal(f) for kind, f in rule["factors"].items()}
                for provider, rule in doc["deployment_types"]["providers"].items()
            },
            deployment_sources={
                provider: rule["source"] for provider, rule in doc["deployment_types"]["providers"].items()
            },
        )

    def provider_id(self, name: str) -> str:
        """The catalog provider id for a provider name of any convention (``azure.ai.openai``,
        ``az.ai.openai`` and ``azure_openai`` are ``azure``): the one rule by which catalog lookups and
        override files read provider names."""
        key = name.strip().lower()
        return self.provider_aliases.get(key, key)

    def price_context(self, service_tier: str | None) -> dict[str, str]:
        """The catalog variant context for a reported service tier (``batch`` is a processing mode)."""
        if not service_tier:
            return {}
        tier = service_tier.strip().lower()
        if tier in self.batch_tiers:
            return {"processing": "batch"}
        if tier in self.default_tiers:
            return {"service_tier": "default"}
        return {"service_tier": tier}


@cache
def default_rules() -> Rules:
    text = resources.files("costspan.pricing").joinpath("data/rules.json").read_text(encoding="utf-8")
    return Rules.from_json(json.loads(text))
