"""Pipeline workers: each owns a partition of the traces; together they store every span once."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costspan.collector.otlp import batch_from_request
from costspan.collector.wal import WriteAheadLog
from costspan.collector.worker import Partition, PartitionProcessor, WorkerSettings
from costspan.exporters.duckdb_views import connect

TRACES = 40


@pytest.fixture(scope="module")
def requests() -> list[ExportTraceServiceRequest]:
    """Requests of an agent and two chat calls per trace, a trace's spans spread over two requests."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("costspan.instrumentation")
    for i in range(TRACES):
        with tracer.start_as_current_span(
            "invoke_agent planner",
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
        ):
            for step, model in enumerate(("gpt-4o", "gpt-4o-mini")):
                attributes = {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": 1000 + i,
                    # (calls this short, in one trace, with the same usage, would be one call seen twice)
                    "gen_ai.usage.output_tokens": 100 * (step + 1),
                    "costspan.feature": f"feature-{i % 3}",
                }
                with tracer.start_as_current_span(f"chat {model}", attributes=attributes):
                    pass
    spans = exporter.get_finished_spans()
    half = len(spans) // 2 + 1  # the first request ends inside a trace
    return [encode_spans(spans[:half]), encode_spans(spans[half:])]


def logged(directory, requests) -> WriteAheadLog:
    wal = WriteAheadLog(directory / "wal")
    for request in requests:
        wal.commit(wal.append(request.SerializeToString()))
    return wal


def test_every_span_is_in_one_partition_and_a_trace_in_one(requests):
    every = Counter(sid for r in requests for sid in batch_from_request(r).span_id)
    for count in (1, 2, 3):
        owner: dict[str, int] = {}
        seen: Counter[str] = Counter()
        for index in range(count):
            for request in requests:
                batch = batch_from_request(request, Partition(index, count))
                seen.update(batch.span_id)
                for trace_id in batch.trace_id:
                    assert owner.setdefault(trace_id, index) == index  # a trace never splits
                    assert Partition(index, count).holds(bytes.fromhex(trace_id))
        assert seen == every
        if count > 1:
            assert len(set(owner.values())) == count  # 40 traces reach every partition


def test_partitions_store_what_one_worker_stores(tmp_path, requests):
    def run(directory, count, forwarding=False):
        wal = logged(directory, requests)
        reports = []
        for index in range(count):
            settings = WorkerSettings(str(directory), Partition(index, count), forwarding=forwarding)
            processor = PartitionProcessor(settings)
            position = 0
            while position < wal.committed_seq:
                reports.append(processor.process(position, wal.committed_seq))
                position = reports[-1].end_seq
        return reports

    single, split = run(tmp_path / "one", 1), run(tmp_path / "two", 2, forwarding=True)
    assert sum(r.spans for r in split) == sum(r.spans for r in single) == TRACES * 3
    assert {r.partition for r in split} == {0, 1} and all(r.end_seq == 2 for r in split)

    def stored(directory):
        con = connect(directory)
        return con.execute(
            "SELECT count(*), sum(cost_usd), count(DISTINCT trace_id) FROM llm_calls"
        ).fetchone(), con.execute("SELECT count(*) FROM genai_spans").fetchone()[0]

    (calls, cost, traces), agents = stored(tmp_path / "two")
    assert (calls, traces, agents) == (TRACES * 2, TRACES, TRACES)
    assert stored(tmp_path / "one") == ((calls, cost, traces), agents)
    assert cost == sum(sum(r.tally.cost.values(), Decimal(0)) for r in split)

    # the enriched requests for the forward exporters: each span once, in its own partition's request
    forwarded = Counter()
    for report in split:
        request = ExportTraceServiceRequest.FromString(report.forward)
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    assert Partition(report.partition, 2).holds(span.trace_id)
                    forwarded[span.span_id.hex()] += 1
    assert sorted(forwarded.values()) == [1] * TRACES * 3


def test_each_readers_position_is_kept_with_the_checkpoint(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_bytes=100)
    for i in range(30):
        wal.commit(wal.append(b"x" * 40 + str(i).encode()))
    wal.advance(12, [12, 20])
    wal.close()
    again = WriteAheadLog(tmp_path, segment_bytes=100)
    assert again.checkpoint == 12
    assert again.reader_positions(2) == [12, 20]
    # as many workers as before go on from their own positions; another number of them from the checkpoint
    assert again.reader_positions(3) == [12, 12, 12]
    assert [seq for seq, _ in again.replay()] == list(range(12, 30))
