"""A real ``costspan serve`` process on free 127.0.0.1 ports, for end-to-end tests.

``Collector(data_dir).start()`` waits for ``/readyz``; ``sql()`` runs the real ``costspan sql``;
``wait_for()`` polls a query until it returns the expected CSV rows. ``admin_ca``: the admin server speaks
TLS (its configuration file says so), with a certificate signed by that CA.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

COSTSPAN = Path(sys.executable).with_name("costspan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    READY = "/readyz"  # what start() waits for to answer 200

    def __init__(self, data_dir: Path, admin_ca: Path | None = None) -> None:
        self.data_dir = data_dir
        self.grpc, self.http, self.admin = free_port(), free_port(), free_port()
        self.proc: subprocess.Popen | None = None
        self.admin_url = f"{'https' if admin_ca else 'http'}://127.0.0.1:{self.admin}"
        self.admin_verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(admin_ca)) if admin_ca else True
        )

    def start(self, *extra_args: str) -> Collector:
        self.proc = subprocess.Popen(
            [
                str(COSTSPAN),
                "serve",
                *extra_args,
                "--data-dir",
                str(self.data_dir),
                "--grpc-address",
                f"127.0.0.1:{self.grpc}",
                "--http-address",
                f"127.0.0.1:{self.http}",
                "--admin-address",
                f"127.0.0.1:{self.admin}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read().decode()
            try:
                ready = httpx.get(f"{self.admin_url}{self.READY}", timeout=1, verify=self.admin_verify)
                if ready.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("costspan serve did not become ready")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        self.proc.wait(15)

    def sql(self, query: str) -> list[str]:
        out = subprocess.run(
            [str(COSTSPAN), "sql", "--data-dir", str(self.data_dir), "--format", "csv", query],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.splitlines()[1:]

    def wait_for(self, query: str, expected: list[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        rows: list[str] = []
        while time.monotonic() < deadline:
            rows = self.sql(query)
            if rows == expected:
                return
            time.sleep(0.2)
        assert rows == expected
