"""Who may open the console of a real ``costspan serve`` whose admin server has a token: a browser logs in
with the token and gets a cookie, a script sends the bearer token, anyone else is sent to the login page; the
rest of the admin server still asks for the bearer token."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from tests.support.collector import Collector

TOKEN = "console-test-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-access")
    config = folder / "collector.yaml"
    config.write_text("admin: {bearer_token_env: COSTSPAN_CONSOLE_TEST_TOKEN}\n")
    mp = pytest.MonkeyPatch()
    mp.setenv("COSTSPAN_CONSOLE_TEST_TOKEN", TOKEN)
    collector = Collector(folder / "data").start("--config", str(config))
    mp.undo()
    try:
        yield collector
    finally:
        collector.kill(15)


def test_a_browser_is_sent_to_log_in_and_comes_back_with_a_cookie(guarded):
    with httpx.Client(base_url=guarded.admin_url) as client:
        page = client.get("/console/explore?by=team", headers={"accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == "/console/login?next=%2Fconsole%2Fexplore%3Fby%3Dteam"
        form = client.get(page.headers["location"])
        assert form.status_code == 200 and 'name="token"' in form.text
        wrong = client.post("/console/login", data={"token": "guess", "next": "/console/explore?by=team"})
        assert wrong.status_code == 401 and "costspan_console" not in wrong.cookies
        right = client.post("/console/login", data={"token": TOKEN, "next": "/console/explore?by=team"})
        assert right.status_code == 303 and right.headers["location"] == "/console/explore?by=team"
        cookie = right.cookies["costspan_console"]
        assert TOKEN not in cookie
        set_cookie = right.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/console" in set_cookie
        assert client.get("/console/explore?by=team").status_code == 200
        # the cookie opens the console only: the rest of the admin server wants the bearer token
        assert client.get("/metrics").status_code == 401
        client.post("/console/logout")
        assert client.get("/console/", headers={"accept": "text/html"}).status_code == 303


def test_a_script_sends_the_bearer_token(guarded):
    url = f"{guarded.admin_url}/console/sql?q=SELECT+1"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer guess"}).status_code == 401
    assert httpx.get(url, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    # the vendored scripts and styles are public release files (the login page uses them)
    assert httpx.get(f"{guarded.admin_url}/console/static/console.css").status_code == 200


def test_after_login_only_a_page_of_the_console_is_a_place_to_go(guarded):
    for target in ("https://elsewhere.example/", "//elsewhere.example/console/", "/metrics"):
        answer = httpx.post(f"{guarded.admin_url}/console/login", data={"token": TOKEN, "next": target})
        assert answer.status_code == 303 and answer.headers["location"] == "/console/"
