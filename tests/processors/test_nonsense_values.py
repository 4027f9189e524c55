"""Values that make no sense (infinite, NaN, negative, fractional, huge token counts; absurd provider costs)
go through the real processor chain, the Prometheus sums and the Parquet writer: each call is stored and
flagged, nothing raises, and the batch's sums count only the real calls' tokens and cost."""

from __future__ import annotations

import io
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from costspan.exporters.parquet import rows_to_table
from costspan.exporters.prometheus import CostMetrics, CostTally
from costspan.processors import Span, SpanBatch, build_chain

T0 = 1_750_000_000_000_000_000  # 2025-06-15


def chat(n: int, **attrs) -> Span:
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 100,
        **attrs,
    }
    return Span(f"{n:032x}", f"{n:016x}", "chat gpt-4o", T0 + n, T0 + n + 1000, base, {"service.name": "s"})


NONSENSE = [
    {"gen_ai.usage.input_tokens": float("inf")},
    {"gen_ai.usage.output_tokens": float("nan")},
    {"gen_ai.usage.input_tokens": -1000},
    {"gen_ai.usage.input_tokens": 2.5},
    {"gen_ai.usage.input_tokens": 2**63 - 1},
    {"gen_ai.usage.input_tokens": "9" * 400},  # a number as a string, more than a float holds
    {"gen_ai.usage.output_tokens": 1e300},
    {"gen_ai.request.model": "no-such-model", "gen_ai.usage.input_tokens": "9" * 400},
    {"gen_ai.usage.cache_read.input_tokens": "x", "gen_ai.usage.cache_creation.input_tokens": 5},
]


@pytest.mark.parametrize("attrs", NONSENSE, ids=[repr(a)[:60] for a in NONSENSE])
def test_a_nonsense_count_is_stored_flagged_and_left_out_of_the_sums(attrs):
    batch = build_chain()(SpanBatch.from_spans([chat(1, **attrs), chat(2)]))
    bad, good = batch.calls
    assert bad.pricing_status in ("invalid_usage", "unknown_model") and bad.cost_usd is None
    assert bad.flags, "the record says what was wrong"
    assert good.pricing_status == "priced" and good.cost_usd == Decimal("0.0035")

    tally = CostTally.of(batch.calls)
    metrics = CostMetrics()
    metrics.add(tally)  # a count too large for a float raised OverflowError here, and the batch was lost
    tokens = {labels[-1]: n for labels, n in ((k[1], v) for k, v in tally.tokens.items())}
    assert max(tokens.values()) <= 1000 + 1000  # the good call's input, and the bad one's only if real
    assert sum(tally.cost.values()) == Decimal("0.0035")

    table = rows_to_table(batch.calls)
    pq.write_table(table, io.BytesIO())  # Parquet takes every row
    assert table.num_rows == 2


@pytest.mark.parametrize("amount", [1e30, 1e300, float("inf"), -5.0, "lots"])
def test_an_absurd_provider_cost_is_ignored_and_flagged(amount):
    attrs = {"gen_ai.usage.cost.amount": amount, "gen_ai.usage.cost.source": "provider"}
    batch = build_chain()(SpanBatch.from_spans([chat(1, **attrs)]))
    call = batch.calls[0]
    assert call.cost_source == "local" and call.cost_usd == Decimal("0.0035")  # priced from its usage
    assert any(flag.startswith("provider-reported cost ignored") for flag in call.flags), call.flags
    if amount in (1e30, 1e300):
        assert any("implausibly large" in flag for flag in call.flags), call.flags
    CostMetrics().add(CostTally.of(batch.calls))
    pq.write_table(rows_to_table(batch.calls), io.BytesIO())


def test_a_plausible_provider_cost_wins():
    attrs = {"gen_ai.usage.cost.amount": 0.5, "gen_ai.usage.cost.source": "provider"}
    call = build_chain()(SpanBatch.from_spans([chat(1, **attrs)])).calls[0]
    assert (call.cost_source, call.cost_usd) == ("provider", Decimal("0.5"))
