"""The stored datasets as Parquet, Hive-partitioned by UTC date (:mod:`costspan.exporters.layout`).

``llm_calls`` has one row per call; ``llm_calls_duplicates`` (same columns) the other records of a call, with
``duplicate_of`` set (a re-sent span, a second instrumentation's record of one call); ``genai_spans`` one row
per agent, tool, workflow or retrieval span, plus the plain spans (kind ``other``) that link a GenAI span to
its GenAI ancestor (see :mod:`costspan.exporters.ancestry`), so that cost rolls up the span tree. A plain
reader of ``llm_calls`` sums the true spend.

A flush writes one zstd-compressed file per dataset and hour into the day's folder: first under a temporary
name outside every dataset, fsynced, then renamed in (holding the partition's lock, shared) and the folder
fsynced, so a reader never sees a partial file and a written file survives a crash. Compaction later merges
a partition's files (:mod:`costspan.exporters.compaction`). Money is ``DECIMAL(38,12)``; raw usage is
stored beside it, so history can be repriced in SQL.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Sequence
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
from .layout import (
    CALLS,
    DUPLICATES,
    INTERNAL,
    SPANS,
    WriterTag,
    describe,
    files_in,
    internal,
    partition,
    partition_lock,
)

TABLE = CALLS
DUPLICATES_TABLE = DUPLICATES
SPANS_TABLE = SPANS
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


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: columns in its order and types, a missing one as nulls (a file written before
    the column existed), schema metadata dropped."""
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def encode(table: pa.Table, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``table`` as zstd Parquet to ``path`` and fsync it. A file that could not be written whole (a
    full disk, a failed fsync) is removed before the error is raised: it holds the space a retry needs."""
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    try:
        # Times are written as deltas (rows are close in time, and sorted once compacted): a quarter of the
        # bytes to decode of plain 8-byte values, which makes grouping by day several times faster.
        pq.write_table(
            table,
            path,
            compression="zstd",
            use_dictionary=[name for name in table.column_names if name != "start_time"],
            column_encoding={"start_time": "DELTA_BINARY_PACKED"},
        )
        fsync_path(path)
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def temporary(data_dir: Path, name: str) -> Path:
    """A name to write a file under before it is renamed into its partition: outside every dataset, so no
    reader ever lists a partial file. Left by a crash, it is removed by compaction's next run."""
    return internal(data_dir, "tmp") / f"{uuid.uuid4().hex[:8]}-{name}"


def put(data_dir: Path, dataset: str, day: str, tmp: Path, name: str) -> Path:
    """Rename a written file into its partition, holding the partition's lock (shared)."""
    folder = partition(data_dir, dataset, day)
    with partition_lock(data_dir, dataset, day, exclusive=False):
        created = not folder.is_dir()
        if created:
            folder.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, folder / name)
        fsync_path(folder)
        if created:
            fsync_path(folder.parent)
    return folder / name


def utc_hours(table: pa.Table) -> pa.Array:
    """The hour since the epoch of each row's ``start_time`` (integer division, where formatting a date
    costs a microsecond a row)."""
    micros = table.column("start_time").cast(pa.int64())
    if len(micros) and pc.min(micros).as_py() < 0:  # division truncates toward zero; before 1970, the floor
        micros = pc.subtract(micros, pc.if_else(pc.less(micros, 0), _US_PER_HOUR - 1, 0))
    return pc.divide(micros, _US_PER_HOUR)


