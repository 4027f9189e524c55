"""A replay after a crash stores nothing twice, for a plain reader of the files: a worker's files past its
checkpoint are taken out before the replay writes them again, also when the number of workers changed."""

from __future__ import annotations

import shutil
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costspan.collector.pipeline import Pipeline
from costspan.collector.wal import WriteAheadLog
from costspan.collector.worker import Partition, PartitionProcessor, WorkerSettings
from costspan.exporters.duckdb_views import connect
from costspan.exporters.layout import dataset_files
from costspan.processors._base import Processor, register
from costspan.semconv import GenAICall
from tests.collector import test_workers
from tests.collector.test_workers import TRACES, logged
from tests.support.otlp_requests import chat_request
from tests.support.readers import assert_plain_readers_agree

requests = test_workers.requests  # the fixture: requests of agents with two calls each, a trace split in two


def clean_run(directory, requests):
    wal = logged(directory, requests)
    processor = PartitionProcessor(WorkerSettings(str(directory), Partition(0, 1)))
    processor.process(0, wal.committed_seq)
    return assert_plain_readers_agree(directory)


def run_pipeline(directory, workers, spans):
    pipeline = Pipeline(directory, workers=workers)
    pipeline.start()
    try:
        deadline = time.monotonic() + 60
        while (
            pipeline.wal.checkpoint < pipeline.wal.committed_seq or pipeline.counts["spans_processed"] < spans
        ):
            assert time.monotonic() < deadline, "the pipeline did not catch up with its log"
            time.sleep(0.05)
    finally:
        pipeline.stop()
    return pipeline


def test_a_replay_after_a_crash_stores_nothing_twice(tmp_path, requests):
    expected = clean_run(tmp_path / "clean", requests)
    assert expected[0] == TRACES * 2
    data = tmp_path / "data"
    wal = logged(data, requests)
    processor = PartitionProcessor(WorkerSettings(str(data), Partition(0, 1)))
    processor.process(0, 1)
    processor.process(1, 2)
    wal.advance(1, [1])  # the crash: the second batch was stored, its report never checkpointed
    wal.close()
    stored = {p.name for p in dataset_files(data, "llm_calls")}
    assert assert_plain_readers_agree(data) == expected
    # the collector starts again: the worker processes record 1 again, after taking out what it stored
    pipeline = run_pipeline(data, 1, 0)
    assert pipeline.counts["spans_processed"] > 0
    assert assert_plain_readers_agree(data) == expected
    after = {p.name for p in dataset_files(data, "llm_calls")}
    assert {n for n in stored if "-s1-" in n} and not after & {n for n in stored if "-s1-" in n}
    assert WriteAheadLog(data / "wal").checkpoint == 2


def test_a_log_made_anew_does_not_take_the_stored_files_for_its_own(tmp_path, requests):
    expected = clean_run(tmp_path / "clean", requests)
    data = tmp_path / "data"
    wal = logged(data, requests)
    PartitionProcessor(WorkerSettings(str(data), Partition(0, 1))).process(0, 2)
    wal.advance(2, [2])
    wal.close()
    shutil.rmtree(data / "wal")  # an operator clears the log; the stored files name its records 0 and 1
    run_pipeline(data, 1, 0)
    assert assert_plain_readers_agree(data) == expected
    assert WriteAheadLog(data / "wal").checkpoint == 2  # the new log numbers its records from 2


def test_a_change_in_the_number_of_workers_brings_the_old_partitions_to_one_position(tmp_path, requests):
    expected = clean_run(tmp_path / "clean", requests)
    data = tmp_path / "data"
    wal = logged(data, requests)
    # three workers ran; the crash left them at 2, 1 and 0, each with a batch stored past its position
    for index, batches in enumerate(([(0, 1), (1, 2)], [(0, 1), (1, 2)], [(0, 1)])):
        processor = PartitionProcessor(WorkerSettings(str(data), Partition(index, 3)))
        for start, end in batches:
            processor.process(start, end)
    wal.advance(0, [2, 1, 0])
    wal.close()
    # two workers now: the old partitions 1 and 2 are processed up to record 2 first, then the two go on
    run_pipeline(data, 2, 0)
    assert assert_plain_readers_agree(data) == expected
    again = WriteAheadLog(data / "wal")
    assert again.checkpoint == 2 and again.reader_positions(2) == [2, 2]


@register("test_richer")
def _richer_later(config, path):
    """What dedupe hands storage when a richer record of a stored call arrives in a later batch: the stored
    record, now a duplicate of the richer one, in the batch's ``superseded`` (here: a record with 300 output
    tokens is a richer record of the first call of its trace)."""
    first: dict[str, GenAICall] = {}

    def mark(batch, counts):
        superseded = []
        for call in batch.calls:
            if call is None:
                continue
            if call.output_tokens == 300 and call.trace_id in first:
                stored = first.pop(call.trace_id)
                stored.duplicate_of = call.span_id
                superseded.append(stored)
            else:
                first.setdefault(call.trace_id, call)
        return batch.with_columns(superseded=superseded)

    return Processor("test_richer", mark)


def richer_of_first_call(request: ExportTraceServiceRequest) -> ExportTraceServiceRequest:
    richer = ExportTraceServiceRequest()
    richer.CopyFrom(request)
    spans = richer.resource_spans[0].scope_spans[0].spans
    del spans[1:]
    span = spans[0]
    span.span_id = (2**63 + 1).to_bytes(8, "big")
    span.start_time_unix_nano += 10 * 10**9  # later: not the same request by its timing
    span.end_time_unix_nano += 10 * 10**9
    for attribute in span.attributes:
        if attribute.key == "gen_ai.usage.output_tokens":
            attribute.value.int_value = 300
    return richer


def test_a_worker_moves_a_superseded_call_and_a_crash_puts_it_back(tmp_path):
    calls = chat_request(3)
    wal = logged(tmp_path, [calls, richer_of_first_call(calls)])
    settings = WorkerSettings(
        str(tmp_path), Partition(0, 1), order=["normalize", "dedupe", "price", "test_richer"]
    )
    processor = PartitionProcessor(settings)
    processor.process(0, 1)
    before = assert_plain_readers_agree(tmp_path)
    stored = [p.name for p in dataset_files(tmp_path, "llm_calls")]
    processor.process(1, 2)
    # the richer record took the first call's place in its file: three calls, one of them richer
    assert [p.name for p in dataset_files(tmp_path, "llm_calls")] == stored
    rows, cost = assert_plain_readers_agree(tmp_path)
    assert rows == 3 and cost > before[1]
    con = connect(tmp_path)
    assert con.execute("SELECT count(*) FROM llm_calls_all WHERE duplicate_of IS NOT NULL").fetchone() == (1,)
    # a crash before the second batch was checkpointed: its files out, the first call's file as it was
    PartitionProcessor(settings).discard_unreported(1)
    assert assert_plain_readers_agree(tmp_path) == before
    assert wal.committed_seq == 2
