"""``costspan serve`` says at start where its console is and whether it asks for a token."""

from __future__ import annotations

import signal

import pytest

from costspan.collector.config import load_config
from costspan.collector.serve import _console_line
from tests.support.collector import Collector


def started_log(collector: Collector) -> str:
    collector.kill(signal.SIGTERM)
    assert collector.proc is not None and collector.proc.stderr is not None
    return collector.proc.stderr.read().decode()


def test_serve_logs_the_console_url_open_on_loopback(tmp_path):
    collector = Collector(tmp_path / "data").start()
    log = started_log(collector)
    assert f"console: http://127.0.0.1:{collector.admin}/console/ (on the admin server, loopback only;" in log
    assert "no token asked" in log


def test_serve_logs_that_the_console_asks_for_the_admin_token(tmp_path, monkeypatch):
    config = tmp_path / "collector.yaml"
    config.write_text("admin: {bearer_token_env: COSTSPAN_SERVE_LINE_TOKEN}\n")
    monkeypatch.setenv("COSTSPAN_SERVE_LINE_TOKEN", "a-token")
    collector = Collector(tmp_path / "data").start("--config", str(config))
    log = started_log(collector)
    assert f"console: http://127.0.0.1:{collector.admin}/console/ (on the admin server; it asks for" in log
    assert "a-token" not in log


@pytest.mark.parametrize(
    ("admin", "expected"),
    [
        ("{endpoint: '0.0.0.0:9464'}", "console: off at http://<this host>:9464/console/: the admin server"),
        ("{endpoint: 'localhost:9999'}", "console: http://localhost:9999/console/ (on the admin server,"),
    ],
)
def test_the_console_line_beyond_loopback_and_by_name(tmp_path, admin, expected):
    config = tmp_path / "collector.yaml"
    config.write_text(f"admin: {admin}\n")
    assert _console_line(load_config(config)).startswith(expected)
