"""The answers' tables: what the collector's answer jobs found (budgets, forecasts, anomalies), each one
Parquet file that the SQL views read.

An answer table is small (a row per budget, per period, per anomaly) and rewritten whole when its job has
something new: ``<data dir>/answers/<name>.parquet``, written under a temporary name in ``.storage/tmp/``,
fsynced and renamed over the old one, so a reader sees the old file or the new one, never a part. Any engine
reads it as it reads the datasets. :data:`SCHEMAS` names every table with its columns; a table that was
never written reads as no rows with those columns, so queries over it run before its job's first turn.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .files import fsync_path
from .parquet import temporary

FOLDER = "answers"

# name -> columns, for every answer table (money is DECIMAL(38,12), times UTC)
SCHEMAS: dict[str, pa.Schema] = {}

# anomalies: one row per anomaly (costspan.collector.answers.anomalies); id is stable across runs, end is
# null while it is open; contributors and first_seen are the explanation's structured parts
_MONEY = pa.decimal128(38, 12)
_TIME = pa.timestamp("us")
SCHEMAS["anomalies"] = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("grain", pa.string()),
        ("dimension", pa.string()),
        ("value", pa.string()),
        ("start", _TIME),
        ("end", _TIME),
        ("last_seen", _TIME),
        ("status", pa.string()),
        ("expected_usd", _MONEY),
        ("observed_usd", _MONEY),
        ("impact_usd", _MONEY),
        ("expected_calls", pa.float64()),
        ("observed_calls", pa.int64()),
        ("score", pa.float64()),
        ("baseline", pa.string()),
        ("explanation", pa.string()),
        ("volume_usd", _MONEY),
        ("tokens_per_call_usd", _MONEY),
        ("cache_usd", _MONEY),
        ("price_usd", _MONEY),
        ("split_method", pa.string()),
        (
            "contributors",
            pa.list_(
                pa.struct(
                    [
                        ("dimension", pa.string()),
                        ("value", pa.string()),
                        ("change", pa.decimal128(38, 6)),
                        ("share", pa.float64()),
                    ]
                )
            ),
        ),
        (
            "first_seen",
            pa.list_(pa.struct([("dimension", pa.string()), ("value", pa.string()), ("at", _TIME)])),
        ),
        ("detected_at", _TIME),
        ("updated_at", _TIME),
    ]
)


def path(data_dir: str | Path, name: str) -> Path:
    return Path(data_dir) / FOLDER / f"{name}.parquet"


def write(data_dir: str | Path, name: str, table: pa.Table) -> Path:
    """Replace answer table ``name`` with ``table`` (cast to its schema), atomically and durably."""
    target = path(data_dir, name)
    table = table.select(SCHEMAS[name].names).cast(SCHEMAS[name])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(Path(data_dir), target.name)
    try:
        pq.write_table(table, tmp, compression="zstd")
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a partial file holds the space a retry needs
        raise
    fsync_path(target.parent)  # the rename itself survives a crash
    return target


def read(data_dir: str | Path, name: str) -> pa.Table:
    """Answer table ``name`` as last written, or no rows."""
    target = path(data_dir, name)
    if not target.exists():
        return SCHEMAS[name].empty_table()
    return pq.read_table(target, schema=SCHEMAS[name])
