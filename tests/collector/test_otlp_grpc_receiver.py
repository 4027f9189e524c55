"""The OTLP/gRPC receiver with the OpenTelemetry SDK's real gRPC exporter."""

from __future__ import annotations

import asyncio
import threading

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costspan.collector.otlp import batch_from_request
from costspan.collector.receivers._sink import Backpressure, valid_spans
from costspan.collector.receivers.otlp_grpc import GrpcSettings, create_server


class Receiver:
    """The gRPC receiver on its own event loop thread; batches land in ``self.batches``."""

    def __init__(self, **settings) -> None:
        self.batches = []
        self.refuse = 0  # how many exports to refuse with backpressure first
        self.settings = GrpcSettings(**settings)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sink(self, batch, encoded):
        # the bytes the request came as, handed on to be logged as they are
        assert type(batch).FromString(encoded) == batch
        if self.refuse:
            self.refuse -= 1
            raise Backpressure(1.0)
        self.batches.append(valid_spans(batch_from_request(batch))[0])

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server, self.port = create_server(self.sink, "127.0.0.1:0", self.settings)
            await self.server.start()
            self.ready.set()
            await self.server.wait_for_termination()

        self.loop.run_until_complete(main())

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop)
        self.thread.join(10)


def spans(count=2):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("costspan.instrumentation")
    for i in range(count):
        with tracer.start_as_current_span(f"chat {i}", attributes={"gen_ai.request.model": "gpt-4o"}):
            pass
    return exporter.get_finished_spans()


def test_sdk_grpc_exporter_delivers_with_gzip():
    with Receiver() as receiver:
        exporter = OTLPSpanExporter(
            endpoint=f"127.0.0.1:{receiver.port}", insecure=True, compression=grpc.Compression.Gzip
        )
        sent = spans(3)
        assert exporter.export(sent).name == "SUCCESS"
        (batch,) = receiver.batches
        assert sorted(batch.span_id) == sorted(format(s.context.span_id, "016x") for s in sent)
        assert batch.resource[0]["service.name"] == "shop"


def test_backpressure_makes_the_exporter_retry_and_nothing_is_lost():
    with Receiver() as receiver:
        receiver.refuse = 1
        exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{receiver.port}", insecure=True, timeout=20)
        assert exporter.export(spans(2)).name == "SUCCESS"  # after one refusal, it retried
        assert len(receiver.batches) == 1 and len(receiver.batches[0]) == 2
        assert receiver.settings.counts["refused_unavailable"] == 1


def test_status_codes():
    with Receiver(max_message_bytes=1024, bearer_tokens=("tok",)) as receiver:
        channel = grpc.insecure_channel(f"127.0.0.1:{receiver.port}")
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as denied:
            stub.Export(trace_service_pb2.ExportTraceServiceRequest())
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        auth = (("authorization", "Bearer tok"),)
        assert stub.Export(trace_service_pb2.ExportTraceServiceRequest(), metadata=auth).ByteSize() == 0
        big = trace_service_pb2.ExportTraceServiceRequest()
        big.resource_spans.add().scope_spans.add().spans.add(
            name="x" * 4096, trace_id=b"\1" * 16, span_id=b"\2" * 8
        )
        with pytest.raises(grpc.RpcError) as too_big:
            stub.Export(big, metadata=auth)
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        partial = trace_service_pb2.ExportTraceServiceRequest()
        scope = partial.resource_spans.add().scope_spans.add()
        scope.spans.add(name="ok", trace_id=b"\1" * 16, span_id=b"\2" * 8)
        scope.spans.add(name="bad", trace_id=b"\1" * 3, span_id=b"\2" * 8)
        answer = stub.Export(partial, metadata=auth)
        assert answer.partial_success.rejected_spans == 1
        assert [b.name for b in receiver.batches] == [["ok"]]
        channel.close()
