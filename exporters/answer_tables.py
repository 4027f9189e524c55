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

# Budgets (costspan.collector.answers): each budget's status at its last evaluation, and every period of
# every budget with the thresholds crossed in it, past periods kept with the limit they had then.
_MONEY = pa.decimal128(38, 12)
_TIME = pa.timestamp("us")
_PERCENT = pa.decimal128(38, 4)
_BURN_WINDOWS = ("5m", "30m", "1h", "6h", "24h", "3d", "7d")
SCHEMAS["budgets"] = pa.schema(
    [
        ("budget", pa.string()),
        ("scope", pa.string()),
        ("parent", pa.string()),
        ("period", pa.string()),
        ("timezone", pa.string()),
        ("period_start", _TIME),
        ("period_end", _TIME),
        ("limit_usd", _MONEY),
        ("spent_usd", _MONEY),
        ("remaining_usd", _MONEY),
        ("used_percent", _PERCENT),
        ("calls", pa.int64()),
        ("unpriced_calls", pa.int64()),
        ("projected_usd", _MONEY),
        ("projection", pa.string()),
        ("crossing_at", _TIME),
        ("allowed_usd_per_hour", _MONEY),
        *((f"burn_{w}_usd_per_hour", _MONEY) for w in _BURN_WINDOWS),
        *((f"burn_{w}_ratio", _PERCENT) for w in _BURN_WINDOWS),
        *((f"forecast_{bound}_usd", _MONEY) for bound in ("p50", "lo80", "hi80", "lo95", "hi95")),
        ("forecast_method", pa.string()),
        ("thresholds", pa.list_(_PERCENT)),
        ("thresholds_crossed", pa.list_(_PERCENT)),
        ("evaluated_at", _TIME),
    ]
)
SCHEMAS["budget_periods"] = pa.schema(
    [
        ("budget", pa.string()),
        ("scope", pa.string()),
        ("period", pa.string()),
        ("period_start", _TIME),
        ("period_end", _TIME),
        ("limit_usd", _MONEY),
        ("spent_usd", _MONEY),
        ("calls", pa.int64()),
        ("unpriced_calls", pa.int64()),
        (
            "crossings",
            pa.list_(
                pa.struct([("threshold_percent", _PERCENT), ("crossed_at", _TIME), ("spent_usd", _MONEY)])
            ),
        ),
        ("closed", pa.bool_()),
        ("updated_at", _TIME),
    ]
)
# forecasts (costspan.collector.answers.forecast): per scope, the period's days (actual), today and the days
# ahead (forecast: point and 80%/95% prediction intervals) and the period's total (period_total), UTC days
SCHEMAS["forecasts"] = pa.schema(
    [
        ("scope", pa.string()),  # "organisation", or the dimension (team, feature ...)
        ("value", pa.string()),  # the dimension's value; null for the organisation
        ("period", pa.string()),  # month, week or day
        ("period_start", pa.timestamp("us")),
        ("period_end", pa.timestamp("us")),
        ("day", pa.date32()),
        ("kind", pa.string()),  # actual, forecast, period_total
        ("actual_usd", _MONEY),  # spent: the day's, today's so far, the period's so far; exact
        ("p50", _MONEY),
        ("lo80", _MONEY),
        ("hi80", _MONEY),
        ("lo95", _MONEY),
        ("hi95", _MONEY),
        ("method", pa.string()),  # run_rate, linear, seasonal; null: not enough data
        ("backtest_error_pct", _MONEY),  # the method's backtest error on the cumulative spend, percent
        ("history_days", pa.int32()),
        ("note", pa.string()),
        ("generated_at", pa.timestamp("us")),
    ]
)
# anomalies: one row per anomaly (costspan.collector.answers.anomalies); id is stable across runs, end is
# null while it is open; contributors and first_seen are the explanation's structured parts
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
