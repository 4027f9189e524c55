"""deploy/systemd/costspan.service: ``systemd-analyze verify`` finds nothing to say, and the unit's own
commands check a configuration, serve until ready and stop cleanly on its KillSignal."""

from __future__ import annotations

import configparser
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.support.collector import COSTSPAN, free_port

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "costspan.service"
INSTALLED = "/opt/costspan/bin/costspan"
CONFIG = "/etc/costspan/costspan.yaml"
STATE = "/var/lib/costspan"


@pytest.fixture(scope="module")
def service() -> configparser.SectionProxy:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    return unit["Service"]


def test_systemd_analyze_verify_finds_nothing(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian package systemd; .ci/run installs it)"
    # An image of the installed layout: the unit, an executable at the unit's path, systemd's own units.
    root = tmp_path / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system/costspan.service")
    executable = root / INSTALLED.lstrip("/")
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    verified = subprocess.run(
        [analyze, "verify", "--man=no", f"--root={root}", "costspan.service"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # verify exits 0 on unknown keys and bad values, and only reports them: any report is a failure
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout + verified.stderr == ""


def test_the_units_commands_check_serve_and_stop_cleanly(service, tmp_path):
    admin = free_port()
    config = tmp_path / "costspan.yaml"
    config.write_text(
        "receivers:\n"
        "  otlp:\n"
        f"    grpc: {{endpoint: 127.0.0.1:{free_port()}}}\n"
        f"    http: {{endpoint: 127.0.0.1:{free_port()}}}\n"
        f"admin: {{endpoint: 127.0.0.1:{admin}}}\n"
    )

    def command(line: str) -> list[str]:
        args = shlex.split(line)
        assert args[0] == INSTALLED
        here = {CONFIG: str(config), STATE: str(tmp_path / "state")}
        return [str(COSTSPAN), *(here.get(arg, arg) for arg in args[1:])]

    checked = subprocess.run(command(service["ExecStartPre"]), capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    serving = subprocess.Popen(command(service["ExecStart"]), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert serving.poll() is None, serving.stderr.read()
            assert time.monotonic() < deadline, "costspan serve did not become ready"
            try:
                if httpx.get(f"http://127.0.0.1:{admin}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        serving.send_signal(getattr(signal, service["KillSignal"]))
        assert serving.wait(int(service["TimeoutStopSec"])) == 0
    finally:
        if serving.poll() is None:
            serving.kill()
            serving.wait(10)
    assert (tmp_path / "state").is_dir()
