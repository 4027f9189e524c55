"""`costspan sql` and `duckdb_views.connect` read the stored data and nothing else: no other file, no URL, no
extension, no setting changed back. Real files, the real CLI, real DuckDB."""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from costspan.exporters.duckdb_views import VIEWS, connect
from costspan.exporters.layout import CALLS, dataset_files
from tests.exporters.test_rollups import store
from tests.support.collector import COSTSPAN

MARKER = "costspan-sandbox-secret-7f3a9c"
LINK_NAME = "part-99-0123456789abcdef0123456789abcdef.parquet"  # named as the writers name their files


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    """A data directory with stored calls and agent spans, and a secret and a Parquet file beside it."""
    data = tmp_path / "data"
    store(data)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{MARKER}\n")
    (outside / "secret.csv").write_text(f"a,b\n{MARKER},1\n")
    # a real Parquet file of the same schema, but not the collector's: readable only if the sandbox leaks
    shutil.copy(dataset_files(data, CALLS)[0], outside / "calls.parquet")
    return data


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets (none may arrive)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def sql(query: str, data_dir: Path, home: Path) -> subprocess.CompletedProcess[str]:
    # HOME is a fresh folder, so an extension downloaded or installed would show up in it
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [str(COSTSPAN), "sql", "--data-dir", str(data_dir), query],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def reads_outside(data: Path, url: str) -> dict[str, str]:
    """SELECT statements that try to read past the data directory's views."""
    outside = data.parent / "outside"
    day = dataset_files(data, CALLS)[0].parent
    escape = day / ".." / ".." / ".." / "outside" / "secret.txt"
    return {
        "read_text": f"SELECT * FROM read_text('{outside / 'secret.txt'}')",
        "read_csv": f"SELECT * FROM read_csv('{outside / 'secret.csv'}')",
        "read_csv /etc/passwd": "SELECT * FROM read_csv('/etc/passwd', sep = ':')",
        "read_blob": f"SELECT * FROM read_blob('{outside / 'secret.txt'}')",
        "read_parquet": f"SELECT * FROM read_parquet('{outside / 'calls.parquet'}')",
        "parquet_metadata": f"SELECT * FROM parquet_metadata('{outside / 'calls.parquet'}')",
        "glob /etc": "SELECT * FROM glob('/etc/*')",
        "glob of the data directory": f"SELECT * FROM glob('{data}/**')",
        "dot-dot escape": f"SELECT * FROM read_text('{escape}')",
        "a stored file by a dot-dot path": f"SELECT * FROM read_text('{day}/../{day.name}/x')",
        "planted symbolic link": f"SELECT * FROM read_parquet('{day / LINK_NAME}')",
        "http URL": f"SELECT * FROM read_parquet('{url}/calls.parquet')",
        "http URL, csv": f"SELECT * FROM read_csv('{url}/secret.csv')",
        "https URL": "SELECT * FROM read_parquet('https://127.0.0.1:9/calls.parquet')",
        "sniff_csv": f"SELECT * FROM sniff_csv('{outside / 'secret.csv'}')",
    }


STATEMENTS = {
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "load spatial": "LOAD spatial",
    "set external access": "SET enable_external_access = true",
    "reset external access": "RESET enable_external_access",
    "unlock": "SET lock_configuration = false",
    "reset lock": "RESET lock_configuration",
    "pragma": "PRAGMA enable_external_access = true",
    "widen allowed paths": "SET allowed_paths = ['/etc/passwd']",
    "allow directories": "SET allowed_directories = ['/']",
    "autoinstall": "SET autoinstall_known_extensions = true",
    "attach a file": "ATTACH '{tmp}/other.duckdb' AS other",
    "copy to": "COPY (SELECT * FROM llm_calls) TO '{tmp}/out.csv'",
    "copy from": "CREATE TEMP TABLE t (a VARCHAR, b INTEGER); COPY t FROM '{tmp}/outside/secret.csv'",
    "export": "EXPORT DATABASE '{tmp}/exported'",
}


