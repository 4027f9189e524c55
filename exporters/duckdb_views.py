"""SQL over the stored data: DuckDB views over the Parquet files, safe while a collector writes.

``llm_calls_all`` holds every stored record, duplicates included (``duplicate_of`` set); ``llm_calls``
holds one row per call, so that summing ``cost_usd`` gives the true spend. Writers only ever add whole
files under their final names, so every query sees a consistent set of complete files.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .parquet import SCHEMA, TABLE


def connect(data_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the views over ``data_dir``."""
    con = duckdb.connect(":memory:")
    create_views(con, data_dir)
    return con


def create_views(con: duckdb.DuckDBPyConnection, data_dir: str | Path) -> None:
    root = Path(data_dir) / TABLE
    files = any(root.glob("date=*/hour=*/part-*.parquet")) if root.is_dir() else False
    if files:
        pattern = str(root / "date=*" / "hour=*" / "part-*.parquet").replace("'", "''")
        con.execute(
            f"CREATE OR REPLACE VIEW llm_calls_all AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning = true, union_by_name = true)"
        )
    else:
        # no data yet: the same columns, no rows, so queries still run
        empty = SCHEMA.empty_table()
        con.register("_llm_calls_empty", empty)
        con.execute("CREATE OR REPLACE VIEW llm_calls_all AS SELECT * FROM _llm_calls_empty")
    # one row per call: duplicates of another call are left out, and so is a span stored twice (a batch
    # processed again after a crash, between its export and its checkpoint)
    con.execute(
        "CREATE OR REPLACE VIEW llm_calls AS SELECT * FROM llm_calls_all WHERE duplicate_of IS NULL "
        "QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY start_time) = 1"
    )
