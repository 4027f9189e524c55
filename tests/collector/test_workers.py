"""Pipeline workers: each owns a partition of the traces; together they store every span once."""

from __future__ import annotations

import time
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


def kv(key, value):
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def twins(pairs: int) -> ExportTraceServiceRequest:
    """A request of ``pairs`` Responses API calls, each traced by OpenLLMetry (whose span of such a call is
    never current) and by OpenInference as two root spans in two traces of their own."""
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

    dialects = {
        "opentelemetry.instrumentation.openai.v1": lambda i: {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 1000 + i,
            "gen_ai.usage.output_tokens": 100,
        },
        "openinference.instrumentation.openai": lambda i: {
            "openinference.span.kind": "LLM",
            "llm.system": "openai",
            "llm.model_name": "gpt-4o",
            "llm.token_count.prompt": 1000 + i,
            "llm.token_count.completion": 100,
        },
    }
    resource_spans = ResourceSpans()
    resource_spans.resource.attributes.append(kv("service.name", "checkout-api"))
    t0 = 1_760_000_000_000_000_000
    for d, (scope, attributes) in enumerate(dialects.items()):
        scope_spans = ScopeSpans()
        scope_spans.scope.name = scope
        for i in range(pairs):
            start = t0 + i * 10**9  # a second apart: no two calls overlap
            scope_spans.spans.append(
                ProtoSpan(
                    trace_id=(i * 2 + d + 1).to_bytes(16, "big"),
                    span_id=(i * 2 + d + 1).to_bytes(8, "big"),
                    name="openai.response" if d == 0 else "Response",
                    kind=ProtoSpan.SPAN_KIND_CLIENT,
                    start_time_unix_nano=start,  # twins alike in all but span id: a tie to settle
                    end_time_unix_nano=start + 500_000_000,
                    attributes=[kv(k, v) for k, v in attributes(i).items()],
                )
            )
        resource_spans.scope_spans.append(scope_spans)
    return ExportTraceServiceRequest(resource_spans=[resource_spans])


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_twins_in_traces_of_their_own_count_once_whichever_workers_own_them(tmp_path, workers):
    pairs = 30
    wal = logged(tmp_path, [twins(pairs)])
    for index in range(workers):
        processor = PartitionProcessor(WorkerSettings(str(tmp_path), Partition(index, workers)))
        report = processor.process(0, wal.committed_seq)
        assert report.end_seq == 1
    con = connect(tmp_path)
    counted = con.execute("SELECT count(*), count(DISTINCT input_tokens) FROM llm_calls").fetchone()
    assert counted == (pairs, pairs)  # one record of each call, the other stored as its duplicate
    assert con.execute("SELECT count(*) FROM llm_calls_all").fetchone()[0] == 2 * pairs


def test_the_pipeline_survives_a_failed_checkpoint_and_stores_everything(tmp_path, requests, monkeypatch):
    from costspan.collector.pipeline import Pipeline

    pipeline = Pipeline(tmp_path, workers=2)
    advance = pipeline.wal.advance
    failures = []

    def failing_once(seq, positions=()):
        # the checkpoint that completes the log fails once (disk full): no later batch would write it
        if seq == len(requests) and not failures:
            failures.append(seq)
            raise OSError("No space left on device")
        advance(seq, positions)

    monkeypatch.setattr(pipeline.wal, "advance", failing_once)
    for request in requests:
        pipeline.submit(request)
    pipeline.start()
    try:
        deadline = time.monotonic() + 60
        while pipeline.counts["spans_processed"] < TRACES * 3:
            assert time.monotonic() < deadline, "the pipeline stopped applying its workers' batches"
            time.sleep(0.05)
    finally:
        pipeline.stop()
    assert failures and pipeline.counts["processing_errors"] == 1
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == TRACES * 2
    assert WriteAheadLog(tmp_path / "wal").checkpoint == len(requests)