def refusal(con: duckdb.DuckDBPyConnection, query: str) -> Exception | None:
    """The error a query ends with (None: it ran)."""
    try:
        con.execute(query).fetchall()
    except duckdb.Error as exc:
        return exc
    return None


def plant_link(data: Path) -> Path:
    """A symbolic link inside a dataset's day folder, to a Parquet file outside the data directory."""
    link = dataset_files(data, CALLS)[0].parent / LINK_NAME
    link.symlink_to(data.parent / "outside" / "calls.parquet")
    return link


EXAMPLES = [  # the README's and docs/storage.md's
    "SELECT provider, response_model, input_tokens, output_tokens, cost_usd FROM llm_calls",
    "SELECT feature, team, sum(cost_usd) AS cost FROM llm_calls GROUP BY ALL",
    "SELECT agent_name, sum(cost_usd), sum(self_cost_usd) FROM cost_by_agent GROUP BY 1",
    "SELECT day, model, team, calls, cost_usd FROM cost_by_day ORDER BY day DESC LIMIT 20",
    "SELECT root_service, sum(cost_usd) FROM cost_by_trace GROUP BY 1",
    "SELECT agent_name, sum(cost_usd) AS inclusive, sum(self_cost_usd) AS own "
    "FROM cost_by_agent GROUP BY 1 ORDER BY own DESC",
    "SELECT day, model, sum(cost_usd) FROM cost_by_day GROUP BY ALL ORDER BY 1",
    "SELECT root_service, count(*), sum(cost_usd) FROM cost_by_trace GROUP BY 1",
    "WITH t AS (SELECT * FROM llm_calls_all) SELECT count(*) FROM t JOIN llm_call_ancestors a "
    "ON a.call_span_id = t.span_id",
    "SELECT count(*) FROM cost_by_workflow",
]


def test_the_documented_queries_still_run(stored: Path, tmp_path: Path) -> None:
    plant_link(stored)
    con = connect(stored)
    for query in EXAMPLES:
        assert con.execute(query).fetchall(), query
    with ThreadPoolExecutor(3) as pool:  # as a user runs them: the README's first ones, and a rollup
        runs = list(pool.map(lambda q: sql(q, stored, tmp_path), EXAMPLES[:3]))
    for query, out in zip(EXAMPLES, runs, strict=False):
        assert out.returncode == 0, (query, out.stderr)
        assert "row" in out.stdout.splitlines()[-1]
    total = sql("SELECT count(*) AS n, sum(cost_usd) AS cost FROM llm_calls", stored, tmp_path)
    assert total.stdout.splitlines()[1].split() == ["5", "0.01550855"]  # the planted link is not a call


# the CLI starts a process per query: one of each way out the connection test covers in full
CLI_CASES = (
    "read_text",
    "read_csv /etc/passwd",
    "read_parquet",
    "glob /etc",
    "dot-dot escape",
    "planted symbolic link",
    "http URL",
    "install",
    "set external access",
    "attach a file",
    "copy to",
    "export",
)


def test_the_cli_refuses_every_way_out(stored: Path, tmp_path: Path, http_server) -> None:
    url, seen = http_server
    plant_link(stored)
    home = tmp_path / "home"
    home.mkdir()
    cases = {**reads_outside(stored, url), **STATEMENTS}
    with ThreadPoolExecutor(4) as pool:
        outs = pool.map(lambda n: sql(cases[n].format(tmp=tmp_path), stored, home), CLI_CASES)
        runs = dict(zip(CLI_CASES, outs, strict=True))
    for name, out in runs.items():
        assert out.returncode == 2, (name, out.stdout, out.stderr)
        assert out.stdout == "", name
        assert MARKER not in out.stderr, name
        assert (
            "Permission Error" in out.stderr
            or "one read-only query" in out.stderr
            or "configuration has been locked" in out.stderr
        ), (name, out.stderr)
        if "Permission Error" in out.stderr:
            assert "reads only the stored data" in out.stderr
    assert seen == []  # no request reached the HTTP server
    assert list(home.iterdir()) == []  # no extension was downloaded or installed
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "exported").exists()


