"""A real Prometheus server (the Debian ``prometheus`` package) on a free 127.0.0.1 port, for tests.

``PrometheusServer(workdir, targets).start()`` writes a temporary configuration scraping ``targets`` every
second (``scrape``: more of the job's settings, such as ``scheme``, ``tls_config``, ``authorization``),
waits for ``/-/ready`` and offers ``query()`` (the HTTP API's instant query), ``alerts()`` and
``wait_for()``; ``alertmanagers``: where it sends firing alerts.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tests.support.collector import free_port

MISSING = "Prometheus is not installed: `apt-get install prometheus` (.ci/run installs it)"


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; a missing one fails the test, it is never skipped."""
    path = shutil.which(name)
    assert path, MISSING
    return path


def run_until_ready(args: Sequence[str], url: str) -> subprocess.Popen:
    """Start a Prometheus-family server (``args``) and wait until ``url``'s ``/-/ready`` answers 200."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(proc)
    raise AssertionError(f"{Path(args[0]).name} did not become ready")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class PrometheusServer:
    def __init__(
        self,
        workdir: Path,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        scrape: Mapping[str, Any] | None = None,
        alertmanagers: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.scrape = dict(scrape or {})
        self.targets = list(targets)
        self.rule_files = [str(path) for path in rule_files]
        self.alertmanagers = list(alertmanagers)  # host:port of each, sent the firing alerts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PrometheusServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": self.rule_files,
            "scrape_configs": [
                {"job_name": "costspan", "static_configs": [{"targets": self.targets}], **self.scrape}
            ],
        }
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        config_file = self.workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.proc = run_until_ready(
            [
                binary("prometheus"),
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            self.url,
        )
        return self

    def stop(self) -> None:
        stop(self.proc)

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts of the rules, pending and firing (``/api/v1/alerts``)."""
        body = httpx.get(f"{self.url}/api/v1/alerts", timeout=10).json()
        assert body["status"] == "success", body
        return body["data"]["alerts"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector: ``[{"metric": {...}, "value": [time, "text"]}, ...]``."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_for(
        self, promql: str, accept: Callable[[list[dict[str, Any]]], bool], timeout: float = 30
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``accept`` takes its result; fail with the last result otherwise."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if accept(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"{promql} never gave the expected result; last: {result}")
