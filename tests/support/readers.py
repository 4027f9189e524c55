"""The ``llm_calls`` dataset as other engines read it: DuckDB's Hive reader, pyarrow datasets, polars, pandas.

Each gives (rows, exact sum of ``cost_usd``), to compare with what the ``llm_calls`` view gives.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as ds

from costspan.exporters.duckdb_views import connect

Totals = tuple[int, Decimal]


def _exact(value: object) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def duckdb_hive(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    con = duckdb.connect(":memory:")
    try:
        rows, total = con.execute(
            "SELECT count(*), sum(cost_usd) FROM read_parquet(?, hive_partitioning = true)",
            [f"{data_dir / dataset}/**/*.parquet"],
        ).fetchone()
    finally:
        con.close()
    return rows, _exact(total)


def pyarrow_dataset(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    found = ds.dataset(data_dir / dataset, format="parquet", partitioning="hive")
    table = found.to_table(columns=["cost_usd"])
    return table.num_rows, _exact(pc.sum(table.column("cost_usd")).as_py())


def polars_scan(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    frame = (
        pl.scan_parquet(f"{data_dir / dataset}/**/*.parquet", hive_partitioning=True)
        .select(pl.len().alias("rows"), pl.col("cost_usd").sum().alias("cost"))
        .collect()
    )
    return frame["rows"][0], _exact(frame["cost"][0])


def pandas_read(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    frame = pd.read_parquet(data_dir / dataset)
    return len(frame), sum((Decimal(v) for v in frame["cost_usd"].dropna()), Decimal(0))


READERS: dict[str, Callable[[Path], Totals]] = {
    "duckdb read_parquet(hive_partitioning=true)": duckdb_hive,
    "pyarrow.dataset(partitioning='hive')": pyarrow_dataset,
    "polars scan_parquet(hive_partitioning=True)": polars_scan,
    "pandas read_parquet(dir)": pandas_read,
}


def view_totals(data_dir: Path) -> Totals:
    con = connect(data_dir)
    try:
        rows, total = con.execute("SELECT count(*), sum(cost_usd) FROM llm_calls").fetchone()
    finally:
        con.close()
    return rows, _exact(total)


def assert_plain_readers_agree(data_dir: Path) -> Totals:
    """Every reader gets exactly the ``llm_calls`` view's rows and sum; returns them."""
    expected = view_totals(data_dir)
    got = {name: read(data_dir) for name, read in READERS.items()}
    assert got == dict.fromkeys(READERS, expected)
    return expected
