"""A replay after a crash stores nothing twice, for a plain reader of the files: a worker's files past its
checkpoint are taken out before the replay writes them again, also when the number of workers changed."""

from __future__ import annotations

import time

from costspan.collector.pipeline import Pipeline
from costspan.collector.wal import WriteAheadLog
from costspan.collector.worker import Partition, PartitionProcessor, WorkerSettings
from costspan.exporters.layout import dataset_files
from tests.collector import test_workers
from tests.collector.test_workers import TRACES, logged
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
