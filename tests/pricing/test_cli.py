"""`costspan pricing ...` run as a user runs it: the installed console script, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

COSTSPAN = Path(sys.executable).with_name("costspan")
FIXTURES = Path(__file__).with_name("fixtures")


def run(*args: str, stdin: str | None = None, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [str(COSTSPAN), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_quote_from_flags(tmp_path):
    out = run(
        "pricing",
        "quote",
        "--provider",
        "anthropic",
        "--model",
        "claude-sonnet-4-5",
        "--input-tokens",
        "100000",
        "--cache-read-tokens",
        "60000",
        "--cache-write-tokens",
        "30000",
        "--cache-write-1h-tokens",
        "10000",
        "--output-tokens",
        "2000",
        "--usage",
        "web_searches=2",
        "--timestamp",
        "2025-11-01T00:00:00Z",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["cost_usd"] == "0.233"  # 0.213 in tokens + 2 searches at $10/1000
    assert answer["status"] == "priced"
    assert answer["provider"] == "anthropic" and answer["model"] == "claude-sonnet-4-5"
    assert answer["breakdown"] == {
        "input": "0.03",
        "cache_read": "0.018",
        "cache_write": "0.135",
        "output": "0.03",
        "reasoning": "0",
        "other": "0.02",
    }
    assert answer["catalog_version"].startswith("genai-prices@0.2.3/")


def test_quote_json_lines_keeps_going_after_bad_lines(tmp_path):
    lines = "\n".join(
        [
            json.dumps(
                {
                    "id": "a",
                    "provider": "openai",
                    "model": "gpt-4o",
                    "input_tokens": 1000,
                    "output_tokens": 100,
                    "timestamp": "2025-01-01T00:00:00Z",
                }
            ),
            "not json",
            json.dumps({"id": "b", "model": "gpt-4o", "prompt_tokens": 10}),
            json.dumps({"id": "c", "provider": "openai", "model": "mystery", "input_tokens": 5}),
            json.dumps({"id": "d", "provider": "openai", "model": "gpt-4o", "input_tokens": -5}),
            json.dumps(
                {
                    "id": "e",
                    "provider": "openai",
                    "model": "o3",
                    "input_tokens": 1000000,
                    "output_tokens": 0,
                    "timestamp": "2025-06-09T12:00:00+00:00",
                    "service_tier": "batch",
                }
            ),
            "",
        ]
    )
    out = run("pricing", "quote", stdin=lines, cwd=tmp_path)
    assert out.returncode == 1  # some lines were malformed
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(answers) == 6
    assert answers[0]["id"] == "a" and answers[0]["cost_usd"] == "0.0035"
    assert answers[1] == {"line": 2, "error": answers[1]["error"]}
    assert "prompt_tokens" in answers[2]["error"]
    assert answers[3]["status"] == "unknown_model" and answers[3]["cost_usd"] is None
    assert answers[4]["status"] == "invalid_usage"
    assert Decimal(answers[5]["cost_usd"]) == Decimal(5)  # $10 before the cut, batch halves it


def test_quote_stdin_all_good_exits_zero(tmp_path):
    out = run("pricing", "quote", stdin=Path("examples/calls.jsonl").read_text(), cwd=Path.cwd())
    assert out.returncode == 0, out.stderr
    statuses = [json.loads(line)["status"] for line in out.stdout.splitlines()]
    assert statuses.count("priced") == len(statuses) - 1 and statuses[-1] == "unknown_model"


def test_lookup_explains_the_price(tmp_path):
    out = run("pricing", "lookup", "openai/o3", "--at", "2025-06-01", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "prefix 'openai/' removed" in out.stdout
    assert "input_mtok                   10" in out.stdout
    assert "from 2025-06-10" in out.stdout
    js = json.loads(
        run(
            "pricing", "lookup", "o3", "--provider", "openai", "--at", "2025-07-01", "--json", cwd=tmp_path
        ).stdout
    )
    assert js["prices_in_force"] == {"since": "from 2025-06-10", "prices": js["prices_in_force"]["prices"]}
    assert js["prices_in_force"]["prices"]["input_mtok"] == "2"
    missing = run("pricing", "lookup", "no-such-model", cwd=tmp_path)
    assert missing.returncode == 1 and "unknown model" in missing.stdout


def test_list_formats(tmp_path):
    table = run("pricing", "list", "--provider", "anthropic", cwd=tmp_path)
    assert table.returncode == 0 and "claude-sonnet-4-5" in table.stdout
    listed = run("pricing", "list", "--provider", "x_ai", "--format", "json", cwd=tmp_path).stdout
    rows = [json.loads(line) for line in listed.splitlines()]  # one JSON object per line, as costspan sql
    assert rows and {r["provider"] for r in rows} == {"x-ai"}
    csv_out = run("pricing", "list", "--format", "csv", cwd=tmp_path).stdout.splitlines()
    assert csv_out[0].startswith("provider,model,input_mtok")
    assert len(csv_out) > 2000
    bad = run("pricing", "list", "--provider", "nobody", cwd=tmp_path)
    assert bad.returncode == 2 and "no provider 'nobody'" in bad.stderr


def test_import_genai_prices_into_the_data_dir(tmp_path):
    out = run("pricing", "import", "genai-prices", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "imported genai-prices 0.2.3: 47 providers, 2330 models" in out.stdout
    assert (tmp_path / "data" / "pricing" / "genai-prices.json").is_file()
    quote = run(
        "pricing",
        "quote",
        "--model",
        "gpt-4o",
        "--input-tokens",
        "10",
        "--data-dir",
        str(tmp_path / "data"),
        cwd=tmp_path,
    )
    assert json.loads(quote.stdout)["status"] == "priced"


@pytest.mark.skipif(not (FIXTURES / "litellm_prices_sample.json").exists(), reason="LiteLLM fixture absent")
def test_import_litellm_as_second_source(tmp_path):
    data = tmp_path / "data"
    out = run("pricing", "import", str(FIXTURES / "litellm_prices_sample.json"), "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert "imported litellm" in out.stdout
    assert "pricing now uses: genai-prices@0.2.3/" in out.stdout and "+ litellm@" in out.stdout
    assert (data / "pricing" / "litellm.json").is_file()


def test_bad_input_files_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.json"
    junk.write_text('{"hello": 1}')
    out = run("pricing", "import", str(junk), cwd=tmp_path)
    assert out.returncode == 2 and "neither a genai-prices data file" in out.stderr
    bad_yaml = tmp_path / "o.yaml"
    bad_yaml.write_text("models:\n  - id: x\n    prices: {input_mtok: -1}\n")
    out = run(
        "pricing",
        "quote",
        "--model",
        "gpt-4o",
        "--input-tokens",
        "1",
        "--overrides",
        str(bad_yaml),
        cwd=tmp_path,
    )
    assert out.returncode == 2
    assert (
        out.stderr.strip()
        == f"costspan pricing: {bad_yaml}:3: input_mtok: a finite, non-negative number; got -1"
    )
    env_out = run(
        "pricing",
        "quote",
        "--model",
        "gpt-4o",
        "--input-tokens",
        "1",
        cwd=tmp_path,
        env={"COSTSPAN_PRICING_OVERRIDES": str(bad_yaml)},
    )
    assert env_out.returncode == 2 and f"{bad_yaml}:3:" in env_out.stderr


def test_list_table_fits_120_columns_with_tiers_summarised(tmp_path):
    table = run("pricing", "list", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) > 2000
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    # claude-sonnet-4-5's four main rates each change above 200,000 input tokens: the base rate, marked
    (row,) = [
        line.split() for line in lines if line.startswith("anthropic ") and " claude-sonnet-4-5 " in line
    ]
    assert row[2:6] == ["3*", "15*", "0.3*", "3.75*"]
    assert any(".. " in line for line in lines)  # the longest model ids are cut, and say so


def test_list_json_has_exact_strings_and_null_for_what_is_absent(tmp_path):
    listed = run("pricing", "list", "--provider", "anthropic", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["model"]: row for row in map(json.loads, listed.stdout.splitlines())}
    sonnet = rows["claude-sonnet-4-5"]
    assert sonnet["input_mtok"] == {"base": "3", "tiers": [[200000, "6"]]}
    assert sonnet["other_prices"]["web_searches_kcount"] == "10"
    assert sonnet["since"] is None
    old = rows["claude-2"]  # no cache prices and no other prices: null, never ""
    assert old["input_mtok"] == "8" and old["cache_read_mtok"] is None and old["other_prices"] is None
    for row in rows.values():
        assert "" not in row.values()
        for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok"):
            assert row[key] is None or isinstance(row[key], (str, dict)), row
    csv_rows = run("pricing", "list", "--provider", "anthropic", "--format", "csv", cwd=tmp_path).stdout
    (line,) = [line for line in csv_rows.splitlines() if line.startswith("anthropic,claude-sonnet-4-5,")]
    assert '"3 (6 above 200,000 input tokens)"' in line


def test_quote_from_a_terminal_with_nothing_piped_prints_its_help(tmp_path):
    import pty

    primary, secondary = pty.openpty()
    try:
        # a terminal on stdin that never sends a line: a quote that read it would wait out the timeout
        out = subprocess.run(
            [str(COSTSPAN), "pricing", "quote"],
            stdin=secondary,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert out.returncode == 2
    assert "usage: costspan pricing quote" in out.stderr and "--input-tokens" in out.stderr
    assert out.stdout == ""
