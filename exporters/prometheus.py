"""Prometheus metrics of GenAI cost, for the dashboards and alert rules teams already run.

Counters ``costspan_cost_usd_total``, ``costspan_tokens_total`` (label ``type``: input, output,
cache_read, cache_write, reasoning) and ``costspan_llm_calls_total`` (label ``status``), each labelled by
provider, model, service, environment, team and feature. Every label value set is capped: past its limit,
new values are counted under ``other``, so a label fed by user input cannot explode the series count. A
value longer than :data:`MAX_VALUE_LENGTH` characters is counted under ``other`` too: one span with a
megabyte-long attribute would otherwise put that megabyte in every scrape (``llm_calls`` keeps it whole).
Money becomes a float only here, at the edge; duplicates are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter

from costspan.semconv import GenAICall

from ._tally import Sums, sums

LABELS = ("provider", "model", "service", "environment", "team", "feature")
OVERFLOW = "other"
MAX_VALUE_LENGTH = 256
DEFAULT_LIMITS = {
    "provider": 50,
    "model": 500,
    "service": 200,
    "environment": 20,
    "team": 200,
    "feature": 500,
}


class _CappedLabel:
    """The values a label has taken, up to a limit; later values read as :data:`OVERFLOW`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        value = value or "unknown"
        if len(value) > MAX_VALUE_LENGTH:
            return OVERFLOW
        if value in self.seen:
            return value
        if len(self.seen) < self.limit:
            self.seen.add(value)
            return value
        return OVERFLOW


class CostMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, limits: Mapping[str, int] | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        caps = {**DEFAULT_LIMITS, **(limits or {})}
        self._labels = [_CappedLabel(caps[name]) for name in LABELS]
        self.cost = Counter(
            "costspan_cost_usd", "Cost of LLM calls in US dollars.", LABELS, registry=self.registry
        )
        self.tokens = Counter(
            "costspan_tokens", "Tokens of LLM calls, by type.", (*LABELS, "type"), registry=self.registry
        )
        self.calls = Counter(
            "costspan_llm_calls", "LLM calls, by pricing status.", (*LABELS, "status"), registry=self.registry
        )

    def observe(self, calls: Iterable[GenAICall | None]) -> None:
        self.add(CostTally.of(calls))

    def add(self, tally: CostTally) -> None:
        """Count a batch's sums (from a pipeline worker, which sums where it prices)."""
        caps = self._labels
        capped: dict[tuple[str | None, ...], tuple[str, ...]] = {}

        def labels_of(raw: tuple[str | None, ...]) -> tuple[str, ...]:
            labels = capped.get(raw)
            if labels is None:
                labels = capped[raw] = tuple(cap(value) for cap, value in zip(caps, raw, strict=True))
            return labels

        for (raw, status), n in tally.calls.items():
            self.calls.labels(*labels_of(raw), status).inc(n)
        for raw, amount in tally.cost.items():
            self.cost.labels(*labels_of(raw)).inc(float(amount))
        for (raw, token_type), n in tally.tokens.items():
            self.tokens.labels(*labels_of(raw), token_type).inc(n)


class CostTally:
    """A batch's calls, cost and tokens summed per label set (cost exactly, in Decimal), before label caps.

    Most calls of a batch share a few label sets, and a labelled increment is the costly part, so each
    series is incremented once per batch. A tally is small and picklable: a pipeline worker process sums
    its batch and sends the tally to the process that serves ``/metrics``."""

    __slots__ = ("calls", "cost", "tokens")

    def __init__(self, sums: Sums | None = None) -> None:
        self.calls, self.cost, self.tokens = sums if sums is not None else ({}, {}, {})

    def __getstate__(self) -> Sums:
        return (self.calls, self.cost, self.tokens)

    def __setstate__(self, state: Sums) -> None:
        self.calls, self.cost, self.tokens = state

    @classmethod
    def of(cls, calls: Iterable[GenAICall | None]) -> CostTally:
        """The tally of a batch's records: LLM calls that are not duplicates."""
        return cls(sums(calls))
