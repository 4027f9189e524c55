"""The ``llm_calls`` and ``genai_spans`` tables as Parquet, Hive-partitioned by UTC date and hour.

``llm_calls`` has one row per LLM record; ``genai_spans`` one row per agent, tool, workflow or retrieval span,
plus the plain spans (kind ``other``) that link a GenAI span to its GenAI ancestor (see
:mod:`costspan.exporters.ancestry`), so that cost rolls up the span tree.

A flush writes one zstd-compressed file per table and partition under
``<data dir>/<table>/date=YYYY-MM-DD/hour=HH/part-<uuid>.parquet``, first under a temporary name and then
renamed, after an fsync, so a reader never sees a partial file and a written file survives a crash.
Compaction later merges a partition's files into one ``compacted-<uuid>.parquet`` (see
:mod:`costspan.exporters.compaction`). Money is ``DECIMAL(38,12)``; raw usage is stored beside it, so history
can be repriced in SQL. Duplicates are stored too, with ``duplicate_of`` set: the ``llm_calls`` view leaves
them out (see :mod:`costspan.exporters.duckdb_views`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from costspan.pricing import BUCKETS
from costspan.semconv import LLM, GenAICall

from .files import fsync_path

TABLE = "llm_calls"
SPANS_TABLE = "genai_spans"
FRESH_PREFIX = "part-"  # written by a flush; may hold a span twice (a batch processed again after a crash)
MONEY = pa.decimal128(38, 12)
# A UTC time without a zone in the file (DuckDB TIMESTAMP, as the table's contract says): casting it to a date
# or an hour is integer arithmetic, where a zoned one goes through the session's time zone for every row.
UTC_TIME = pa.timestamp("us")
_QUANTUM = Decimal("1e-12")
_US_PER_HOUR = 3_600_000_000

# Column name -> Arrow type, in table order. The names are the contract of docs/design.md.
SCHEMA = pa.schema(
    [
        ("start_time", UTC_TIME),
        ("duration_s", pa.float64()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("service_name", pa.string()),
        ("provider", pa.string()),
        ("operation", pa.string()),
        ("request_model", pa.string()),
        ("response_model", pa.string()),
        ("response_id", pa.string()),
        ("server_address", pa.string()),
        ("service_tier", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("cache_write_1h_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("cost_usd", MONEY),
        *((f"cost_{bucket}", MONEY) for bucket in BUCKETS),
        ("cost_source", pa.string()),
        ("pricing_status", pa.string()),
        ("pricing_provider", pa.string()),
        ("pricing_model", pa.string()),
        ("catalog_version", pa.string()),
        ("chargeback_usd", MONEY),
        ("user_id", pa.string()),
        ("customer_id", pa.string()),
        ("feature", pa.string()),
        ("team", pa.string()),
        ("environment", pa.string()),
        ("agent_name", pa.string()),
        ("step", pa.string()),
        ("conversation_id", pa.string()),
        ("prompt_key", pa.string()),
        ("prompt_version", pa.string()),
        ("tags", pa.map_(pa.string(), pa.string())),
        ("error_type", pa.string()),
        ("time_to_first_chunk_s", pa.float64()),
        ("dialect", pa.string()),
        ("duplicate_of", pa.string()),
        ("input_hash", pa.string()),
        ("flags", pa.list_(pa.string())),
    ]
)
# GenAI spans that are not calls: agents, tools, workflows, retrievals, and the plain spans between them.
SPANS_SCHEMA = pa.schema(
    [
        ("start_time", UTC_TIME),
        ("duration_s", pa.float64()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("kind", pa.string()),
        ("name", pa.string()),
        ("operation", pa.string()),
        ("service_name", pa.string()),
        ("provider", pa.string()),
        ("request_model", pa.string()),
        ("user_id", pa.string()),
        ("customer_id", pa.string()),
        ("feature", pa.string()),
        ("team", pa.string()),
        ("environment", pa.string()),
        ("agent_name", pa.string()),
        ("step", pa.string()),
        ("conversation_id", pa.string()),
        ("prompt_key", pa.string()),
        ("prompt_version", pa.string()),
        ("tags", pa.map_(pa.string(), pa.string())),
        ("error_type", pa.string()),
        ("dialect", pa.string()),
        ("flags", pa.list_(pa.string())),
    ]
)
_SPAN_STRINGS = tuple(f.name for f in SPANS_SCHEMA if f.type == pa.string())
_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
)
_STRINGS = (
    "trace_id",
    "span_id",
    "parent_span_id",
    "service_name",
    "provider",
    "operation",
    "request_model",
    "response_model",
    "response_id",
    "server_address",
    "service_tier",
    "cost_source",
    "pricing_status",
    "pricing_provider",
    "pricing_model",
    "catalog_version",
    "user_id",
    "customer_id",
    "feature",
    "team",
    "environment",
    "agent_name",
    "step",
    "conversation_id",
    "prompt_key",
    "prompt_version",
    "error_type",
    "dialect",
    "duplicate_of",
    "input_hash",
)


def money(value: Decimal | None) -> Decimal | None:
    """A cost at the table's precision (12 decimal places, banker's rounding)."""
    return None if value is None else value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def _count(value: Any) -> int | None:
    # A count that is no whole number was flagged on the record; the column keeps only real counts.
    return value if type(value) is int and -(2**63) <= value < 2**63 else None


def rows_to_table(calls: Iterable[GenAICall]) -> pa.Table:
    """The ``llm_calls`` rows of a batch's records (those of kind ``llm``), built a column at a time."""
    records = [c for c in calls if c.kind == LLM]
    columns: dict[str, Any] = {
        "start_time": [c.start_time_ns // 1000 for c in records],
        "duration_s": [c.duration_s for c in records],
    }
    for name in _STRINGS:
        values = list(map(attrgetter(name), records))
        # many columns are empty in a whole batch (no errors, no prompt versions ...): no values to convert
        columns[name] = values if values.count(None) < len(values) else pa.nulls(len(values), pa.string())
    for name in _TOKENS:
        columns[name] = [_count(v) for v in map(attrgetter(name), records)]
    columns["cost_usd"] = _money_array([c.cost_usd for c in records])
    amounts = [c.cost_amounts for c in records]
    for i, bucket in enumerate(BUCKETS):
        columns[f"cost_{bucket}"] = _money_array([a[i] if a is not None else None for a in amounts])
    columns["chargeback_usd"] = _money_array([c.chargeback_usd for c in records])
    columns["tags"] = [list(c.tags.items()) if c.tags else [] for c in records]
    columns["time_to_first_chunk_s"] = [c.time_to_first_chunk_s for c in records]
    columns["flags"] = [list(c.flags) for c in records]
    return pa.table(columns, schema=SCHEMA)


def _money_array(values: list[Decimal | None]) -> pa.Array:
    """A ``DECIMAL(38,12)`` column. Arrow takes a Decimal as it is when it fits the scale, and refuses one
    that would lose digits; only then is the column rounded (:func:`money`), so the common case costs no
    Decimal arithmetic and every stored value is the one :func:`money` gives."""
    try:
        return pa.array(values, MONEY)
    except pa.ArrowInvalid:
        return pa.array([money(v) for v in values], MONEY)


def spans_to_table(records: Iterable[GenAICall]) -> pa.Table:
    """The ``genai_spans`` rows of a batch's records: every kind but ``llm``."""
    spans = [c for c in records if c.kind != LLM]
    columns: dict[str, list[Any]] = {name: [] for name in SPANS_SCHEMA.names}
    for c in spans:
        columns["start_time"].append(c.start_time_ns // 1000)
        columns["duration_s"].append(c.duration_s)
        for name in _SPAN_STRINGS:
            columns[name].append(getattr(c, name))
        columns["tags"].append(list((c.tags or {}).items()))
        columns["flags"].append(list(c.flags))
    return pa.table(columns, schema=SPANS_SCHEMA)


def partition_dir(root: Path, day: str, hour: str) -> Path:
    return root / f"date={day}" / f"hour={hour}"


def write_file(folder: Path, name: str, table: pa.Table, metadata: dict[str, str] | None = None) -> Path:
    """Write ``table`` to ``folder/name`` atomically: a temporary name, fsync, rename, fsync the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    tmp = folder / f".tmp-{name}"
    # Times are written as deltas (rows are close in time, and sorted once compacted): a quarter of the
    # bytes to decode of plain 8-byte values, which makes grouping by day several times faster.
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        use_dictionary=[name for name in table.column_names if name != "start_time"],
        column_encoding={"start_time": "DELTA_BINARY_PACKED"},
    )
    fsync_path(tmp)
    os.replace(tmp, folder / name)
    fsync_path(folder)
    return folder / name


def write_partitioned(root: Path, table: pa.Table) -> list[Path]:
    """Write the rows of ``table`` as one fresh file per date and hour of ``start_time``."""
    if table.num_rows == 0:
        return []
    # the hour since the epoch of each row: integer division, where formatting a date costs a microsecond
    micros = table.column("start_time").cast(pa.int64())
    if pc.min(micros).as_py() < 0:  # division truncates toward zero; an hour before 1970 is the floor
        micros = pc.subtract(micros, pc.if_else(pc.less(micros, 0), _US_PER_HOUR - 1, 0))
    hours = pc.divide(micros, _US_PER_HOUR)
    distinct = pc.unique(hours).to_pylist()
    written = []
    for hour in sorted(distinct):
        # a live stream's batch is nearly always within one hour: then it is written as it is
        rows = table if len(distinct) == 1 else table.filter(pc.equal(hours, hour))
        start = datetime.fromtimestamp(hour * 3600, UTC)
        name = f"{FRESH_PREFIX}{uuid.uuid4().hex}.parquet"
        written.append(write_file(partition_dir(root, f"{start:%Y-%m-%d}", f"{start:%H}"), name, rows))
    return written


class ParquetWriter:
    """Writes ``llm_calls`` and ``genai_spans`` files under a data directory."""

    def __init__(self, data_dir: str | Path, *, table: str = TABLE) -> None:
        self.root = Path(data_dir) / table
        self.spans_root = Path(data_dir) / SPANS_TABLE

    def write(self, calls: Iterable[GenAICall]) -> list[Path]:
        """Write the records of a batch: calls to ``llm_calls``, other GenAI spans to ``genai_spans``.

        Returns the files written (one per table, date and hour)."""
        records = list(calls)
        written = write_partitioned(self.root, rows_to_table(records))
        written += write_partitioned(self.spans_root, spans_to_table(records))
        return written
