"""A quote: what one model costs on one UTC day, for the common call, resolved once for many calls."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._plan import CompiledPrices, evaluate_named
from ._usage import problem_with


@dataclass(frozen=True, slots=True)
class Quote:
    """What one model is charged on one UTC day, for the common call: usage made of the named counts only,
    no cost reported by the provider, no one-hour cache writes. A batch of calls groups by quote, so that
    resolution, plan and provenance are found once per group and each call costs one evaluation.
    :meth:`PricingEngine.price` gives the same figures for these calls; every other call goes through it.
    """

    compiled: CompiledPrices  # with ``named_units``
    status: str
    provider: str
    model: str
    rules: tuple[str, ...]
    catalog_version: str
    token_limit: int

    def cost(self, named: tuple[Any, ...]) -> tuple[list[Decimal], Decimal] | None:
        """Amounts by bucket and total for a call's named counts (:data:`named_counts`); ``None`` when the
        counts are not plain valid whole numbers (then :meth:`PricingEngine.price` says why)."""
        if problem_with(named, None, self.token_limit) is not None:
            return None
        return evaluate_named(self.compiled, named)
