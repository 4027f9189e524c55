"""The client metrics' queue: measurements wait for the next collection, none is lost, it is bounded."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry import context, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from costspan.instrumentation import _metrics
from costspan.instrumentation._metrics import ClientMetrics

LABELS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m"}


@dataclass
class _Call:
    """What the metrics read of a call (costspan's Call has more)."""

    input_tokens: int | None
    output_tokens: int | None
    context: context.Context | None

    def metric_attributes(self, error_type: str | None) -> Mapping[str, Any]:
        return LABELS


def _points(reader: InMemoryMetricReader) -> dict[str, list]:
    data = reader.get_metrics_data()
    if data is None:
        return {}
    return {
        m.name: list(m.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }


@pytest.fixture
def meter():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider.get_meter("costspan.instrumentation"), reader
    provider.shutdown()


def test_calls_wait_for_the_collection_and_all_reach_it(meter):
    m, reader = meter
    metrics = ClientMetrics(m)
    metrics.add(_Call(10, 3, None), 0.5, None)
    metrics.add(_Call(20, None, None), 1.5, None)  # a call without output tokens: no output measurement
    assert len(metrics.queue) == 2
    points = _points(reader)
    assert len(metrics.queue) == 0
    # (costspan.instrumentation.failures too, once a failure was swallowed in this process)
    assert {name for name in points if name.startswith("gen_ai.")} == {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
    }
    (duration,) = points["gen_ai.client.operation.duration"]
    assert (duration.count, duration.sum) == (2, 2.0)
    tokens = points["gen_ai.client.token.usage"]
    by_type = {p.attributes["gen_ai.token.type"]: (p.count, p.sum) for p in tokens}
    assert by_type == {"input": (2, 30), "output": (1, 3)}
    metrics.add(_Call(1, 1, None), 0.25, None)  # the next collection has the next calls (cumulative sums)
    (duration,) = _points(reader)["gen_ai.client.operation.duration"]
    assert (duration.count, duration.sum) == (3, 2.25)


def test_a_full_queue_records_at_once(meter, monkeypatch):
    m, reader = meter
    monkeypatch.setattr(_metrics, "MAX_QUEUED", 3)
    metrics = ClientMetrics(m)
    for _ in range(5):
        metrics.add(_Call(1, 1, None), 1.0, None)
    assert len(metrics.queue) == 3  # bounded; the two past the bound were recorded by their calls
    metrics.flush()
    assert len(metrics.queue) == 0
    (duration,) = _points(reader)["gen_ai.client.operation.duration"]
    assert duration.count == 5


def test_calls_queued_while_collecting_are_not_lost(meter):
    m, reader = meter
    metrics = ClientMetrics(m)
    stop = threading.Event()
    added = 0

    def calls() -> None:
        nonlocal added
        while not stop.is_set() and added < 50_000:
            metrics.add(_Call(1, None, None), 0.1, None)
            added += 1

    worker = threading.Thread(target=calls)
    worker.start()
    for _ in range(20):
        _points(reader)
    stop.set()
    worker.join()
    (duration,) = _points(reader)["gen_ai.client.operation.duration"]
    assert duration.count == added


def test_exemplars_link_the_context_of_the_call(meter):
    m, reader = meter
    metrics = ClientMetrics(m)
    tracer = TracerProvider().get_tracer("app")
    with tracer.start_as_current_span("request handler") as span:
        ctx = context.get_current()
    metrics.add(_Call(10, 3, ctx), 0.5, None)  # recorded later, on no span
    assert trace.get_current_span() is trace.INVALID_SPAN
    (duration,) = _points(reader)["gen_ai.client.operation.duration"]
    assert [e.span_id for e in duration.exemplars] == [span.get_span_context().span_id]
