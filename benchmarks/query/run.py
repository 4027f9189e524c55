"""Query speed over 10 million stored calls: spend by day, model, feature, top customers, p95 latency.

    python benchmarks/query/run.py [--calls 10000000] [--days 45] [--runs 7] [--runs-before 1] [--dir DIR]
    (or: make bench-query)

What is measured. ``--calls`` LLM calls over ``--days`` days, generated column by column with pyarrow (no
per-row Python) and written through the collector's own writer (``write_partitioned``: the ``llm_calls``
schema, Hive partitions by date with the hour in the file name, zstd, atomic renames), one day at a time so
memory stays bounded, two flushes per hour. Realistic cardinalities: 12 models of 5 providers, 8 teams, 30
features, 10,000 customers (a few large ones, a long tail), 50,000 users, 6 services; costs are exact
DECIMAL(38,12) from each model's per-token prices. Then the five queries run as a user runs them with
``costspan sql``: on a connection from ``costspan.exporters.duckdb_views.connect``, against the ``llm_calls``
view, after one warm-up run, ``--runs`` times each after compaction and ``--runs-before`` times before it (a
query then takes seconds); the median is printed. Side by side: the same queries before compaction (two files
per hour) and after it (one compacted file per past day). Also printed: the time to open a connection (list
the partitions and build the views), bytes on disk per call, and how long generation and compaction took.
The project's goal: each query under 200 ms median on a 2-core machine, after compaction.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from costspan.exporters.compaction import compact
from costspan.exporters.duckdb_views import connect
from costspan.exporters.parquet import SCHEMA, TABLE, write_partitioned
from costspan.exporters.rollups import ROLLUPS

# provider, model, weight, $ per million input tokens, $ per million output tokens (list prices of the
# providers' pricing pages as in the embedded catalog; only their relative size matters here)
MODELS = [
    ("openai", "gpt-4o-mini", 30, "0.15", "0.60"),
    ("openai", "gpt-4o", 12, "2.50", "10"),
    ("openai", "gpt-4.1-mini", 10, "0.40", "1.60"),
    ("openai", "o4-mini", 5, "1.10", "4.40"),
    ("openai", "text-embedding-3-small", 8, "0.02", "0"),
    ("anthropic", "claude-sonnet-4-5", 12, "3", "15"),
    ("anthropic", "claude-haiku-4-5", 8, "1", "5"),
    ("gcp.gemini", "gemini-2.5-flash", 6, "0.30", "2.50"),
    ("gcp.gemini", "gemini-2.5-pro", 2, "1.25", "10"),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", 3, "3", "15"),
    ("mistral_ai", "mistral-large-latest", 2, "2", "6"),
    ("mistral_ai", "mistral-small-latest", 2, "0.10", "0.30"),
]
TEAMS = ["payments", "search", "support", "growth", "platform", "risk", "data", "mobile"]
FEATURES = [f"feature-{i:02d}" for i in range(30)]
SERVICES = ["checkout-api", "search-api", "support-bot", "ranker", "summarizer", "batch-jobs"]
CUSTOMERS = 10_000
USERS = 50_000
QUERIES = {
    "spend by day": (
        "SELECT CAST(start_time AS DATE) AS day, sum(cost_usd) FROM llm_calls GROUP BY 1 ORDER BY 1"
    ),
    "spend by model": (
        "SELECT provider, request_model, count(*), sum(cost_usd) FROM llm_calls GROUP BY 1, 2 ORDER BY 4 DESC"
    ),
    "spend by feature": "SELECT feature, sum(cost_usd) FROM llm_calls GROUP BY 1 ORDER BY 2 DESC",
    "top customers": (
        "SELECT customer_id, sum(cost_usd) AS spend FROM llm_calls GROUP BY 1 ORDER BY spend DESC LIMIT 20"
    ),
    "p95 latency by model": (
        "SELECT request_model, quantile_cont(duration_s, 0.95) FROM llm_calls GROUP BY 1 ORDER BY 2 DESC"
    ),
}
_PICO = 10**12  # cost is stored in units of 1e-12 USD (DECIMAL(38,12))


def weighted(dictionary: list[str], weights: list[int], uniform: pa.Array) -> pa.Array:
    """Values of ``dictionary`` drawn by ``weights``, from uniform draws in [0, 1)."""
    table = pa.array([i for i, w in enumerate(weights) for _ in range(w)], pa.int32())
    slots = pc.cast(pc.floor(pc.multiply(uniform, len(table))), pa.int32())
    return pc.take(table, slots)


def uniform_index(n_values: int, uniform: pa.Array) -> pa.Array:
    return pc.cast(pc.floor(pc.multiply(uniform, n_values)), pa.int32())


def lognormal(n: int, median: float, sigma: float) -> pa.Array:
    # Box-Muller: a standard normal from two uniform draws
    u1 = pc.subtract(1.0, pc.random(n))
    u2 = pc.random(n)
    normal = pc.multiply(pc.sqrt(pc.multiply(-2.0, pc.ln(u1))), pc.cos(pc.multiply(2 * math.pi, u2)))
    return pc.exp(pc.add(math.log(median), pc.multiply(sigma, normal)))


def hex_ids(n: int, nbytes: int) -> pa.Array:
    text = os.urandom(n * nbytes).hex().encode()
    width = 2 * nbytes
    offsets = pa.array(range(0, n * width + 1, width), pa.int32())
    return pa.StringArray.from_buffers(n, offsets.buffers()[1], pa.py_buffer(text))


def money(units: pa.Array) -> pa.Array:
    """int64 amounts in 1e-12 USD as DECIMAL(38,12), exactly: the same unscaled integers, read at scale 12."""
    whole = pc.cast(units, pa.decimal128(38, 0))
    return pa.Array.from_buffers(pa.decimal128(38, 12), len(whole), whole.buffers())


def strings(values: list[str], index: pa.Array) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), index)


def day_of_calls(day: datetime, n: int) -> pa.Table:
    """``n`` calls spread over one UTC day, in the ``llm_calls`` schema."""
    model_index = weighted([m[1] for m in MODELS], [m[2] for m in MODELS], pc.random(n))
    micros = pc.cast(pc.floor(pc.multiply(pc.random(n), 86_400 * 10**6)), pa.int64())
    start = pc.cast(pc.add(micros, int(day.timestamp()) * 10**6), pa.timestamp("us", tz="UTC"))
    inp = pc.cast(pc.add(pc.round(lognormal(n, 1200, 1.0)), 1), pa.int64())
    out = pc.cast(pc.round(lognormal(n, 250, 0.9)), pa.int64())
    embedding = pc.equal(strings([m[1] for m in MODELS], model_index), "text-embedding-3-small")
    out = pc.if_else(embedding, 0, out)
    cache_read = pc.cast(pc.floor(pc.multiply(inp, pc.multiply(pc.random(n), 0.5))), pa.int64())
    in_price = pc.take(pa.array([int(float(m[3]) * 10**6) for m in MODELS], pa.int64()), model_index)
    out_price = pc.take(pa.array([int(float(m[4]) * 10**6) for m in MODELS], pa.int64()), model_index)
    # price per token in 1e-12 USD = $ per million tokens * 1e6
    cost_in = pc.multiply(inp, in_price)
    cost_out = pc.multiply(out, out_price)
    # a few large customers and a long tail: the square of a uniform draw favours low ids
    u = pc.random(n)
    customer = uniform_index(CUSTOMERS, pc.multiply(u, u))
    columns = {
        "start_time": start,
        "duration_s": pc.add(0.2, pc.divide(pc.cast(out, pa.float64()), 80.0)),
        "trace_id": hex_ids(n, 16),
        "span_id": hex_ids(n, 8),
        "service_name": strings(SERVICES, uniform_index(len(SERVICES), pc.random(n))),
        "provider": strings([m[0] for m in MODELS], model_index),
        "operation": pc.if_else(embedding, "embeddings", "chat"),
        "request_model": strings([m[1] for m in MODELS], model_index),
        "response_model": strings([m[1] for m in MODELS], model_index),
        "input_tokens": inp,
        "output_tokens": out,
        "cache_read_tokens": cache_read,
        "cost_usd": money(pc.add(cost_in, cost_out)),
        "cost_input": money(cost_in),
        "cost_output": money(cost_out),
        "cost_source": pa.array(["local"] * n, pa.string()),
        "pricing_status": pa.array(["priced"] * n, pa.string()),
        "user_id": pc.binary_join_element_wise(
            "user-", pc.cast(uniform_index(USERS, pc.random(n)), pa.string()), ""
        ),
        "customer_id": pc.binary_join_element_wise("cus_", pc.cast(customer, pa.string()), ""),
        "feature": strings(FEATURES, uniform_index(len(FEATURES), pc.random(n))),
        "team": strings(TEAMS, uniform_index(len(TEAMS), pc.random(n))),
        "environment": pa.array(["production"] * n, pa.string()),
        "dialect": pa.array(["otel_genai"] * n, pa.string()),
    }
    arrays = [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def generate(data_dir: Path, calls: int, days: int) -> None:
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    per_day = calls // days
    for d in range(days):
        n = per_day + (calls - per_day * days if d == days - 1 else 0)
        # two flushes per hour, as a running collector leaves many small files
        for part in (n // 2, n - n // 2):
            write_partitioned(
                data_dir, TABLE, day_of_calls(first + timedelta(days=d), part).sort_by("start_time")
            )


def time_queries(data_dir: Path, runs: int) -> tuple[float, dict[str, float]]:
    opened = []
    for _ in range(runs):
        t = time.perf_counter()
        con = connect(data_dir)
        opened.append((time.perf_counter() - t) * 1000)
        con.close()
    con = connect(data_dir)
    medians = {}
    for name, sql in QUERIES.items():
        con.execute(sql).fetchall()  # warm: file metadata in the OS cache, as on a running system
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            con.execute(sql).fetchall()
            times.append((time.perf_counter() - t) * 1000)
        medians[name] = statistics.median(times)
    con.close()
    return statistics.median(opened), medians


def console_questions(now: datetime) -> dict[str, Callable[[Any], object]]:
    """The console's questions, as its pages ask them (:mod:`costspan.collector.console.queries`): the
    Overview's figures (one cube, team x model, and the answers' tables), Explore's (30 days by team; 7 days
    by feature of one team; 24 hours by model; 30 days by customer, which no rollup holds), the Models
    page's, and the drill-downs to the calls (a day's latest 200, and its costliest traces)."""
    from costspan.collector.console import queries
    from costspan.collector.console.app import _overview as overview

    day = (now - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)

    def explore(by: str, days: int, where: dict[str, list[str]] | None = None) -> Callable[[Any], object]:
        since = now - timedelta(days=days)
        return lambda con: queries.cube(con, (by,), since, now, where, queries.day_cuts(since, now))

    return {
        "overview: every figure (team x model)": lambda con: overview(con, now),
        "explore: by team, 30 days": explore("team", 30),
        "explore: by feature of a team, 7 days": explore("feature", 7, {"team": ["payments"]}),
        "explore: by model, 24 hours": explore("model", 1),
        "explore: by customer, 30 days": explore("customer_id", 30),
        "models: provider x model, sources": lambda con: queries.models(con, now - timedelta(days=30), now),
        "drill-down: a day's latest 200 calls": lambda con: queries.latest_calls(
            con, day, day + timedelta(days=1), {"team": ["payments"]}
        ),
        "drill-down: a day's costliest traces": lambda con: queries.costliest_traces(
            con, day, day + timedelta(days=1), {"team": ["payments"]}
        ),
    }


def time_console(data_dir: Path, runs: int, from_calls: bool = True) -> dict[str, tuple[float, float]]:
    """Each console question's median over ``runs`` (after a warm-up), from the calls themselves (``raw``:
    the hourly rollups ignored) and as the console answers it; ms."""
    from costspan.collector.answers import spend, spend_rollups

    now = datetime.now(UTC).replace(tzinfo=None)
    con = connect(data_dir)
    medians: dict[str, tuple[float, float]] = {}
    try:
        for name, ask in console_questions(now).items():
            found = []
            for use_rollups in (False, True):
                if not use_rollups and not from_calls:
                    found.append(math.nan)
                    continue
                original = spend_rollups.hourly, spend_rollups.pricing_sources
                if not use_rollups:  # the query layer before the rollups: every figure from llm_calls
                    spend_rollups.hourly = _hourly_from_calls  # type: ignore[assignment]
                    spend_rollups.pricing_sources = spend.pricing_sources  # type: ignore[assignment]
                try:
                    found.append(_median_ms(lambda ask=ask: ask(con), runs))
                finally:
                    spend_rollups.hourly, spend_rollups.pricing_sources = original
            medians[name] = (found[0], found[1])
    finally:
        con.close()
    return medians


def _hourly_from_calls(
    con: Any, dimensions: Any, since: Any, until: Any, where: Any = None, cuts: Any = None
) -> Any:
    from costspan.collector.answers import spend

    return spend.hourly(con, dimensions, since, until, where)  # an hour's row each, as before the rollups


def time_pages(data_dir: Path, runs: int) -> dict[str, float]:
    """The server time of each console page, through the real application (FastAPI, in process): connection,
    queries and rendering; ms."""
    from starlette.testclient import TestClient

    from costspan.collector.console.app import create_app
    from costspan.collector.console.auth import ConsoleAuth

    day = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d")
    pages = {
        "page: Overview": "/",
        "page: Explore by team, 30 days": "/explore?range=30d&by=team",
        "page: Explore by feature of a team": "/explore?range=7d&by=feature&f.team=payments",
        "page: Models": "/models?range=30d",
        "page: a day's calls": f"/calls?range=custom&from={day}&to={day}&f.team=payments",
    }
    client = TestClient(create_app(data_dir, ConsoleAuth([], loopback=True)))
    medians = {}
    for name, path in pages.items():

        def get(path: str = path) -> None:
            response = client.get(path, headers={"accept": "text/html"})
            assert response.status_code == 200, (path, response.status_code, response.text[:300])

        medians[name] = _median_ms(get, runs)
    return medians


def _median_ms(run: Callable[[], object], runs: int) -> float:
    run()  # warm: file metadata in the OS cache, as on a running system
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def disk_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--runs-before",
        type=int,
        default=1,
        help="runs before compaction (each query takes seconds; 0: none)",
    )
    parser.add_argument(
        "--rollups-only",
        action="store_true",
        help="the console's questions from the rollups only, not the calls",
    )
    parser.add_argument("--reuse", action="store_true", help="the calls already in --dir: none generated")
    parser.add_argument("--dir", help="where to write the data (default: a temporary directory, removed)")
    args = parser.parse_args()
    data_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="costspan-bench-query-"))
    try:
        print(f"{args.calls:,} calls over {args.days} days in {data_dir}, {os.cpu_count()} cores")
        t = time.perf_counter()
        if not (args.reuse and (data_dir / TABLE).is_dir()):
            generate(data_dir, args.calls, args.days)
        generated = time.perf_counter() - t
        files = len(list((data_dir / TABLE).rglob("*.parquet")))
        print(
            f"generated and written in {generated:.1f} s ({args.calls / generated:,.0f} calls/s), "
            f"{files} files"
        )
        if args.runs_before:
            before_open, before = time_queries(data_dir, args.runs_before)
        else:  # not measured (--runs-before 0): at 10 million calls these take minutes
            before_open, before = math.nan, dict.fromkeys(QUERIES, math.nan)
        before_bytes = disk_bytes(data_dir / TABLE)
        t = time.perf_counter()
        stats = compact(data_dir)
        compacted = time.perf_counter() - t
        files = len(list((data_dir / TABLE).rglob("*.parquet")))
        print(
            f"compacted in {compacted:.1f} s: {stats.partitions_compacted} partitions, "
            f"{stats.files_merged} files merged, {files} files now"
        )
        after_open, after = time_queries(data_dir, args.runs)
        after_bytes = disk_bytes(data_dir / TABLE)
        print()
        runs = f"median ms ({args.runs_before} / {args.runs} runs)"
        print(f"{runs:36s}  before compaction  after compaction   ratio")
        rows = [
            ("open connection (list files, views)", before_open, after_open),
            *((name, before[name], after[name]) for name in QUERIES),
        ]
        for name, b, a in rows:
            print(f"{name:36s} {b:14.1f} {a:18.1f} {b / a:9.1f}x")
        print()
        print(
            f"bytes on disk per call: {before_bytes / args.calls:.1f} before compaction, "
            f"{after_bytes / args.calls:.1f} after ({after_bytes / 1e6:,.0f} MB)"
        )
        slowest = max(after.values())
        verdict = "met" if slowest < 200 else "NOT met"
        print(f"goal (each query under 200 ms median after compaction): {verdict}; slowest {slowest:.1f} ms")
        print()
        console = time_console(data_dir, args.runs, not args.rollups_only)
        rollup_bytes = disk_bytes(data_dir / ROLLUPS)
        print(f"the console's questions, median ms ({args.runs} runs)   from llm_calls   from rollups")
        for name, (raw, rolled) in console.items():
            print(f"{name:44s} {raw:12.1f} {rolled:14.1f}")
        pages = time_pages(data_dir, args.runs)
        print(f"page server time, median ms ({args.runs} runs, connection included)")
        for name, ms in pages.items():
            print(f"{name:44s} {ms:12.1f}")
        print(
            f"rollups on disk: {rollup_bytes / 1e6:,.1f} MB ({rollup_bytes / args.calls:.2f} bytes per call)"
        )
        asked = {n: r for n, (_, r) in console.items() if not n.startswith("drill-down")}
        drill = {n: r for n, (_, r) in console.items() if n.startswith("drill-down")}
        print(
            "console goals: each overview and explore query under 50 ms median: "
            f"{'met' if max(asked.values()) < 50 else 'NOT met'} (slowest {max(asked.values()):.1f} ms); "
            f"each page under 100 ms: {'met' if max(pages.values()) < 100 else 'NOT met'} "
            f"(slowest {max(pages.values()):.1f} ms); a day's raw calls under 300 ms: "
            f"{'met' if max(drill.values()) < 300 else 'NOT met'} (slowest {max(drill.values()):.1f} ms)"
        )
    finally:
        if not args.dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