def write_partitioned(
    data_dir: str | Path, dataset: str, table: pa.Table, writer: WriterTag | None = None
) -> list[Path]:
    """Write the rows of ``table`` as one fresh file per UTC hour of ``start_time``, into the day's folder
    of ``dataset``; ``writer`` (a pipeline worker and the log records) goes into the file names."""
    if table.num_rows == 0:
        return []
    data_dir = Path(data_dir)
    hours = utc_hours(table)
    distinct = pc.unique(hours).to_pylist()
    tag = writer.name_part() if writer is not None else ""
    written = []
    for hour in sorted(distinct):
        # a live stream's batch is nearly always within one hour: then it is written as it is
        rows = table if len(distinct) == 1 else table.filter(pc.equal(hours, hour))
        start = datetime.fromtimestamp(hour * 3600, UTC)
        name = f"part-{start:%H}-{tag}{uuid.uuid4().hex}.parquet"
        tmp = temporary(data_dir, name)
        encode(rows, tmp)
        try:
            written.append(put(data_dir, dataset, f"{start:%Y-%m-%d}", tmp, name))
        except BaseException:  # the day's folder could not be made (a full disk): not renamed in
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    return written


def utc_day(start_time_ns: int) -> str:
    return f"{datetime.fromtimestamp(start_time_ns // 1_000_000_000, UTC):%Y-%m-%d}"


def undo_folder(data_dir: Path, dataset: str, writer: WriterTag) -> Path:
    """Where a worker keeps the versions of files it replaced in a batch, until the batch is checkpointed
    (:mod:`costspan.exporters.replay` puts them back after a crash)."""
    return Path(data_dir, INTERNAL, "undo", dataset, writer.name_part().rstrip("-"))


