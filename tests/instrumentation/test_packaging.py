"""The instrumentor as opentelemetry-instrument finds it: the entry point, the instruments-any extra, and an
import that pulls in nothing of the collector."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution, entry_points

from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

from costspan.instrumentation import CostspanInstrumentor


def test_registered_under_the_opentelemetry_instrumentor_entry_point():
    (entry,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "costspan"]
    assert entry.load() is CostspanInstrumentor
    # what opentelemetry-instrument checks before it loads an instrumentor: either HTTP client, or botocore,
    # will do
    assert get_dist_dependency_conflicts(entry.dist) is None
    extras = [r for r in distribution("costspan").requires or [] if "instruments-any" in r]
    assert sorted(r.split(">")[0] for r in extras) == ["botocore", "httpx", "httpx2"]
    assert CostspanInstrumentor()._check_dependency_conflicts() is None


def test_importing_the_instrumentation_stays_light():
    code = (
        "import sys, costspan.instrumentation;"
        "heavy = [m for m in sys.modules"
        " if m.split('.')[0] in ('duckdb', 'pyarrow', 'fastapi', 'uvicorn', 'grpc')"
        " or m.startswith(('costspan.collector', 'costspan.pricing', 'costspan.processors'))];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
