from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from costspan.collector.sql import read_only_query, write_rows
from tests.console.history import write_history

COSTSPAN = Path(sys.executable).with_name("costspan")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, datetime]:
    """A data directory holding :mod:`tests.console.history`'s calls, and the moment they lead up to."""
    data_dir = tmp_path_factory.mktemp("console-data")
    now = datetime.now(UTC).replace(tzinfo=None)
    write_history(data_dir, now)
    return data_dir, now


def sql_rows(data_dir: Path, query: str) -> list[dict]:
    """What ``costspan sql --format json`` prints, without a process: its query function and its writer."""
    names, rows, _ = read_only_query(data_dir, query)
    out = io.StringIO()
    write_rows(names, rows, "json", out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def costspan_sql(data_dir: Path, query: str) -> list[dict]:
    """The rows of the real ``costspan sql --format json`` (money as exact strings)."""
    out = subprocess.run(
        [str(COSTSPAN), "sql", "--data-dir", str(data_dir), "--format", "json", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]