def nested_twin_requests() -> list[ExportTraceServiceRequest]:
    """One Anthropic call in two requests: costspan's record of it first, then the anthropic SDK's own span
    around it (which ends later), with the one-hour cache-write split that only it reports."""
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
    from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

    usage = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-5",
        "gen_ai.usage.input_tokens": 3000,
        "gen_ai.usage.output_tokens": 200,
        "gen_ai.usage.cache_creation.input_tokens": 2000,
    }
    t0 = 1_760_000_000_000_000_000
    requests = []
    for scope, span_id, parent, start, end, extra in (
        ("costspan.instrumentation", 2, 1, t0 + 10**6, t0 + 9 * 10**8, {}),
        ("com.anthropic.sdk.python", 1, 0, t0, t0 + 10**9,
         {"anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 1500}),
    ):  # fmt: skip
        span = ProtoSpan(
            trace_id=(7).to_bytes(16, "big"),
            span_id=span_id.to_bytes(8, "big"),
            parent_span_id=parent.to_bytes(8, "big") if parent else b"",
            name="chat claude-sonnet-4-5",
            kind=ProtoSpan.SPAN_KIND_CLIENT,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=[kv(k, v) for k, v in {**usage, **extra}.items()],
        )
        resource_spans = ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])
        resource_spans.scope_spans[0].scope.name = scope
        resource_spans.resource.attributes.append(kv("service.name", "support-bot"))
        requests.append(ExportTraceServiceRequest(resource_spans=[resource_spans]))
    return requests


@pytest.mark.parametrize("warm", [True, False])
def test_a_restarted_worker_still_knows_the_records_stored_before(tmp_path, warm):
    """The richer twin of a call arrives after a restart: the new worker's dedupe window is filled from the
    log before its position, so the stored record is superseded rather than counted beside it."""
    wal = logged(tmp_path, nested_twin_requests())
    settings = WorkerSettings(str(tmp_path), Partition(0, 1))
    assert PartitionProcessor(settings).process(0, 1).end_seq == 1  # then the worker stops
    restarted = PartitionProcessor(settings)
    if warm:
        assert restarted.warm_up(1) == 1
    restarted.process(1, wal.committed_seq)
    con = connect(tmp_path)
    calls = con.execute("SELECT span_id, cache_write_1h_tokens FROM llm_calls").fetchall()
    if warm:
        assert calls == [("0000000000000001", 1500)]
        assert con.execute("SELECT count(*) FROM llm_calls_all").fetchone()[0] == 2
    else:
        assert len(calls) == 2  # what a worker without the warm-up would count: the call twice
    # a span re-sent after the restart is recognised too
    if warm:
        wal.commit(wal.append(nested_twin_requests()[0].SerializeToString()))
        again = PartitionProcessor(settings)
        again.warm_up(2)
        again.process(2, wal.committed_seq)
        con = connect(tmp_path)
        assert con.execute("SELECT count(*) FROM llm_calls").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM llm_calls_all").fetchone()[0] == 3


def test_a_span_normalize_cannot_read_is_left_out_and_reported(tmp_path, requests):
    """A conversion defect loses that span only, and says so: the batch report counts it, for /metrics. The
    defect is made where normalize's own fallback leaves it (the record None, the error counted), around the
    real processor, compiled or not."""
    wal = logged(tmp_path, requests)
    processor = PartitionProcessor(WorkerSettings(str(tmp_path), Partition(0, 1)))
    normalize = next(p for p in processor.chain.processors if p.name == "normalize")
    real = normalize.function

    def fails_on_gpt_4o(batch, counts):
        done = real(batch, counts)
        calls = list(done.calls)
        for i, call in enumerate(calls):
            if call is not None and call.request_model == "gpt-4o":
                calls[i] = None
                counts["errors"] += 1
        return done.with_columns(calls=calls)

    normalize.function = fails_on_gpt_4o
    report = processor.process(0, wal.committed_seq)
    assert (report.spans, report.unreadable) == (TRACES * 3, TRACES)
    calls = connect(tmp_path).execute("SELECT count(*) FROM llm_calls").fetchone()[0]
    assert calls == TRACES  # the gpt-4o-mini calls
