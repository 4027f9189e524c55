"""The TLS and token examples in README.md and deploy/README.md are configurations the tools accept: the
collector's by `costspan config check`, Prometheus's scrape job by `promtool check config`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.certs import make_pki
from tests.support.prometheus import binary

ROOT = Path(__file__).resolve().parents[2]
COSTSPAN = Path(sys.executable).with_name("costspan")
CREDENTIALS = "/run/credentials/costspan.service/"


def yaml_blocks(markdown: Path) -> list[str]:
    return [block.split("```", 1)[0] for block in markdown.read_text().split("```yaml\n")[1:]]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def check(config: Path) -> str:
    env = {"COSTSPAN_TOKEN": "a", "COSTSPAN_TOKEN_NEXT": "b", "COSTSPAN_ADMIN_TOKEN": "c", "PATH": "/usr/bin"}
    checked = subprocess.run(
        [str(COSTSPAN), "config", "check", str(config)], capture_output=True, text=True, env=env, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    return checked.stdout


def test_the_readme_example(pki, tmp_path):
    (block,) = [b for b in yaml_blocks(ROOT / "README.md") if "client_ca_file" in b]
    for name, source in (
        ("server.crt", pki.server_cert),
        ("server.key", pki.server_key),
        ("clients-ca.crt", pki.ca),
    ):
        (tmp_path / name).write_bytes(source.read_bytes())
    config = tmp_path / "costspan.yaml"
    config.write_text(block)
    shown = check(config)
    assert "gRPC 0.0.0.0:4317 (TLS 1.2+, client certificates required, reloaded every 3600s)" in shown
    assert "HTTP 0.0.0.0:4318 (TLS 1.3+), 2 bearer tokens" in shown


def test_the_systemd_example(pki, tmp_path):
    (block,) = [b for b in yaml_blocks(ROOT / "deploy" / "README.md") if CREDENTIALS in b]
    for name, source in (("server.crt", pki.server_cert), ("server.key", pki.server_key)):
        (tmp_path / name).write_bytes(source.read_bytes())
    (tmp_path / "clients-ca.crt").write_bytes(pki.ca.read_bytes())
    config = tmp_path / "costspan.yaml"
    config.write_text(block.replace(CREDENTIALS, f"{tmp_path}/"))
    shown = check(config)
    assert "HTTP 0.0.0.0:4318 (TLS 1.2+, client certificates required), 1 bearer token" in shown
    assert "admin 0.0.0.0:9464 (TLS 1.2+), 1 bearer token" in shown


def test_the_prometheus_scrape_job(pki, tmp_path):
    (block,) = [b for b in yaml_blocks(ROOT / "deploy" / "README.md") if "scheme: https" in b]
    job = yaml.safe_load(block)[0]
    job["tls_config"]["ca_file"] = str(pki.ca)
    token = tmp_path / "costspan-admin-token"
    token.write_text("c\n")
    job["authorization"]["credentials_file"] = str(token)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    checked = subprocess.run(
        [binary("promtool"), "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
