"""Shared fixtures: a tracer and meter provider with in-memory exporters, and the instrumentor switched on
for one test at a time, pointed at the local provider server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costspan.instrumentation import CostspanInstrumentor
from tests.support.provider_server import ProviderServer


class ProviderEndpoints(Protocol):
    """A provider stand-in (``ProviderServer``, ``H2ProviderServer``): both formats on one port."""

    @property
    def base_url(self) -> str: ...

    @property
    def openai_base_url(self) -> str: ...


def endpoints_of(server: ProviderEndpoints) -> dict[str, str]:
    """The provider server speaks both formats on one port: its base URLs, as an application configures
    them (COSTSPAN_LLM_ENDPOINTS)."""
    return {server.openai_base_url: "openai", f"{server.base_url}/v1/messages": "anthropic"}


@dataclass
class Telemetry:
    tracer_provider: TracerProvider
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def calls(self) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.instrumentation_scope.name == "costspan.instrumentation"]


@contextmanager
def instrumenting(telemetry: Telemetry, server: ProviderEndpoints) -> Iterator[None]:
    """costspan's instrumentor on ``telemetry``'s providers, for ``server``'s endpoints, for the block."""
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[telemetry.metrics]),
        endpoints=endpoints_of(server),
    )
    try:
        yield
    finally:
        instrumentor.uninstrument()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    yield Telemetry(tracer_provider, exporter, reader)
    tracer_provider.shutdown()


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as running:
        yield running


@pytest.fixture
def instrumented(telemetry: Telemetry, server: ProviderServer) -> Iterator[Telemetry]:
    with instrumenting(telemetry, server):
        yield telemetry
