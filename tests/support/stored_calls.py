"""Calls written straight into a data directory, through the collector's own writer, for tests that query
stored data (the answers, the views) without sending spans."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from costspan.exporters.layout import CALLS, SPANS
from costspan.exporters.parquet import SCHEMA, SPANS_SCHEMA, write_partitioned

_ids = itertools.count(1)


def call(start: datetime, cost: str | Decimal | None, **columns: Any) -> dict[str, Any]:
    """One ``llm_calls`` row: a priced gpt-4o-mini chat of ``cost`` dollars at ``start`` (naive UTC), with
    fresh ids; ``columns`` sets any other column (``pricing_status="unknown_model", cost=None`` ...)."""
    n = next(_ids)
    row: dict[str, Any] = {
        "start_time": start,
        "duration_s": 1.0,
        "trace_id": f"{n:032x}",
        "span_id": f"{n:016x}",
        "service_name": "app",
        "provider": "openai",
        "operation": "chat",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 100,
        "cost_usd": None if cost is None else Decimal(cost),
        "cost_source": "local",
        "pricing_status": "priced",
    }
    row.update(columns)
    return row


def write_calls(data_dir: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` (see :func:`call`) into ``data_dir``'s ``llm_calls``; returns how many."""
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=SCHEMA)
    write_partitioned(data_dir, CALLS, table)
    return table.num_rows


def span(
    start: datetime, trace_id: str, span_id: str, kind: str, name: str, **columns: Any
) -> dict[str, Any]:
    """One ``genai_spans`` row: an agent, tool, workflow, retrieval or plain (``other``) span of a trace;
    ``columns`` sets any other column (``parent_span_id`` ...)."""
    row: dict[str, Any] = {
        "start_time": start,
        "duration_s": 1.0,
        "trace_id": trace_id,
        "span_id": span_id,
        "kind": kind,
        "name": name,
        "service_name": "app",
    }
    row.update(columns)
    return row


def write_spans(data_dir: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` (see :func:`span`) into ``data_dir``'s ``genai_spans``; returns how many."""
    table = pa.Table.from_pylist([dict(r) for r in rows], schema=SPANS_SCHEMA)
    write_partitioned(data_dir, SPANS, table)
    return table.num_rows
