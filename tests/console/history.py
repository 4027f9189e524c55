"""A small stored history for the console's tests: three weeks of calls of three teams, their features and
models, a tag, unpriced calls, and agent traces with tool and plain spans between agent and call."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tests.support.stored_calls import call, span, write_calls, write_spans

# team -> its features
TEAMS = {"search": ("chat", "rerank"), "billing": ("invoice-explain",), "support": ("triage", "reply")}
MODELS = ("gpt-4o-mini", "claude-sonnet-4")
# the agent trace whose tree the tests check: its id, and the costs of its three calls
TRACE = "ab" * 16
TRACE_COSTS = (Decimal("1.25"), Decimal("0.5"), Decimal("2.000000000001"))


def hour_start(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0)


def write_history(data_dir: Path, now: datetime, days: int = 21) -> int:
    """Calls every three hours for ``days`` days up to ``now`` (naive UTC), plus :data:`TRACE`; returns how
    many calls were written."""
    rows = []
    start = hour_start(now) - timedelta(days=days)
    step = 0
    moment = start
    while moment < now:
        for t, (team, features) in enumerate(TEAMS.items()):
            for f, feature in enumerate(features):
                model = MODELS[(step + f) % 2]
                # search grows over the last day: a mover
                scale = 3 if team == "search" and moment >= now - timedelta(days=1) else 1
                cost = Decimal(f"0.{(step * 7 + t * 13 + f * 5) % 90 + 10:02d}1234") * scale
                rows.append(
                    call(
                        moment + timedelta(minutes=t * 7 + f),
                        cost,
                        team=team,
                        feature=feature,
                        response_model=model,
                        request_model=model,
                        provider="openai" if model.startswith("gpt") else "anthropic",
                        customer_id=f"cust-{step % 4}",
                        input_tokens=1000 + step % 500,
                        output_tokens=100 + t * 10,
                        tags={"region": "eu" if step % 2 else "us"},
                    )
                )
        if step % 8 == 0:  # now and then a call no price is known for
            rows.append(
                call(
                    moment,
                    None,
                    team="support",
                    feature="triage",
                    response_model="mystery-1",
                    request_model="mystery-1",
                    pricing_status="unknown_model",
                )
            )
        step += 1
        moment += timedelta(hours=3)
    rows = [r for r in rows if r["start_time"] < now]  # nothing from the future: `now` ends every range
    count = write_calls(data_dir, rows)
    return count + write_trace(data_dir, hour_start(now) - timedelta(hours=2))


def write_trace(data_dir: Path, at: datetime) -> int:
    """:data:`TRACE`: root (plain span) -> agent "planner" -> tool "search" -> call 1; agent -> plain span
    "framework" -> call 2; a call 3 whose parent is not stored (a root of its own)."""
    spans = [
        span(at, TRACE, "01" * 8, "other", "POST /ask"),
        span(at, TRACE, "02" * 8, "agent", "planner", parent_span_id="01" * 8, agent_name="planner"),
        span(at + timedelta(seconds=1), TRACE, "03" * 8, "tool", "search", parent_span_id="02" * 8),
        span(at + timedelta(seconds=2), TRACE, "04" * 8, "other", "framework", parent_span_id="02" * 8),
    ]
    calls = [
        call(
            at + timedelta(seconds=1),
            TRACE_COSTS[0],
            trace_id=TRACE,
            span_id="c1" * 8,
            parent_span_id="03" * 8,
            team="search",
            feature="chat",
            agent_name="planner",
        ),
        call(
            at + timedelta(seconds=2),
            TRACE_COSTS[1],
            trace_id=TRACE,
            span_id="c2" * 8,
            parent_span_id="04" * 8,
            team="search",
            feature="chat",
            agent_name="planner",
        ),
        call(
            at + timedelta(seconds=3),
            TRACE_COSTS[2],
            trace_id=TRACE,
            span_id="c3" * 8,
            parent_span_id="09" * 8,
            team="search",
            feature="chat",
        ),
    ]
    write_spans(data_dir, spans)
    return write_calls(data_dir, calls)