def test_the_connection_refuses_every_way_out(stored: Path, tmp_path: Path, http_server) -> None:
    url, seen = http_server
    plant_link(stored)
    con = connect(stored)
    expected = con.execute("SELECT count(*), sum(cost_usd) FROM llm_calls").fetchone()
    for name, query in reads_outside(stored, url).items():
        assert isinstance(refusal(con, query), duckdb.PermissionException), name
    for name, query in STATEMENTS.items():
        error = refusal(con, query.format(tmp=tmp_path))
        assert isinstance(error, (duckdb.PermissionException, duckdb.InvalidInputException)), (name, error)
        assert "Permission Error" in str(error) or "configuration has been locked" in str(error), name
    assert seen == []
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
            "'lock_configuration', 'autoinstall_known_extensions', 'autoload_known_extensions')"
        ).fetchall()
    )
    assert set(settings.values()) == {"false", "true"}
    assert settings["enable_external_access"] == "false" and settings["lock_configuration"] == "true"
    assert settings["autoinstall_known_extensions"] == settings["autoload_known_extensions"] == "false"
    # after all that, the views read as before, every one of them
    assert con.execute("SELECT count(*), sum(cost_usd) FROM llm_calls").fetchone() == expected
    for view in VIEWS:
        con.execute(f"SELECT count(*) FROM {view}").fetchone()


def test_a_planted_link_is_neither_in_a_view_nor_readable(stored: Path) -> None:
    before = connect(stored).execute("SELECT count(*) FROM llm_calls").fetchone()
    link = plant_link(stored)
    assert link in dataset_files(stored, CALLS)  # a plain reader's listing would take it
    con = connect(stored)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == before
    with pytest.raises(duckdb.PermissionException):
        con.execute(f"SELECT count(*) FROM read_parquet('{link}')").fetchall()


def test_a_fresh_data_directory_is_locked_too(tmp_path: Path) -> None:
    con = connect(tmp_path)  # no file yet: the views are empty tables
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (0,)
    with pytest.raises(duckdb.PermissionException):
        con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
    with pytest.raises(duckdb.InvalidInputException):
        con.execute("SET enable_external_access = true")


def test_a_file_swapped_away_after_the_views_were_made_is_listed_again(stored: Path, monkeypatch, capsys):
    """Compaction replaces a day's files by a new one between the listing and the query: the locked
    connection reports the path it may no longer read as a permission error; costspan sql lists again."""
    from costspan.collector import sql as sql_command
    from costspan.exporters import duckdb_views

    listed = dataset_files(stored, CALLS)[0]
    compacted = listed.with_name("day-0123456789abcdef0123456789abcdef.parquet")
    con = connect(stored)
    listed.rename(compacted)  # the same rows under the compacted file's name
    error = refusal(con, "SELECT count(*) FROM llm_calls")
    assert isinstance(error, duckdb.PermissionException) and duckdb_views.files_gone(con)
    compacted.rename(listed)
    assert not duckdb_views.files_gone(connect(stored))

    made = []
    real_connect = duckdb_views.connect

    def connect_then_swap(data_dir: Path) -> duckdb.DuckDBPyConnection:
        connection = real_connect(data_dir)
        if not made:
            listed.rename(compacted)
        made.append(connection)
        return connection

    monkeypatch.setattr(duckdb_views, "connect", connect_then_swap)
    args = argparse.Namespace(query="SELECT count(*) AS n FROM llm_calls", data_dir=str(stored), format="csv")
    assert sql_command.run(args) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "5"]
    assert len(made) == 2  # the first connection's query failed, the second listed the compacted file
