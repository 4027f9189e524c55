"""SQL over the stored data: DuckDB views over the Parquet files, safe while a collector writes.

Tables, each one row per stored span:

- ``llm_calls_all``: every stored call, duplicates of another call included (``duplicate_of`` set);
- ``llm_calls``: one row per call, so that summing ``cost_usd`` gives the true spend;
- ``genai_spans``: agent, tool, workflow and retrieval spans, and the plain spans (kind ``other``) between
  them and the calls beneath them.

Rollups, money in ``DECIMAL(38,12)``:

- ``cost_by_day``: UTC day, provider, model, team, feature: calls, tokens, cost;
- ``cost_by_trace``: one row per trace: its root service, start, calls, tokens, cost;
- ``cost_by_agent`` and ``cost_by_workflow``: one row per agent (workflow) span with the calls beneath it
  through the parent chain. ``cost_usd`` is inclusive: a call beneath nested agents counts for each of them,
  so the outer agent's cost contains the inner one's. ``self_cost_usd`` is exclusive: the calls whose
  nearest agent (workflow) ancestor is this span; summed over all agents it counts each call at most once.
- ``llm_call_ancestors``: each call with each stored ancestor span (``depth`` 1 is the parent).

The views are built when a connection opens, from the files then on disk (open a new connection to see
newer ones). The connection is then locked to them: it reads the views' own files and no other file,
reaches no network, installs and loads no extension, and its settings cannot be changed back
(:func:`lock`), so any SQL a user gives it reads the stored data and nothing else.

The views read the datasets as any other engine reads them (:mod:`costspan.exporters.layout`):
``llm_calls`` is the files of the ``llm_calls`` dataset as they are, ``llm_calls_all`` adds those of
``llm_calls_duplicates``. Each record is stored once, in one file, at every moment (see
:mod:`costspan.exporters.compaction` and :mod:`costspan.exporters.replay`), so no query deduplicates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar

import duckdb
import pyarrow as pa

from . import answer_tables, rollups
from .layout import CALLS, DUPLICATES, SPANS, dataset_files
from .parquet import SCHEMA, SPANS_SCHEMA

T = TypeVar("T")
MAX_DEPTH = 64  # the parent walk stops here: a corrupt parent chain must not loop
_CONNECT_ATTEMPTS = 5


def connect(data_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views over ``data_dir``, locked to the views' files
    (:func:`lock`).

    A view is bound to the files listed when it is made, and binding reads the first file's schema: if
    compaction swapped that day's folder in between, the file is gone (an I/O error), so the files are
    listed again, a few times."""
    for attempt in range(_CONNECT_ATTEMPTS):
        # nothing is fetched or loaded on demand, even while the views are made (parquet is built in)
        con = duckdb.connect(":memory:", config=dict(_NO_EXTENSIONS))
        con.execute("SET TimeZone = 'UTC'")  # timestamps are shown, and cast to dates, in UTC
        try:
            files = create_views(con, data_dir)
        except duckdb.IOException:
            con.close()
            if attempt + 1 == _CONNECT_ATTEMPTS:
                raise
            continue
        lock(con, files)
        return con
    raise AssertionError("unreachable")


_NO_EXTENSIONS: Final = (
    ("autoinstall_known_extensions", False),
    ("autoload_known_extensions", False),
    ("allow_community_extensions", False),
    ("allow_unsigned_extensions", False),
)


