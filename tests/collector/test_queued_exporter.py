"""The persistent queue in front of a secondary exporter: bounded on disk (oldest dropped and counted),
persistent across restarts, retries that give up when configured to, and nothing lost when stopped."""

from __future__ import annotations

from costspan.collector.queued_exporter import QueuedExporter, RetrySettings
from costspan.exporters.otlp_forward import ForwardSettings, OTLPForwarder, split_request
from tests.support.collector import free_port
from tests.support.health import wait_until
from tests.support.otlp_requests import chat_request
from tests.support.otlp_sink import OTLPSink

FAST = RetrySettings(initial_interval=0.02, max_interval=0.05, max_elapsed_time=0)


def queued(directory, endpoint: str, **kwargs) -> QueuedExporter:
    forwarder = OTLPForwarder(ForwardSettings(endpoint=endpoint, timeout_s=5))
    return QueuedExporter("otlp", forwarder, directory, **kwargs)


def test_past_its_byte_limit_the_queue_drops_its_oldest_and_counts_them(tmp_path):
    payloads = [chat_request(3, padding=300).SerializeToString() for _ in range(10)]
    size = len(payloads[0])
    exporter = queued(tmp_path / "q", f"http://127.0.0.1:{free_port()}", max_bytes=4 * size)
    for payload in payloads:  # the consumer is not started: nothing leaves the queue but by dropping
        exporter.enqueue(payload, 3)
    assert exporter.queue.pending_bytes <= 4 * size
    kept = exporter.queue.pending_records
    assert 1 <= kept < 10
    assert exporter.counts["dropped_spans:queue_full"] == 3 * (10 - kept)
    assert [p for _, p in exporter.pending()] == payloads[10 - kept :]  # the newest stay
    exporter.queue.close()
    # the queue is on disk: a restart finds the same records, and sends them once the target is there
    sink = OTLPSink().start()
    try:
        reopened = queued(tmp_path / "q", sink.endpoint, retry=FAST)
        assert reopened.queue.pending_records == kept
        reopened.start()
        wait_until(lambda: reopened.queue.pending_records == 0)
        reopened.stop()
        assert len(sink.spans) == 3 * kept and reopened.counts["sent_spans"] == 3 * kept
    finally:
        sink.stop()


def test_retries_give_up_after_max_elapsed_time(tmp_path):
    retry = RetrySettings(initial_interval=0.02, max_interval=0.05, max_elapsed_time=0.3)
    exporter = queued(tmp_path / "q", f"http://127.0.0.1:{free_port()}", retry=retry)
    exporter.enqueue(chat_request(4).SerializeToString(), 4)
    exporter.start()
    try:
        wait_until(lambda: exporter.counts["dropped_spans:retries_exhausted"] == 4)
        assert exporter.counts["errors:retryable"] >= 2
        wait_until(lambda: exporter.queue.pending_records == 0)
    finally:
        exporter.stop()


def test_stopping_while_the_target_is_down_keeps_the_record(tmp_path):
    exporter = queued(tmp_path / "q", f"http://127.0.0.1:{free_port()}", retry=FAST)
    payload = chat_request(2).SerializeToString()
    exporter.enqueue(payload, 2)
    exporter.start()
    wait_until(lambda: exporter.counts["errors:retryable"] >= 3)
    exporter.stop()
    assert exporter.counts["sent_spans"] == 0
    reopened = queued(tmp_path / "q", "http://127.0.0.1:1")
    assert list(reopened.pending()) == [(2, payload)]
    reopened.queue.close()


def test_a_record_over_the_request_limit_goes_as_several_requests(tmp_path):
    sink = OTLPSink().start()
    try:
        request = chat_request(40, padding=2000)
        payload = request.SerializeToString()
        settings = ForwardSettings(endpoint=sink.endpoint, max_request_bytes=len(payload) // 3)
        forwarder = OTLPForwarder(settings)
        forwarder.export(payload)
        forwarder.close()
        assert sink.requests >= 3
        sent = {span.span_id.hex() for span in request.resource_spans[0].scope_spans[0].spans}
        assert set(sink.spans) == sent
    finally:
        sink.stop()


def test_split_requests_keep_resource_and_scope_and_order():
    request = chat_request(10, padding=500)
    request.resource_spans[0].resource.attributes.add(key="service.name").value.string_value = "bot"
    request.resource_spans[0].scope_spans[0].scope.name = "opentelemetry.instrumentation.openai_v2"
    parts = split_request(request, 2000)
    assert len(parts) >= 3 and all(p.ByteSize() <= 2000 for p in parts)
    spans = [s for p in parts for rs in p.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert spans == list(request.resource_spans[0].scope_spans[0].spans)
    for part in parts:
        assert part.resource_spans[0].resource == request.resource_spans[0].resource
        assert part.resource_spans[0].scope_spans[0].scope.name == "opentelemetry.instrumentation.openai_v2"
