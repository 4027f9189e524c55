"""A real Alertmanager (the Debian ``prometheus-alertmanager`` package) on a free 127.0.0.1 port, for tests.

``AlertmanagerServer(workdir, webhook_url).start()`` writes a temporary configuration that routes every
alert, grouped by alert name and budget, to one webhook receiver at once (no group wait), with clustering
off (it would listen on 0.0.0.0:9094), and waits for ``/-/ready``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tests.support.collector import free_port
from tests.support.prometheus import run_until_ready, stop

BINARY = "prometheus-alertmanager"  # Debian's name for the alertmanager binary
MISSING = (
    "Alertmanager is not installed: `apt-get install prometheus-alertmanager` (system-deps.sh installs it)"
)


def binary() -> str:
    """The path of Alertmanager; a missing one fails the test, it is never skipped."""
    path = shutil.which(BINARY) or shutil.which("alertmanager")
    assert path, MISSING
    return path


class AlertmanagerServer:
    def __init__(self, workdir: Path, webhook_url: str, route: Mapping[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.route = dict(route or {})
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> AlertmanagerServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": ["alertname", "budget"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
                **self.route,
            },
            "receivers": [
                {"name": "webhook", "webhook_configs": [{"url": self.webhook_url, "send_resolved": False}]}
            ],
        }
        config_file = self.workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.proc = run_until_ready(
            [
                binary(),
                f"--config.file={config_file}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address={self.address}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self.url,
        )
        return self

    def stop(self) -> None:
        stop(self.proc)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds (API v2)."""
        return httpx.get(f"{self.url}/api/v2/alerts", timeout=10).json()