def lock(con: duckdb.DuckDBPyConnection, files: Sequence[Path]) -> None:
    """Close the connection around ``files``: they are the only files it may open (DuckDB's
    ``allowed_paths``: exact paths, so neither a directory listing, nor ``..``, nor another name for a file
    passes), external access is off (no other file, no URL, no INSTALL, LOAD, ATTACH of a file, COPY or
    EXPORT), and the configuration is locked, so no SET, RESET or PRAGMA turns any of it back."""
    listed = ", ".join(_literal(str(f)) for f in files)
    con.execute(f"SET allowed_paths = [{listed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def read_views(
    data_dir: str | Path,
    read: Callable[[duckdb.DuckDBPyConnection], T],
    attempts: int = _CONNECT_ATTEMPTS,
    connect_to: Callable[[Path], duckdb.DuckDBPyConnection] | None = None,
) -> T:
    """``read(con)`` on a new connection to ``data_dir``'s views (closed after). When compaction or retention
    took a file it had listed away meanwhile, the files are listed again on a new connection and ``read``
    runs again, up to ``attempts`` times, a little later each time (compaction swaps one day's folder at a
    time: a long read while it merges many days may meet several swaps): every reader of a live data
    directory needs this, so it is here once. Any other error, or the last attempt's, is raised."""
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.05 * 2**attempt)
        con = (connect_to or connect)(Path(data_dir))
        try:
            return read(con)
        except (duckdb.IOException, duckdb.PermissionException) as exc:
            # an I/O error (the file is gone), or a permission error (its path is no file the connection
            # may read any more): gone files mean a swap, anything else is the caller's
            swapped = isinstance(exc, duckdb.IOException) or files_gone(con)
            if not swapped or attempt + 1 == attempts:
                raise
        finally:
            con.close()
    raise AssertionError("unreachable")