class ParquetWriter:
    """Writes a batch's records into the datasets under a data directory.

    ``worker``: (index, count) of the pipeline worker that writes; its files carry the log records they
    came from, so that a replay after a crash can take them out before writing them again."""

    INDEX_SIZE = 50_000  # span ids of recent calls remembered with their file, in each of two generations

    def __init__(self, data_dir: str | Path, *, worker: tuple[int, int] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.worker = worker
        # span id -> the llm_calls file it was written to: where a superseded call is looked for first
        self._where: dict[str, Path] = {}
        self._where_before: dict[str, Path] = {}

    def write(
        self,
        records: Iterable[GenAICall],
        superseded: Sequence[GenAICall] = (),
        *,
        seq: tuple[int, int] | None = None,
    ) -> list[Path]:
        """Write a batch's records: calls to ``llm_calls``, records with ``duplicate_of`` set to
        ``llm_calls_duplicates``, other GenAI spans to ``genai_spans`` (a re-sent one, an exact repeat of a
        stored span, is left out).

        ``superseded``: calls this writer stored in an earlier batch, now with ``duplicate_of`` set (a richer
        record of the same call is in this batch). Each stored row leaves ``llm_calls`` for the duplicates:
        the file holding it is rewritten under its own name with the richer record in its place when both
        are of the same day (a reader sees the one or the other, never both or neither), else without it.

        ``seq``: the log records (first, end) the batch came from, when a pipeline worker writes.
        Returns the files written (one per dataset and hour) and rewritten."""
        writer = None
        if seq is not None and self.worker is not None:
            writer = WriterTag(self.worker[1], self.worker[0], seq[0], seq[1])
        records = list(records)
        calls = [c for c in records if c.kind == LLM and c.duplicate_of is None]
        duplicates = [c for c in records if c.kind == LLM and c.duplicate_of is not None]
        spans = [c for c in records if c.kind != LLM and c.duplicate_of is None]
        placed: dict[Path, list[GenAICall]] = {}  # richer records that go into the file of the stored row
        removed: dict[Path, list[GenAICall]] = {}  # stored rows that leave that file
        if superseded:
            richer = {(c.trace_id, c.span_id): c for c in calls}
            for old in superseded:
                path = self._locate(old)
                if path is None:
                    continue  # not stored as a call (retention removed it): it is only a duplicate now
                removed.setdefault(path, []).append(old)
                new = richer.get((old.trace_id, old.duplicate_of or ""))
                if new is not None and utc_day(new.start_time_ns) == path.parent.name[5:]:
                    placed.setdefault(path, []).append(richer.pop((new.trace_id, new.span_id)))
            calls = list(richer.values()) if placed else calls
        written = write_partitioned(self.data_dir, CALLS, rows_to_table(calls), writer)
        self._remember(calls, written)
        written += write_partitioned(
            self.data_dir, DUPLICATES, rows_to_table([*duplicates, *superseded]), writer
        )
        written += write_partitioned(self.data_dir, SPANS, spans_to_table(spans), writer)
        for path, olds in removed.items():
            new_rows = placed.get(path, [])
            if self._replace_rows(path, olds, new_rows, writer):
                written.append(path)
                for call in new_rows:
                    self._where[call.span_id] = path
        return written

    def _remember(self, calls: list[GenAICall], written: list[Path]) -> None:
        if not written:
            return
        if len(written) == 1:
            self._where.update(dict.fromkeys((c.span_id for c in calls), written[0]))
        else:
            by_hour = {(p.parent.name[5:], p.name[5:7]): p for p in written}
            for call in calls:
                hour = f"{call.start_time_ns // 3_600_000_000_000 % 24:02d}"
                path = by_hour.get((utc_day(call.start_time_ns), hour))
                if path is not None:
                    self._where[call.span_id] = path
        if len(self._where) > self.INDEX_SIZE:
            self._where_before, self._where = self._where, {}

    def _locate(self, call: GenAICall) -> Path | None:
        """The ``llm_calls`` file holding ``call``'s row: the one it was written to when that file is still
        there, else found by reading the span ids of its day's files (compaction renames files)."""
        known = self._where.get(call.span_id) or self._where_before.get(call.span_id)
        if known is not None and _holds(known, call):
            return known
        folder = partition(self.data_dir, CALLS, utc_day(call.start_time_ns))
        for path in files_in(folder):
            if path != known and _holds(path, call):
                return path
        return None

    def _replace_rows(
        self, path: Path, old: list[GenAICall], new: list[GenAICall], writer: WriterTag | None
    ) -> bool:
        """Rewrite ``path`` without the rows of ``old`` and with those of ``new``, under its own name,
        holding the partition's lock. A pipeline worker first keeps the version it replaces (a hard link)
        until the batch is checkpointed, so that a crash before that can put it back."""
        day = path.parent.name[5:]
        with partition_lock(self.data_dir, CALLS, day, exclusive=False):
            try:
                table = pq.read_table(path)
            except FileNotFoundError:  # compaction merged it meanwhile: look again
                again = self._locate(old[0])
                if again is None or again == path:
                    return False
                return self._replace_rows(again, old, new, writer)
            keys = pc.binary_join_element_wise(table.column("trace_id"), table.column("span_id"), "/")
            gone = pa.array([f"{c.trace_id}/{c.span_id}" for c in old], pa.string())
            keep = pc.invert(
                pc.and_(pc.is_in(keys, value_set=gone), pc.is_null(table.column("duplicate_of")))
            )
            metadata = table.schema.metadata
            rows = pa.concat_tables([conform(table.filter(keep), SCHEMA), rows_to_table(new)])
            kind = describe(path)
            if kind is not None and kind.kind != "part":
                rows = rows.sort_by("start_time")  # compacted files are in time order
            if writer is not None:
                keep_copy = undo_folder(self.data_dir, CALLS, writer) / path.parent.name / path.name
                keep_copy.parent.mkdir(parents=True, exist_ok=True)
                if not keep_copy.exists():  # the version before this batch: the one to put back
                    os.link(path, keep_copy)
                    fsync_path(keep_copy.parent)
            tmp = temporary(self.data_dir, path.name)
            encode(rows.replace_schema_metadata(metadata), tmp)
            try:
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            fsync_path(path.parent)
        return True


def _holds(path: Path, call: GenAICall) -> bool:
    """Whether ``path`` holds ``call`` as a call (``duplicate_of`` empty)."""
    try:
        rows = pq.read_table(
            path, columns=["trace_id", "duplicate_of"], filters=[("span_id", "=", call.span_id)]
        )
    except FileNotFoundError:
        return False
    return any(
        t == call.trace_id and d is None
        for t, d in zip(
            rows.column("trace_id").to_pylist(), rows.column("duplicate_of").to_pylist(), strict=True
        )
    )
