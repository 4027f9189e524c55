"""A pipeline's stop: nothing is acknowledged that the stop does not store or leave in the log, and a stop
that runs out of time ends its workers at a batch's end instead of killing them."""

from __future__ import annotations

import threading
import time

import pytest

from costspan.collector.pipeline import Pipeline
from costspan.collector.receivers._sink import Backpressure
from costspan.collector.wal import WALError, WriteAheadLog
from costspan.exporters.duckdb_views import connect
from tests.support.otlp_requests import chat_request


def stored(directory) -> tuple[int, int]:
    """Rows in llm_calls, and distinct (trace id, span id) among them."""
    con = connect(directory)
    return con.execute("SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM llm_calls").fetchone()


def test_a_request_being_logged_when_the_stop_begins_is_stored_before_the_log_closes(tmp_path):
    pipeline = Pipeline(tmp_path, workers=1)
    pipeline.start()
    pipeline.submit(chat_request(10))
    deadline = time.monotonic() + 60
    while pipeline.wal.checkpoint < 1:  # the worker is up and has stored it
        assert time.monotonic() < deadline, "the first request was not stored"
        time.sleep(0.01)
    # The window: a receiver's thread has appended its record and waits for the group commit's fsync when
    # the stop begins. Holding the log's fsync lock keeps it there. Before, the stop read the end of the log
    # without it, the workers stopped short of it, the log was closed, and then the request was answered.
    pipeline.wal._sync_lock.acquire()
    late = threading.Thread(target=pipeline.submit, args=(chat_request(10),))
    late.start()
    deadline = time.monotonic() + 10
    while pipeline.wal.next_seq < 2:
        assert time.monotonic() < deadline, "the second request was not appended"
        time.sleep(0.01)
    drained: list[bool] = []
    stopper = threading.Thread(target=lambda: drained.append(pipeline.stop(30)))
    stopper.start()
    time.sleep(1.0)
    assert stopper.is_alive(), "the stop went on while a request was being logged"
    refused: list[BaseException] = []

    def submit_while_stopping() -> None:
        try:
            pipeline.submit(chat_request(1))
        except BaseException as exc:  # what the receiver would answer is what matters
            refused.append(exc)

    newcomer = threading.Thread(target=submit_while_stopping, daemon=True)
    newcomer.start()
    newcomer.join(5)
    assert not newcomer.is_alive() and len(refused) == 1 and isinstance(refused[0], Backpressure)
    pipeline.wal._sync_lock.release()
    late.join(10)
    stopper.join(40)
    assert not stopper.is_alive() and drained == [True]
    assert stored(tmp_path) == (20, 20)  # the late request too, at the stop, not only after a restart
    assert WriteAheadLog(tmp_path / "wal").checkpoint == 2
    with pytest.raises(WALError):  # an append after the close fails instead of opening a segment
        pipeline.wal.append(chat_request(1).SerializeToString())


def test_a_stop_out_of_time_ends_the_workers_after_their_batch_and_the_next_start_stores_the_rest(tmp_path):
    requests, spans = 300, 100
    pipeline = Pipeline(tmp_path, workers=2)
    for _ in range(requests):  # more than each worker's batch in hand, twice over
        pipeline.submit(chat_request(spans))
    pipeline.start()
    deadline = time.monotonic() + 60
    while pipeline.counts["spans_processed"] == 0:
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.01)
    assert pipeline.stop(0.0) is False  # no time left: each worker stores the batch in hand, and stops
    exits = [p.exitcode for p in pipeline._processes if p is not None]
    assert exits == [0, 0], "a worker was killed instead of stopping after its batch"
    checkpoint = WriteAheadLog(tmp_path / "wal").checkpoint
    rows, distinct = stored(tmp_path)
    assert rows == distinct and 0 < rows < requests * spans
    # what the stop left is in the log: the next start stores it, nothing twice
    again = Pipeline(tmp_path, workers=2)
    assert again.wal.checkpoint == checkpoint < requests
    again.start()
    try:
        deadline = time.monotonic() + 120
        while again.wal.checkpoint < requests:
            assert time.monotonic() < deadline, "the next start did not process the rest of the log"
            time.sleep(0.1)
    finally:
        assert again.stop(30) is True
    assert stored(tmp_path) == (requests * spans, requests * spans)