def files_gone(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a file the connection was locked to is gone (compaction or retention took it away since): a
    query over it then fails with an I/O error or, the path being no file it may read any more, with a
    permission error; a new connection lists the files again."""
    setting = con.execute("SELECT current_setting('allowed_paths')").fetchone()
    paths = setting[0] if setting else []
    return any(not os.path.exists(path) for path in paths or ())


def create_views(con: duckdb.DuckDBPyConnection, data_dir: str | Path) -> list[Path]:
    """Make the views over ``data_dir``; returns the files they read."""
    data_dir = Path(data_dir)
    files: list[Path] = []
    calls = _own_files(data_dir, CALLS)
    con.execute(f"CREATE OR REPLACE VIEW llm_calls AS {_rows(con, data_dir, CALLS, SCHEMA, files, calls)}")
    _hourly_views(con, data_dir, calls, files)
    duplicates = _rows(con, data_dir, DUPLICATES, SCHEMA, files)
    con.execute(
        f"CREATE OR REPLACE VIEW llm_calls_all AS SELECT * FROM llm_calls UNION ALL BY NAME ({duplicates})"
    )
    con.execute(f"CREATE OR REPLACE VIEW genai_spans AS {_rows(con, data_dir, SPANS, SPANS_SCHEMA, files)}")
    for statement in ROLLUPS:
        con.execute(statement)
    _answer_views(con, data_dir, files)
    return files


def _answer_views(con: duckdb.DuckDBPyConnection, data_dir: Path, read: list[Path]) -> None:
    """A view per answer table (budgets, forecasts, anomalies ...): its file, or no rows until it exists."""
    folder = os.path.realpath(data_dir / answer_tables.FOLDER) + os.sep
    for name, schema in answer_tables.SCHEMAS.items():
        target = answer_tables.path(data_dir, name)
        inside = os.path.realpath(target).startswith(folder)
        if target.is_file() and inside:  # not a link planted to lead the view elsewhere
            read.append(target)
            source = f"read_parquet({_literal(str(target))})"
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {source}")
        else:
            _empty(con, f"_{name}_empty", schema)
            con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_empty")


def _hourly_views(
    con: duckdb.DuckDBPyConnection, data_dir: Path, calls: list[Path], read: list[Path]
) -> None:
    """``hourly_rollups``: the rollup rows of the ``llm_calls`` files listed (``calls``) that have one, and
    ``llm_calls_not_rolled_up``: the rows of the others. Together, every call of ``llm_calls`` once
    (:mod:`costspan.exporters.rollups`)."""
    found = rollups.split(data_dir, calls)
    if found.rollups:
        read.extend(found.rollups)
        paths = ", ".join(_literal(str(f)) for f in found.rollups)
        source = f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false)"
    else:
        _empty(con, "_hourly_rollups_empty", rollups.SCHEMA)
        source = "SELECT * FROM _hourly_rollups_empty"
    con.execute(f"CREATE OR REPLACE VIEW hourly_rollups AS {source}")
    rest = _rows(con, data_dir, "llm_calls_not_rolled_up", SCHEMA, read, found.raw)
    con.execute(f"CREATE OR REPLACE VIEW llm_calls_not_rolled_up AS {rest}")


def _rows(
    con: duckdb.DuckDBPyConnection,
    data_dir: Path,
    dataset: str,
    schema: pa.Schema,
    read: list[Path],
    listed: list[Path] | None = None,
) -> str:
    """A query for a dataset's rows: its files as they are (each record is stored once, in one file), or
    the files ``listed``. The files are added to ``read``."""
    files = _own_files(data_dir, dataset) if listed is None else listed
    if not files:
        # no data yet: the same columns, no rows, so queries still run
        _empty(con, f"_{dataset}_empty", schema)
        return f"SELECT * FROM _{dataset}_empty"
    read.extend(files)
    paths = ", ".join(_literal(str(f)) for f in files)
    # The writer and compaction both write the dataset's schema, so the schema is read from the first file
    # only: reading each file's (union_by_name) would cost a footer read per file whenever a view is bound.
    return f"SELECT * FROM read_parquet([{paths}], hive_partitioning = false)"


def _own_files(data_dir: Path, dataset: str) -> list[Path]:
    """The dataset's files that are what they seem: inside the dataset's folder once links are followed.
    The writers make none that are not; a symbolic link planted in the folder would otherwise lead a view,
    and the paths it is allowed to read, to a file elsewhere."""
    root = os.path.realpath(data_dir / dataset) + os.sep
    return [f for f in dataset_files(data_dir, dataset) if os.path.realpath(f).startswith(root)]


def _empty(con: duckdb.DuckDBPyConnection, name: str, schema: pa.Schema) -> None:
    """A table of ``schema``'s columns and no rows, in the database (not a Python object registered with the
    connection: a cursor of the connection, which the console's pages use, sees tables but not those)."""
    con.register(f"{name}_arrow", schema.empty_table())
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_ANCESTORS = f"""
CREATE OR REPLACE VIEW llm_call_ancestors AS
WITH RECURSIVE nodes AS (
    SELECT DISTINCT trace_id, span_id, parent_span_id FROM genai_spans
    UNION
    SELECT DISTINCT trace_id, span_id, parent_span_id FROM llm_calls_all
),
walk (trace_id, call_span_id, ancestor_span_id, depth) AS (
    SELECT trace_id, span_id, parent_span_id, 1 FROM llm_calls WHERE parent_span_id IS NOT NULL
    UNION ALL
    SELECT w.trace_id, w.call_span_id, n.parent_span_id, w.depth + 1
    FROM walk w JOIN nodes n ON n.trace_id = w.trace_id AND n.span_id = w.ancestor_span_id
    WHERE n.parent_span_id IS NOT NULL AND w.depth < {MAX_DEPTH}
)
SELECT trace_id, call_span_id, ancestor_span_id, depth FROM walk
"""

_COST_BY_DAY = """
CREATE OR REPLACE VIEW cost_by_day AS
SELECT
    CAST(start_time AS DATE) AS day,
    provider,
    coalesce(response_model, request_model) AS model,
    team,
    feature,
    count(*) AS calls,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens,
    sum(cost_usd) AS cost_usd
FROM llm_calls
GROUP BY ALL
"""

# The root service is that of the trace's root span when it is stored (a GenAI span, or a plain span on
# the path to one), else that of its earliest stored span.
_COST_BY_TRACE = """
CREATE OR REPLACE VIEW cost_by_trace AS
WITH spans AS (
    SELECT trace_id, parent_span_id, service_name, start_time FROM genai_spans
    UNION ALL
    SELECT trace_id, parent_span_id, service_name, start_time FROM llm_calls
),
traces AS (
    SELECT
        trace_id,
        arg_min(service_name, (parent_span_id IS NOT NULL, start_time)) AS root_service,
        min(start_time) AS start_time
    FROM spans
    GROUP BY trace_id
),
totals AS (
    SELECT
        trace_id,
        count(*) AS calls,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        sum(cost_usd) AS cost_usd
    FROM llm_calls
    GROUP BY trace_id
)
SELECT
    t.trace_id,
    t.root_service,
    t.start_time,
    coalesce(c.calls, 0) AS calls,
    coalesce(c.input_tokens, 0) AS input_tokens,
    coalesce(c.output_tokens, 0) AS output_tokens,
    coalesce(c.input_tokens, 0) + coalesce(c.output_tokens, 0) AS tokens,
    coalesce(c.cost_usd, 0)::DECIMAL(38, 12) AS cost_usd
FROM traces t LEFT JOIN totals c USING (trace_id)
"""


def _cost_by_kind(view: str, kind: str, name_column: str) -> str:
    """cost_by_agent / cost_by_workflow: each span of ``kind`` with the cost of every call beneath it."""
    return f"""
CREATE OR REPLACE VIEW {view} AS
WITH owners AS (
    SELECT * FROM genai_spans WHERE kind = '{kind}'
),
beneath AS (
    SELECT
        a.trace_id,
        a.ancestor_span_id AS span_id,
        a.call_span_id,
        a.depth = min(a.depth) OVER (PARTITION BY a.trace_id, a.call_span_id) AS nearest
    FROM llm_call_ancestors a
    JOIN owners o ON o.trace_id = a.trace_id AND o.span_id = a.ancestor_span_id
),
totals AS (
    SELECT
        b.trace_id,
        b.span_id,
        count(*) AS calls,
        coalesce(sum(c.input_tokens), 0) AS input_tokens,
        coalesce(sum(c.output_tokens), 0) AS output_tokens,
        sum(c.cost_usd) AS cost_usd,
        count(*) FILTER (WHERE b.nearest) AS self_calls,
        sum(c.cost_usd) FILTER (WHERE b.nearest) AS self_cost_usd
    FROM beneath b
    JOIN llm_calls c ON c.trace_id = b.trace_id AND c.span_id = b.call_span_id
    GROUP BY b.trace_id, b.span_id
)
SELECT
    o.trace_id,
    o.span_id,
    o.parent_span_id,
    coalesce(o.name, o.agent_name) AS {name_column},
    o.service_name,
    o.team,
    o.feature,
    o.customer_id,
    o.start_time,
    o.duration_s,
    coalesce(t.calls, 0) AS calls,
    coalesce(t.input_tokens, 0) AS input_tokens,
    coalesce(t.output_tokens, 0) AS output_tokens,
    coalesce(t.cost_usd, 0)::DECIMAL(38, 12) AS cost_usd,
    coalesce(t.self_calls, 0) AS self_calls,
    coalesce(t.self_cost_usd, 0)::DECIMAL(38, 12) AS self_cost_usd
FROM owners o LEFT JOIN totals t ON t.trace_id = o.trace_id AND t.span_id = o.span_id
"""


ROLLUPS = (
    _ANCESTORS,
    _COST_BY_DAY,
    _COST_BY_TRACE,
    _cost_by_kind("cost_by_agent", "agent", "agent_name"),
    _cost_by_kind("cost_by_workflow", "workflow", "workflow_name"),
)
VIEWS = (
    "llm_calls",
    "llm_calls_all",
    "genai_spans",
    "cost_by_day",
    "cost_by_trace",
    "cost_by_agent",
    "cost_by_workflow",
    "llm_call_ancestors",
    "hourly_rollups",
    "llm_calls_not_rolled_up",
)
