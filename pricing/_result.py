"""The priced result of one call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._units import BUCKETS

# Pricing statuses. A result that is not PRICED or ESTIMATED has no local cost.
PRICED = "priced"
ESTIMATED = "estimated"  # priced as a related model (fine-tune at base rates, unlisted region profile)
UNKNOWN_MODEL = "unknown_model"
NO_USAGE = "no_usage"
INVALID_USAGE = "invalid_usage"

SOURCE_LOCAL = "local"
SOURCE_PROVIDER = "provider"

ZERO = Decimal(0)


def decimal_str(value: Decimal | None) -> str | None:
    """A decimal as plain digits (never exponent notation), trailing zeros removed."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@dataclass(slots=True)
class PriceResult:
    status: str
    cost_usd: Decimal | None = None
    source: str | None = None
    provider: str | None = None  # the catalog provider id the call was priced under
    model: str | None = None  # the catalog model id
    amounts: Sequence[Decimal] | None = None  # one amount per bucket of BUCKETS, in that order
    rules: tuple[str, ...] = ()  # what decided the price: resolution steps, variants, tiers, overrides
    catalog_version: str | None = None
    price_start: str | None = None  # date the price in force took effect, if dated
    local_cost_usd: Decimal | None = None  # costspan's own figure when the provider reported one
    chargeback_usd: Decimal | None = None
    detail: str | None = None  # why a result is not priced, or what to watch for
    warnings: tuple[str, ...] = ()
    currency: str = "USD"

    @property
    def breakdown(self) -> dict[str, Decimal] | None:
        """Amounts by bucket name (``input``, ``cache_read``, ``cache_write``, ``output``, ``reasoning``,
        ``other``); they sum to ``cost_usd`` exactly."""
        return None if self.amounts is None else dict(zip(BUCKETS, self.amounts, strict=True))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "cost_usd": decimal_str(self.cost_usd),
            "currency": self.currency,
            "status": self.status,
            "source": self.source,
            "provider": self.provider,
            "model": self.model,
            "breakdown": (
                {bucket: decimal_str(amount) for bucket, amount in zip(BUCKETS, self.amounts, strict=True)}
                if self.amounts is not None
                else None
            ),
            "rules": list(self.rules),
            "catalog_version": self.catalog_version,
        }
        for key in ("price_start", "detail"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.local_cost_usd is not None:
            out["local_cost_usd"] = decimal_str(self.local_cost_usd)
        if self.chargeback_usd is not None:
            out["chargeback_usd"] = decimal_str(self.chargeback_usd)
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out
