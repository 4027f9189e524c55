"""llm_calls as Parquet, queried with real DuckDB over the real files."""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from costspan.exporters.duckdb_views import connect
from costspan.exporters.parquet import SCHEMA, ParquetWriter, write_partitioned
from costspan.processors import Span, SpanBatch, build_chain

T0 = 1_760_000_000_000_000_000  # 2025-10-09 08:53 UTC
HOUR = 3_600_000_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"


def chat(span_id, start, model="gpt-4o", inp=1000, out=100, **attrs):
    return Span(
        TRACE,
        span_id,
        "chat",
        start,
        start + 10**9,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
            **attrs,
        },
        {"service.name": "checkout-api"},
        scope_name="costspan.instrumentation",
    )


def priced(*spans):
    return build_chain()(SpanBatch.from_spans(spans)).calls


def test_rows_partitions_exact_money_and_views(tmp_path):
    # an HTTP span under the first call: stored too, marked as its duplicate
    http = Span(
        TRACE,
        "b1" * 8,
        "POST",
        T0 + 10**6,
        T0 + 9 * 10**8,
        {"url.full": "https://api.openai.com/v1/chat/completions"},
        {"service.name": "checkout-api"},
        parent_span_id="a1" * 8,
        scope_name="opentelemetry.instrumentation.httpx",
    )
    calls = priced(
        chat("a1" * 8, T0, **{"costspan.team": "payments", "costspan.tag.region": "eu"}),
        http,
        chat("a2" * 8, T0 + 2 * HOUR, model="gpt-4o-mini", inp=12345, out=678),
        chat("a3" * 8, T0 + 5 * 10**9, model="no-such-model"),
        chat("a4" * 8, T0 + 6 * 10**9, inp=-3),
    )
    files = ParquetWriter(tmp_path).write([c for c in calls if c is not None])
    # one file per dataset and hour, in the day's folder; the hour in the name
    assert sorted(f"{f.relative_to(tmp_path).parent}/{f.name[:7]}" for f in files) == [
        "llm_calls/date=2025-10-09/part-08",
        "llm_calls/date=2025-10-09/part-10",
        "llm_calls_duplicates/date=2025-10-09/part-08",
    ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [".storage"]
    assert not list((tmp_path / ".storage" / "tmp").iterdir())
    assert pq.read_schema(files[0]).field("cost_usd").type == SCHEMA.field("cost_usd").type

    con = connect(tmp_path)
    total, rows = con.execute("SELECT sum(cost_usd), count(*) FROM llm_calls").fetchone()
    # gpt-4o 1000/100 at $2.50/$10 = 0.0035; gpt-4o-mini 12345/678 at $0.15/$0.60 = 0.00185175 + 0.0004068
    assert total == Decimal("0.0035") + Decimal("0.00185175") + Decimal("0.0004068")
    assert rows == 4
    assert con.execute("SELECT count(*) FROM llm_calls_all").fetchone()[0] == 5
    assert (
        con.execute("SELECT duplicate_of FROM llm_calls_all WHERE span_id = ?", ["b1" * 8]).fetchone()[0]
        == "a1" * 8
    )
    statuses = dict(con.execute("SELECT pricing_status, count(*) FROM llm_calls GROUP BY 1").fetchall())
    assert statuses == {"priced": 2, "unknown_model": 1, "invalid_usage": 1}
    invalid = con.execute(
        "SELECT input_tokens, cost_usd, flags FROM llm_calls WHERE pricing_status = 'invalid_usage'"
    ).fetchone()
    assert invalid[0] == -3 and invalid[1] is None and "negative" in " ".join(invalid[2])
    team, region = con.execute(
        "SELECT team, tags['region'] FROM llm_calls WHERE span_id = ?", ["a1" * 8]
    ).fetchone()
    assert (team, region) == ("payments", "eu")
    # repricing what-ifs run on the stored usage
    what_if = con.execute(
        "SELECT sum(input_tokens * 2.0 / 1e6) FROM llm_calls WHERE request_model = 'gpt-4o-mini'"
    ).fetchone()[0]
    assert float(what_if) == 12345 * 2.0 / 1e6


def test_views_exist_before_any_data(tmp_path):
    con = connect(tmp_path)
    assert con.execute("SELECT count(*), sum(cost_usd) FROM llm_calls").fetchone() == (0, None)
    columns = {row[0] for row in con.execute("DESCRIBE llm_calls").fetchall()}
    assert {
        "start_time",
        "trace_id",
        "span_id",
        "cost_usd",
        "pricing_status",
        "tags",
        "duplicate_of",
    } <= columns


def test_each_row_goes_to_the_file_of_its_own_utc_date_and_hour(tmp_path):
    # on either side of an hour, of a day, and of 1970 (where integer division would round the wrong way)
    micros = [
        -1,
        0,
        T0 // 1000 - T0 // 1000 % (HOUR // 1000) - 1,
        T0 // 1000 - T0 // 1000 % (HOUR // 1000),
        1_759_968_000_000_000 - 1,  # 2025-10-08 23:59:59.999999
    ]
    table = pa.table({"start_time": pa.array(micros, pa.timestamp("us")), "row": list(range(len(micros)))})
    files = write_partitioned(tmp_path, "t", table)
    placed = {
        row: f"{f.parent.name}/{f.name[:7]}" for f in files for row in pq.read_table(f)["row"].to_pylist()
    }
    assert placed == {
        0: "date=1969-12-31/part-23",
        1: "date=1970-01-01/part-00",
        2: "date=2025-10-09/part-07",
        3: "date=2025-10-09/part-08",
        4: "date=2025-10-08/part-23",
    }
    single = write_partitioned(tmp_path / "one", "t", table.slice(3, 1))
    assert [f.name[:7] for f in single] == ["part-08"]
