"""Reading a running collector's ``costspan_collector_*`` health metrics, and waiting on a condition."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx2 as httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.collector import Collector

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def health(collector: Collector) -> Samples:
    """Every ``costspan_collector_*`` sample of the admin ``/metrics``, by name and labels."""
    text = httpx.get(f"http://127.0.0.1:{collector.admin}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("costspan_collector_")
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def wait_until(predicate: Callable[[], bool], timeout: float = 60) -> None:
    """Poll until ``predicate()`` holds; fail after ``timeout`` seconds (a bound, not a speed goal)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
