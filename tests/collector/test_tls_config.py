"""TLS and bearer token settings: mistakes named by file and line (`costspan config check`), and `costspan
serve` refusing them in one line before anything listens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from cryptography.hazmat.primitives import serialization

from costspan.collector.config import ConfigFileError, load_config
from tests.support.certs import make_pki
from tests.support.collector import free_port

COSTSPAN = Path(sys.executable).with_name("costspan")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def folder(tmp_path, pki):
    """A configuration folder holding the certificates, as an operator keeps them, and a few bad files."""
    for path in (pki.ca, pki.server_cert, pki.server_key, pki.client_key):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), password=None)
    (tmp_path / "encrypted.key").write_bytes(
        key.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "costspan.yaml"
    path.write_text(dedent(text).lstrip())
    return path


def test_tls_on_every_listener_and_several_tokens(folder, monkeypatch):
    monkeypatch.setenv("COSTSPAN_TEST_TOKEN", "old-token")
    monkeypatch.setenv("COSTSPAN_TEST_TOKEN_NEXT", " new-token , newer-token ")
    monkeypatch.setenv("COSTSPAN_TEST_ADMIN_TOKEN", "admin-token")
    path = write(
        folder,
        """
        receivers:
          otlp:
            grpc:
              endpoint: "0.0.0.0:4317"
              tls: {cert_file: server.crt, key_file: server.key, reload_interval: 1h}
            http:
              endpoint: "0.0.0.0:4318"
              tls: {cert_file: server.crt, key_file: server.key, client_ca_file: ca.crt, min_version: 1.3}
            bearer_token_env: [COSTSPAN_TEST_TOKEN, COSTSPAN_TEST_TOKEN_NEXT]
        admin:
          endpoint: "0.0.0.0:9464"
          tls: {cert_file: server.crt, key_file: server.key}
          bearer_token_env: COSTSPAN_TEST_ADMIN_TOKEN
        """,
    )
    config = load_config(path)
    assert config.bearer_tokens == ("old-token", "new-token", "newer-token")
    assert config.admin_bearer_tokens == ("admin-token",)
    assert config.grpc_tls is not None and not config.grpc_tls.mutual
    assert config.grpc_tls.cert_file == str(folder / "server.crt")  # relative to the file
    assert config.grpc_tls.reload_interval_s == 3600 and config.admin_tls.reload_interval_s is None
    assert config.http_tls is not None and config.http_tls.mutual and config.http_tls.min_version == "1.3"
    assert config.admin_tls is not None and config.admin_tls.min_version == "1.2"
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "gRPC 0.0.0.0:4317 (TLS 1.2+, reloaded every 3600s)" in checked.stdout
    assert "HTTP 0.0.0.0:4318 (TLS 1.3+, client certificates required), 3 bearer tokens" in checked.stdout
    assert "admin 0.0.0.0:9464 (TLS 1.2+), 1 bearer token;" in checked.stdout
    assert "token" not in checked.stdout.replace("bearer token", "")  # no token is shown


def test_no_tls_and_no_token_by_default(folder):
    config = load_config(write(folder, "admin: {endpoint: 127.0.0.1:9464}\n"))
    assert (config.grpc_tls, config.http_tls, config.admin_tls) == (None, None, None)
    assert config.bearer_tokens == () and config.admin_bearer_tokens == ()


def _http_tls(settings: str) -> str:
    return f"receivers:\n  otlp:\n    http:\n      endpoint: 127.0.0.1:4318\n      tls:\n{settings}"


MISTAKES = [
    (_http_tls("        cert_file: server.crt\n"), 6, "http.tls.cert_file: given without key_file"),
    (_http_tls("        key_file: server.key\n"), 6, "http.tls.key_file: given without cert_file"),
    (
        _http_tls("        client_ca_file: ca.crt\n"),
        5,
        "http.tls: cert_file and key_file are required",
    ),
    (_http_tls("        cert_file: missing.crt\n        key_file: server.key\n"), 6, "cannot read"),
    (_http_tls("        cert_file: server.crt\n        key_file: missing.key\n"), 7, "cannot read"),
    (_http_tls("        cert_file: notes.txt\n        key_file: server.key\n"), 6, "no PEM certificate"),
    (_http_tls("        cert_file: server.crt\n        key_file: notes.txt\n"), 7, "no PEM private key"),
    (_http_tls("        cert_file: server.crt\n        key_file: encrypted.key\n"), 7, "is encrypted"),
    (
        _http_tls("        cert_file: server.crt\n        key_file: client.key\n"),
        7,
        "client.key: not the private key of",
    ),
    (
        _http_tls(
            "        cert_file: server.crt\n        key_file: server.key\n        client_ca_file: notes.txt\n"
        ),
        8,
        "http.tls.client_ca_file:",
    ),
    (
        _http_tls(
            '        cert_file: server.crt\n        key_file: server.key\n        min_version: "1.1"\n'
        ),
        8,
        'min_version: "1.2" or "1.3"',
    ),
    (
        _http_tls("        cert_file: server.crt\n        key_file: server.key\n        max_version: 1.3\n"),
        8,
        "tls.max_version: unknown key",
    ),
    (
        "receivers:\n  otlp:\n    grpc:\n      tls: {cert_file: server.crt, key_file: server.key, "
        'min_version: "1.3"}\n',
        4,
        'the gRPC receiver takes only "1.2"',
    ),
    (
        _http_tls(
            "        cert_file: server.crt\n        key_file: server.key\n        reload_interval: 0s\n"
        ),
        8,
        "http.tls.reload_interval: a positive duration",
    ),
    (
        _http_tls(
            "        cert_file: server.crt\n        key_file: server.key\n        reload_interval: soon\n"
        ),
        8,
        "http.tls.reload_interval: a duration such as 5s",
    ),
    (
        "admin:\n  tls: {cert_file: server.crt, key_file: missing.key}\n",
        2,
        "admin.tls.key_file: cannot read",
    ),
    (
        "receivers:\n  otlp:\n    bearer_token_env: [COSTSPAN_TEST_SET, COSTSPAN_TEST_NO_SUCH_VARIABLE]\n",
        3,
        "environment variable COSTSPAN_TEST_NO_SUCH_VARIABLE is not set",
    ),
    (
        "admin:\n  bearer_token_env: COSTSPAN_TEST_SPACED\n",
        2,
        "environment variable COSTSPAN_TEST_SPACED: token 2 of 2 has a space",
    ),
    ("admin:\n  bearer_token_env: []\n", 2, "bearer_token_env: an environment variable, or a list"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), MISTAKES)
def test_mistakes_name_file_and_line(folder, monkeypatch, text, line, fragment):
    monkeypatch.setenv("COSTSPAN_TEST_SET", "a-token")
    monkeypatch.setenv("COSTSPAN_TEST_SPACED", "a-token,not a token")
    path = write(folder, text)
    with pytest.raises(ConfigFileError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:{line}:"), str(err.value)
    assert fragment in str(err.value), str(err.value)
    assert "not a token" not in str(err.value)  # a token's value is never shown
    checked = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 1 and f"{path}:{line}:" in checked.stderr


def test_serve_refuses_a_tls_mistake_in_one_line_before_listening(folder, tmp_path):
    ports = [free_port() for _ in range(3)]
    path = write(
        folder,
        f"""
        receivers:
          otlp:
            grpc: {{endpoint: "127.0.0.1:{ports[0]}"}}
            http:
              endpoint: "127.0.0.1:{ports[1]}"
              tls: {{cert_file: server.crt, key_file: client.key}}
        admin: {{endpoint: "127.0.0.1:{ports[2]}"}}
        """,
    )
    served = subprocess.run(
        [str(COSTSPAN), "serve", "--config", str(path), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert served.returncode == 2
    (line,) = served.stderr.splitlines()
    assert (
        line.startswith(f"costspan serve: {path}:6: receivers.otlp.http.tls.key_file: ")
        and "not the private key" in line
    )
    assert not (tmp_path / "data").exists()  # refused before the pipeline or any listener started


def test_serve_refuses_a_token_flag_with_a_space():
    served = subprocess.run(
        [str(COSTSPAN), "serve", "--token", "good,bad token"], capture_output=True, text=True, timeout=60
    )
    assert served.returncode == 2
    assert served.stderr.strip() == (
        "costspan serve: --token: token 2 of 2 has a space or a character outside printable ASCII"
    )
