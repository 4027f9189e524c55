"""Where costspan prices a call differently from genai-prices on purpose: the one place they are listed.

Each entry is a predicate over costspan's result for a corpus case, with the reason. The parity test
accepts a differing total only when one of these explains it, and fails on any other difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from costspan.pricing import PriceResult


@dataclass(frozen=True)
class DeliberateDifference:
    name: str
    reason: str
    applies: Callable[[PriceResult], bool]


DELIBERATE_DIFFERENCES = (
    DeliberateDifference(
        name="provider batch factor",
        reason=(
            "A batch request for a model whose catalog entry has no batch price in force at that date. "
            "genai-prices charges standard rates (its batch variants start when they were verified, e.g. "
            "2026-10-14 for OpenAI, and retired models have none); the providers bill batch requests at half "
            "price (OpenAI, Anthropic and Google batch documentation, named in pricing/data/rules.json), so "
            "costspan applies the documented 0.5 factor to token prices."
        ),
        applies=lambda result: any(rule.startswith("batch x") for rule in result.rules),
    ),
    DeliberateDifference(
        name="Claude one-hour cache writes",
        reason=(
            "A Claude model (Anthropic, Bedrock, Vertex AI) whose catalog entry has a cache-write price "
            "but no one-hour cache-write price. genai-prices charges one-hour writes at the five-minute rate "
            "(1.25x input); Anthropic's published rate is 2x input, which costspan applies."
        ),
        applies=lambda result: any(rule.startswith("1h cache write") for rule in result.rules),
    ),
)


def explain(result: PriceResult) -> DeliberateDifference | None:
    return next((d for d in DELIBERATE_DIFFERENCES if d.applies(result)), None)
