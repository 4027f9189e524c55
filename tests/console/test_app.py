"""The console application itself, over an empty data directory: who may open it, and what a wrong URL
parameter answers."""

from __future__ import annotations

import html

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from costspan.collector.console import PREFIX, create_app
from costspan.collector.console.auth import ConsoleAuth, is_loopback


def client(tmp_path, auth: ConsoleAuth) -> TestClient:
    admin = FastAPI()
    admin.mount(PREFIX, create_app(tmp_path, auth))
    return TestClient(admin, follow_redirects=False)


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("127.0.0.1:9464", True),
        ("127.0.0.2:9464", True),
        ("[::1]:9464", True),
        ("localhost:9464", True),
        ("0.0.0.0:9464", False),
        ("[::]:9464", False),
        ("10.0.0.5:9464", False),
        ("collector.internal:9464", False),
    ],
)
def test_loopback(endpoint, loopback):
    assert is_loopback(endpoint) is loopback


def test_on_loopback_without_a_token_the_console_is_open(tmp_path):
    with client(tmp_path, ConsoleAuth((), loopback=True)) as c:
        for path in ("/", "/explore", "/traces", "/models", "/budgets", "/calls", "/sql"):
            assert c.get(PREFIX + path).status_code == 200, path
        assert c.get(f"{PREFIX}/login").status_code == 303  # nothing to log in to
        missing = c.get(f"{PREFIX}/nope")
        assert missing.status_code == 404 and "no such page" in missing.text


def test_beyond_loopback_without_a_token_the_console_is_off(tmp_path):
    with client(tmp_path, ConsoleAuth((), loopback=False)) as c:
        for path in ("/", "/explore", "/sql?q=SELECT+1"):
            page = c.get(PREFIX + path)
            assert page.status_code == 403 and "bearer_token_env" in page.text
        assert c.get(f"{PREFIX}/sql?q=SELECT+1", headers={"authorization": "Bearer x"}).status_code == 403


def test_with_a_token_beyond_loopback_the_token_opens_it(tmp_path):
    with client(tmp_path, ConsoleAuth(("old", "new"), loopback=False)) as c:
        assert c.get(f"{PREFIX}/").status_code == 401
        for token in ("old", "new"):
            assert c.get(f"{PREFIX}/", headers={"authorization": f"Bearer {token}"}).status_code == 200
        login = c.post(f"{PREFIX}/login", data={"token": "new"})
        assert login.status_code == 303
        assert c.get(f"{PREFIX}/").status_code == 200


def test_a_cookie_from_another_collector_start_opens_nothing(tmp_path):
    first = ConsoleAuth(("t",), loopback=True)
    second = ConsoleAuth(("t",), loopback=True)
    cookie = first.cookie_for("t")
    assert cookie is not None and first.allowed(None, cookie)
    assert not second.allowed(None, cookie)
    assert first.cookie_for("wrong") is None


def test_bad_parameters_are_named(tmp_path):
    with client(tmp_path, ConsoleAuth((), loopback=True)) as c:
        for query, named in (
            ("by=nope", "unknown dimension 'nope'"),
            ("range=3y", "unknown range '3y'"),
            ("measure=joules", "unknown measure"),
            ("from=yesterday", "from: a day as YYYY-MM-DD"),
            ("f.colour=red", "unknown dimension 'colour'"),
        ):
            page = c.get(f"{PREFIX}/explore?{query}")
            assert page.status_code == 400 and named in html.unescape(page.text), query


def test_money_is_shown_alike_and_never_a_false_zero():
    from decimal import Decimal

    from costspan.collector.console.app import money

    assert money(Decimal("25.575")) == "$25.58"
    assert money(Decimal("1234567.891")) == "$1,234,567.89"
    assert money(Decimal("-0.5")) == "-$0.50"
    assert money(Decimal(0)) == "$0.00"
    assert money(Decimal("0.004")) == "<$0.01"  # not "$0.00" for a call that cost something
    assert money(Decimal("0.004"), 4) == "$0.0040"
    assert money(Decimal("0.00001"), 4) == "<$0.0001"
    assert money(None) == "—"


def test_a_value_cannot_inject_a_script_and_the_pages_forbid_inline_scripts(tmp_path):
    from datetime import UTC, datetime

    from tests.support.stored_calls import call, write_calls

    hostile = "</script><script>window.pwned=1</script>"
    write_calls(tmp_path, [call(datetime.now(UTC).replace(tzinfo=None), "0.5", team=hostile)])
    with client(tmp_path, ConsoleAuth((), loopback=True)) as c:
        for path in ("/", "/explore?by=team", "/explore?by=feature"):
            page = c.get(PREFIX + path)
            assert page.status_code == 200
            assert "<script>window.pwned" not in page.text, path
            assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in c.get(f"{PREFIX}/login").headers["content-security-policy"]
        chart = c.get(f"{PREFIX}/explore?by=team").text
        assert (
            "\\u003c/script\\u003e\\u003cscript\\u003ewindow.pwned=1" in chart
        )  # in the chart's JSON, escaped
