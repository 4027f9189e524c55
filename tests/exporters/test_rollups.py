"""genai_spans and the rollup views over a hand-built agent tree: the real chain, writer and DuckDB."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from costspan.exporters.ancestry import AncestryWindow
from costspan.exporters.duckdb_views import VIEWS, connect
from costspan.exporters.parquet import ParquetWriter
from costspan.processors import Span, SpanBatch, build_chain

T0 = 1_760_000_000_000_000_000  # 2025-10-09 08:53:20 UTC
MS = 1_000_000
TRACE = "0af7651916cd43dd8448eb211c80319c"
OTHER_TRACE = "1bf7651916cd43dd8448eb211c80319d"
RESOURCE = {"service.name": "support-bot", "service.namespace": "care"}
COSTSPAN = Path(sys.executable).with_name("costspan")

# gpt-4o at $2.50 / $10 per million tokens, gpt-4o-mini at $0.15 / $0.60 (the embedded catalog)
C1 = Decimal("0.0035")  # gpt-4o 1000 in, 100 out
C2 = Decimal("0.00225855")  # gpt-4o-mini 12345 in, 678 out
C3 = Decimal("0.0055")  # gpt-4o 2000 in, 50 out
C4 = Decimal("0.00075")  # gpt-4o-mini 1000 in, 1000 out
C5 = Decimal("0.0035")  # gpt-4o 1000 in, 100 out, another trace


def span(span_id, parent, name, start, attrs=None, trace=TRACE, kind=1, scope="app"):
    return Span(
        trace,
        span_id * 8,
        name,
        T0 + start * MS,
        T0 + (start + 50) * MS,
        attrs or {},
        RESOURCE,
        parent_span_id=parent * 8 if parent else None,
        kind=kind,
        scope_name=scope,
    )


def call(span_id, parent, start, model, inp, out, trace=TRACE):
    return span(
        span_id,
        parent,
        f"chat {model}",
        start,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": inp,
            "gen_ai.usage.output_tokens": out,
        },
        trace=trace,
        scope="opentelemetry.instrumentation.genai.openai",
    )


# POST /ask (plain server span, root)
#   answer (workflow, OpenLLMetry)
#     planner (agent)
#       c1
#       helper (plain span)
#         c2
#       researcher (agent)
#         search (tool)
#           c3
#     c4
#   cache lookup (plain span, no GenAI beneath: not stored)
ROOT = span("a0", None, "POST /ask", 0, {"http.request.method": "POST"}, kind=2)
ROOT.resource = {"service.name": "gateway"}  # the trace enters through another service
WORKFLOW = span(
    "a1", "a0", "answer.workflow", 1, {"traceloop.span.kind": "workflow", "traceloop.entity.name": "answer"}
)
PLANNER = span(
    "a2",
    "a1",
    "invoke_agent planner",
    2,
    {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner", "costspan.customer_id": "acme"},
)
HELPER = span("a3", "a2", "helper", 3)
RESEARCHER = span(
    "a4",
    "a2",
    "invoke_agent researcher",
    4,
    {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"},
)
TOOL = span(
    "a5",
    "a4",
    "execute_tool search",
    5,
    {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
)
NOISE = span("a6", "a0", "cache lookup", 6, {"db.system": "redis"})
CALL1 = call("c1", "a2", 10, "gpt-4o", 1000, 100)
CALL2 = call("c2", "a3", 11, "gpt-4o-mini", 12345, 678)
CALL3 = call("c3", "a5", 12, "gpt-4o", 2000, 50)
CALL4 = call("c4", "a1", 13, "gpt-4o-mini", 1000, 1000)
CALL5 = call("c5", None, 14, "gpt-4o", 1000, 100, trace=OTHER_TRACE)

# children end first, so they are exported first: the tree arrives bottom-up over three batches
BATCHES = [
    [CALL3, TOOL, CALL2, NOISE],
    [HELPER, CALL1, RESEARCHER, CALL5],
    [PLANNER, CALL4, WORKFLOW, ROOT, CALL3],  # CALL3 again: a re-sent span
]


def store(data_dir, batches=BATCHES):
    """What the pipeline does with each batch: the chain, then both tables."""
    chain, ancestry, writer = build_chain(), AncestryWindow(), ParquetWriter(data_dir)
    for spans in batches:
        done = chain(SpanBatch.from_spans(spans))
        writer.write([*(c for c in done.calls if c is not None), *ancestry.bridge_spans(done)])


def test_genai_spans_hold_the_tree_and_its_bridges(tmp_path):
    store(tmp_path)
    con = connect(tmp_path)
    rows = con.execute(
        "SELECT span_id, kind, name, parent_span_id, service_name, team, customer_id, dialect "
        "FROM genai_spans ORDER BY start_time"
    ).fetchall()
    assert [(r[0][:2], r[1], r[2]) for r in rows] == [
        ("a0", "other", "POST /ask"),
        ("a1", "workflow", "answer"),
        ("a2", "agent", "planner"),
        ("a3", "other", "helper"),
        ("a4", "agent", "researcher"),
        ("a5", "tool", "search"),
    ]
    assert rows[2][3:7] == ("a1" * 8, "support-bot", "care", "acme")
    assert rows[0][7] == "none" and rows[2][7] == "otel_genai"
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 5
    # the re-sent call is stored, marked; it counts once
    assert con.execute("SELECT count(*) FROM llm_calls_all").fetchone()[0] == 6


def test_cost_by_agent_inclusive_and_self(tmp_path):
    store(tmp_path)
    con = connect(tmp_path)
    agents = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT agent_name, calls, cost_usd, self_calls, self_cost_usd, customer_id FROM cost_by_agent"
        ).fetchall()
    }
    assert agents == {
        "planner": (3, C1 + C2 + C3, 2, C1 + C2, "acme"),
        "researcher": (1, C3, 1, C3, None),
    }
    # self cost counts each call beneath an agent once
    assert con.execute("SELECT sum(self_cost_usd) FROM cost_by_agent").fetchone()[0] == C1 + C2 + C3
    workflows = con.execute(
        "SELECT workflow_name, calls, input_tokens, output_tokens, cost_usd, self_cost_usd "
        "FROM cost_by_workflow"
    ).fetchall()
    assert workflows == [("answer", 4, 16345, 1828, C1 + C2 + C3 + C4, C1 + C2 + C3 + C4)]
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE cost_by_agent)").fetchall())
    assert types["cost_usd"] == types["self_cost_usd"] == "DECIMAL(38,12)"
    depth = con.execute(
        "SELECT depth FROM llm_call_ancestors WHERE call_span_id = ? AND ancestor_span_id = ?",
        ["c3" * 8, "a0" * 8],
    ).fetchone()[0]
    assert depth == 5  # search 1, researcher 2, planner 3, answer 4, POST /ask 5


def test_cost_by_trace_and_day(tmp_path):
    store(tmp_path)
    con = connect(tmp_path)
    traces = con.execute(
        "SELECT trace_id, root_service, calls, tokens, cost_usd FROM cost_by_trace ORDER BY trace_id"
    ).fetchall()
    assert traces == [
        (TRACE, "gateway", 4, 16345 + 1828, C1 + C2 + C3 + C4),
        (OTHER_TRACE, "support-bot", 1, 1100, C5),
    ]
    days = con.execute(
        "SELECT day::VARCHAR, model, team, calls, tokens, cost_usd FROM cost_by_day ORDER BY model"
    ).fetchall()
    assert days == [
        ("2025-10-09", "gpt-4o", "care", 3, 4250, C1 + C3 + C5),
        ("2025-10-09", "gpt-4o-mini", "care", 2, 15023, C2 + C4),
    ]
    assert (
        con.execute("SELECT sum(cost_usd) FROM cost_by_day").fetchone()[0]
        == con.execute("SELECT sum(cost_usd) FROM llm_calls").fetchone()[0]
    )


def test_rollups_exist_before_any_data(tmp_path):
    con = connect(tmp_path)
    for view in VIEWS:
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)


def test_costspan_sql_over_the_rollups(tmp_path):
    store(tmp_path)
    out = subprocess.run(
        [
            str(COSTSPAN),
            "sql",
            "--data-dir",
            str(tmp_path),
            "--format",
            "csv",
            "SELECT agent_name, cost_usd, self_cost_usd FROM cost_by_agent ORDER BY agent_name",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.splitlines() == [
        "agent_name,cost_usd,self_cost_usd",
        f"planner,{C1 + C2 + C3},{C1 + C2}",
        f"researcher,{C3},{C3}",
    ]
    described = subprocess.run(
        [str(COSTSPAN), "sql", "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    for view in VIEWS:
        assert view in described
