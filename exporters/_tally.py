"""What a batch of records adds to the cost metrics: calls, cost and tokens, summed per label set.

A pipeline worker sums every batch it stores, so this runs once per span; it is compiled (``setup.py``).
The sums are plain dictionaries of plain values: they cross to the process that serves ``/metrics``
(:class:`costspan.exporters.prometheus.CostTally`), where the label caps apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from costspan.pricing import DEFAULT_TOKEN_LIMIT
from costspan.semconv import LLM, GenAICall

# provider, model, service, environment, team, feature: the metrics' labels, before their caps
RawLabels = tuple[str | None, str | None, str | None, str | None, str | None, str | None]
Sums = tuple[dict[tuple[RawLabels, str], int], dict[RawLabels, Decimal], dict[tuple[RawLabels, str], int]]

_ZERO: Final = Decimal(0)


def sums(calls: Iterable[GenAICall | None]) -> Sums:
    """Calls by (labels, pricing status), cost by labels and tokens by (labels, token type), of the LLM
    calls that are not duplicates."""
    counted: dict[tuple[RawLabels, str], int] = {}
    costs: dict[RawLabels, Decimal] = {}
    tokens: dict[tuple[RawLabels, str], int] = {}
    for call in calls:
        if call is None or call.kind != LLM or call.duplicate_of is not None:
            continue
        raw: RawLabels = (
            call.provider,
            call.pricing_model or call.model,
            call.service_name,
            call.environment,
            call.team,
            call.feature,
        )
        key = (raw, call.pricing_status or "unpriced")
        counted[key] = counted.get(key, 0) + 1
        cost = call.cost_usd
        if cost is not None:
            costs[raw] = costs.get(raw, _ZERO) + cost
        _add(tokens, raw, "input", call.input_tokens)
        _add(tokens, raw, "output", call.output_tokens)
        _add(tokens, raw, "cache_read", call.cache_read_tokens)
        _add(tokens, raw, "cache_write", call.cache_write_tokens)
        _add(tokens, raw, "reasoning", call.reasoning_tokens)
    return counted, costs, tokens


def _add(tokens: dict[tuple[RawLabels, str], int], raw: RawLabels, token_type: str, count: object) -> None:
    # A count that is no positive whole number, or more than pricing's limit of a plausible count, was
    # flagged on the record (invalid_usage); the metrics take real counts only: one corrupt count would
    # outweigh every real one, or be more than the float a counter holds.
    if type(count) is int and 0 < count <= DEFAULT_TOKEN_LIMIT:
        key = (raw, token_type)
        tokens[key] = tokens.get(key, 0) + count
