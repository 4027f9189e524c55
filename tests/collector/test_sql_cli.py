"""`costspan sql` over real files, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from costspan.exporters.parquet import ParquetWriter
from costspan.processors import Span, SpanBatch, build_chain

COSTSPAN = Path(sys.executable).with_name("costspan")
T0 = 1_760_000_000_000_000_000


def sql(*args, data_dir):
    return subprocess.run(
        [str(COSTSPAN), "sql", "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=60
    )


def test_sql_formats_and_read_only(tmp_path):
    spans = [
        Span(
            "ab" * 16,
            f"{i:016x}",
            "chat",
            T0 + i * 10**9,
            T0 + i * 10**9 + 10**8,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 100,
                "costspan.feature": feature,
            },
            {"service.name": "svc"},
            scope_name="costspan.instrumentation",
        )
        for i, (model, feature) in enumerate(
            [("gpt-4o", "chat"), ("gpt-4o", "search"), ("gpt-4o-mini", "chat")]
        )
    ]
    ParquetWriter(tmp_path).write(
        c for c in build_chain()(SpanBatch.from_spans(spans)).calls if c is not None
    )
    query = "SELECT feature, sum(cost_usd) AS cost, count(*) AS calls FROM llm_calls GROUP BY 1 ORDER BY 1"
    table = sql(query, data_dir=tmp_path)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == ["feature", "cost", "calls"]
    assert "chat     0.00371  2" in table.stdout and "(2 rows)" in table.stdout
    rows = [
        json.loads(line) for line in sql(query, "--format", "json", data_dir=tmp_path).stdout.splitlines()
    ]
    assert rows == [
        {"feature": "chat", "cost": "0.00371", "calls": 2},
        {"feature": "search", "cost": "0.0035", "calls": 1},
    ]
    csv_out = sql(query, "--format", "csv", data_dir=tmp_path).stdout.splitlines()
    assert csv_out == ["feature,cost,calls", "chat,0.00371,2", "search,0.0035,1"]
    refused = sql("DELETE FROM llm_calls", data_dir=tmp_path)
    assert refused.returncode == 2 and "read-only" in refused.stderr
    broken = sql("SELECT nope FROM llm_calls", data_dir=tmp_path)
    assert broken.returncode == 2 and "nope" in broken.stderr
    (tmp_path / "fresh").mkdir()  # a collector's data directory before its first call
    empty = sql("SELECT count(*) AS n FROM llm_calls", data_dir=tmp_path / "fresh")
    assert empty.returncode == 0 and "0" in empty.stdout


def test_a_data_directory_that_does_not_exist_is_an_error_not_zero_rows(tmp_path):
    out = subprocess.run(
        [str(COSTSPAN), "sql", "--data-dir", str(tmp_path / "typo"), "SELECT count(*) FROM llm_calls"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert f"no data directory at {tmp_path / 'typo'}" in out.stderr


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    # `costspan sql ... | head -1`: the pipe closes while rows are still being written
    proc = subprocess.Popen(
        [str(COSTSPAN), "sql", "--data-dir", str(tmp_path), "--format", "csv", "SELECT * FROM range(200000)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout.readline().rstrip() == b"range"
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


def test_serve_refuses_flags_the_configuration_file_would_refuse(tmp_path):
    for flags, message in (
        (["--grpc-address", "127.0.0.1:99999"], "--grpc-address: host:port, a port from 1 to 65535"),
        (["--admin-address", "9464"], "--admin-address: host:port"),
        (["--workers", "0"], "--workers: a whole number of worker processes, 1 to 8; got 0"),
    ):
        out = subprocess.run(
            [str(COSTSPAN), "serve", "--data-dir", str(tmp_path), *flags],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 2 and message in out.stderr, (flags, out.stderr)
