"""``helm lint`` and ``helm template`` through Helm's own Go SDK (helm-python-sdk, the test extra's), each in
a process of its own: the SDK loads the Go runtime into the process that imports it, and the test process
forks collectors and servers, so it is kept out of it.

``lint(chart, values)`` returns Helm's findings; ``template(chart, values, name, namespace)`` the rendered
files by path; a chart Helm refuses (bad values, a failed ``required``) raises HelmRefused with its message.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


class HelmRefused(Exception):
    """Helm's error: the values do not meet the chart's schema, a template failed ..."""


def _run(*args: str) -> Any:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=120)
    if done.returncode == 3:
        raise HelmRefused(done.stderr.strip())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def lint(chart: Path, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return _run("lint", str(chart), json.dumps(values or {}))


def template(
    chart: Path, values: dict[str, Any], name: str = "costspan", namespace: str = "default"
) -> dict[str, str]:
    return _run("template", str(chart), json.dumps(values), name, namespace)


def _main(command: str, chart: str, values: str, *release: str) -> int:
    import helm_python as helm

    try:
        if command == "lint":
            result = helm.lint(chart, values=json.loads(values))
        else:
            name, namespace = release
            with helm.Chart.load(chart) as loaded:
                result = loaded.render(json.loads(values), name=name, namespace=namespace)
    except helm.HelmError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:]))
