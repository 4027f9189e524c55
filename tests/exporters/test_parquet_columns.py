"""The llm_calls table is built a column at a time; its values are those of the plain row-by-row reading."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from costspan.exporters.parquet import SCHEMA, money, rows_to_table
from costspan.pricing import BUCKETS
from costspan.processors import Span, SpanBatch, build_chain

T0 = 1_760_000_000_000_000_000


def _span(i: int, **attrs) -> Span:
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 1000 + i,
        "gen_ai.usage.output_tokens": 100,
        "costspan.team": "search",
    }
    base.update(attrs)
    return Span("ab" * 16, f"{i + 1:016x}", "chat", T0 + i * 10**9, T0 + i * 10**9 + 10**8, base, {})


def _reference(records) -> pa.Table:
    """The table read row by row, as the columns mean it."""
    rows = []
    for c in records:
        amounts = c.cost_amounts
        row = {
            "start_time": c.start_time_ns // 1000,
            "duration_s": c.duration_s,
            "cost_usd": money(c.cost_usd),
            "chargeback_usd": money(c.chargeback_usd),
            "tags": list((c.tags or {}).items()),
            "time_to_first_chunk_s": c.time_to_first_chunk_s,
            "flags": list(c.flags),
        }
        for i, bucket in enumerate(BUCKETS):
            row[f"cost_{bucket}"] = money(amounts[i]) if amounts is not None else None
        for name in SCHEMA.names:
            if name not in row:
                value = getattr(c, name)
                is_count = name.endswith("_tokens")
                row[name] = value if not is_count or type(value) is int else None
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def test_columns_match_the_row_by_row_reading():
    spans = [
        _span(0),
        _span(1, **{"costspan.tag.region": "eu", "gen_ai.usage.cache_read.input_tokens": 300}),
        _span(2, **{"gen_ai.usage.input_tokens": -5}),  # flagged: the column keeps no count
        _span(3, **{"gen_ai.request.model": "no-such-model-anywhere"}),  # unknown: no cost
        # a provider-billed cost, apportioned over the buckets with more than 12 decimal places
        _span(4, **{"gen_ai.usage.cost.amount": 0.0123456789, "gen_ai.usage.cost.source": "provider"}),
        _span(5, **{"gen_ai.usage.output_tokens": "12x"}),
    ]
    records = [c for c in build_chain()(SpanBatch.from_spans(spans)).calls if c is not None]
    assert any(c.cost_amounts and any(a.as_tuple().exponent < -12 for a in c.cost_amounts) for c in records)
    table = rows_to_table(records)
    assert table.equals(_reference(records))
    assert table.column("cost_usd")[4].as_py() == Decimal("0.012345678900")
