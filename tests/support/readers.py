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
from costspan.exporters.layout import dataset_files

Totals = tuple[int, Decimal]


def _exact(value: object) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def duckdb_hive(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    cost = "sum(cost_usd)" if dataset != "genai_spans" else "NULL"
    con = duckdb.connect(":memory:")
    try:
        rows, total = con.execute(
            f"SELECT count(*), {cost} FROM read_parquet(?, hive_partitioning = true)",
            [f"{data_dir / dataset}/**/*.parquet"],
        ).fetchone()
    finally:
        con.close()
    return rows, _exact(total)


def pyarrow_dataset(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    found = ds.dataset(data_dir / dataset, format="parquet", partitioning="hive")
    if dataset == "genai_spans":
        return found.count_rows(), Decimal(0)
    table = found.to_table(columns=["cost_usd"])
    return table.num_rows, _exact(pc.sum(table.column("cost_usd")).as_py())


def polars_scan(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    cost = pl.col("cost_usd").sum() if dataset != "genai_spans" else pl.lit(None)
    frame = (
        pl.scan_parquet(f"{data_dir / dataset}/**/*.parquet", hive_partitioning=True)
        .select(pl.len().alias("rows"), cost.alias("cost"))
        .collect()
    )
    return frame["rows"][0], _exact(frame["cost"][0])


def pandas_read(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    frame = pd.read_parquet(data_dir / dataset)
    if dataset == "genai_spans":
        return len(frame), Decimal(0)
    return len(frame), sum((Decimal(v) for v in frame["cost_usd"].dropna()), Decimal(0))


READERS: dict[str, Callable[..., Totals]] = {
    "duckdb read_parquet(hive_partitioning=true)": duckdb_hive,
    "pyarrow.dataset(partitioning='hive')": pyarrow_dataset,
    "polars scan_parquet(hive_partitioning=True)": polars_scan,
    "pandas read_parquet(dir)": pandas_read,
}

# what each dataset's rows are in the views
_VIEWS = {
    "llm_calls": "SELECT count(*), sum(cost_usd) FROM llm_calls",
    "llm_calls_duplicates": "SELECT count(*), sum(cost_usd) FROM llm_calls_all WHERE duplicate_of NOTNULL",
    "genai_spans": "SELECT count(*), NULL FROM genai_spans",
}


def view_totals(data_dir: Path, dataset: str = "llm_calls") -> Totals:
    con = connect(data_dir)
    try:
        rows, total = con.execute(_VIEWS[dataset]).fetchone()
    finally:
        con.close()
    return rows, _exact(total)


def assert_plain_readers_agree(data_dir: Path) -> Totals:
    """Every reader gets exactly the ``llm_calls`` view's rows and sum, and the rows (and sums) of the other
    datasets that hold files; returns the ``llm_calls`` totals."""
    for dataset in ("llm_calls_duplicates", "genai_spans"):
        if dataset_files(data_dir, dataset):
            expected = view_totals(data_dir, dataset)
            got = {name: read(data_dir, dataset) for name, read in READERS.items()}
            assert got == dict.fromkeys(READERS, expected), dataset
    expected = view_totals(data_dir)
    got = {name: read(data_dir) for name, read in READERS.items()}
    assert got == dict.fromkeys(READERS, expected)
    return expected
