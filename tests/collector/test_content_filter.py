"""Content comes out of a request before the write-ahead log: the same rule as the redact processor, found
in the bytes first, and the input hash still right."""

from __future__ import annotations

from collections import Counter

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from costspan.collector.content_filter import ContentFilter, may_carry_content, remove_content
from costspan.collector.otlp import batch_from_request, request_from_json
from costspan.collector.pipeline import Pipeline
from costspan.processors import ConfigError, build_chain
from costspan.processors.redact import CONTENT_EVENTS, CONTENT_KEYS, CONTENT_PREFIXES, input_hash, redact
from tests.support.otlp_requests import chat_request

SECRET = "the-prompt-text-4711"
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 100,
}


def request_with(
    attributes: dict[str, str | int], events: tuple[tuple[str, dict[str, str]], ...] = ()
) -> ExportTraceServiceRequest:
    span = Span(
        trace_id=bytes(range(1, 17)),
        span_id=bytes(range(1, 9)),
        name="chat gpt-4o",
        start_time_unix_nano=1_760_000_000_000_000_000,
        end_time_unix_nano=1_760_000_001_000_000_000,
        attributes=[KeyValue(key=k, value=_value(v)) for k, v in attributes.items()],
    )
    for name, attrs in events:
        event = span.events.add(name=name, time_unix_nano=1_760_000_000_500_000_000)
        event.attributes.extend(KeyValue(key=k, value=_value(v)) for k, v in attrs.items())
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])


def _value(v: str | int) -> AnyValue:
    return AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=v)


def content_names() -> list[str]:
    """Every content key, a key under every content prefix (one longer than 127 bytes too)."""
    keys = sorted(CONTENT_KEYS)
    keys += [prefix + "0.content" for prefix in sorted(CONTENT_PREFIXES)]
    keys.append(sorted(CONTENT_PREFIXES)[0] + "0." + "x" * 200)  # a two-byte length in the encoding
    return keys


@pytest.mark.parametrize("key", content_names())
def test_each_content_key_is_found_in_the_bytes_and_removed(key):
    request = request_with({**CHAT, key: SECRET})
    encoded = request.SerializeToString()
    assert may_carry_content(encoded)
    logged, logged_bytes = ContentFilter(remove=True).before_log(request, encoded)
    assert logged_bytes is None  # changed: the pipeline encodes it again
    after = logged.SerializeToString()
    assert SECRET.encode() not in after
    assert batch_from_request(logged).attributes[0] == CHAT  # everything else as it came


@pytest.mark.parametrize("name", sorted(CONTENT_EVENTS))
def test_each_content_event_is_found_and_emptied(name):
    # "content" is no content key: only the event's name says that its attributes are content
    request = request_with(CHAT, ((name, {"content": SECRET}), ("exception", {"exception.type": "E"})))
    encoded = request.SerializeToString()
    assert may_carry_content(encoded)
    logged, _ = ContentFilter(remove=True).before_log(request, encoded)
    assert SECRET.encode() not in logged.SerializeToString()
    events = batch_from_request(logged).events[0]
    assert events == ((name, {}), ("exception", {"exception.type": "E"}))  # the event itself stays


def test_the_log_keeps_what_the_redact_processor_would_have_kept():
    """On any span, the filter removes what the redact processor removes, so the chain's result is the
    same with and without it."""
    attrs = {
        **CHAT,
        "gen_ai.input.messages": SECRET,
        "gen_ai.prompt.0.content": SECRET,
        "llm.input_messages.0.message.content": SECRET,
        "input.value": SECRET,
        "ai.prompt.messages": SECRET,
        "gen_ai.prompt.name": "refunds",  # under a content prefix: removed by both
        "app.note": "kept",
    }
    events = (("gen_ai.choice", {"message": SECRET}), ("log", {"text": "kept"}))
    original = batch_from_request(request_with(attrs, events))
    filtered = request_with(attrs, events)
    assert remove_content(filtered)
    chain = build_chain()
    through_log = chain(batch_from_request(filtered))
    without = chain(original)
    assert through_log.attributes == without.attributes
    assert through_log.events == without.events
    assert through_log.calls[0].cost_usd == without.calls[0].cost_usd


def test_requests_without_content_pass_as_they_came():
    for request in (
        chat_request(50),
        request_with({**CHAT, "url.full": "https://api.anthropic.com/v1/messages"}),
    ):
        encoded = request.SerializeToString()
        assert not may_carry_content(encoded)
        logged, logged_bytes = ContentFilter(remove=True).before_log(request, encoded)
        assert logged is request and logged_bytes is encoded  # not walked, not encoded again


def test_a_json_request_is_walked():
    doc = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "chat",
                                "startTimeUnixNano": "1760000000000000000",
                                "endTimeUnixNano": "1760000001000000000",
                                "attributes": [
                                    {"key": "gen_ai.output.messages", "value": {"stringValue": SECRET}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    logged, encoded = ContentFilter(remove=True).before_log(request_from_json(doc), None)
    assert encoded is None
    assert SECRET.encode() not in logged.SerializeToString()


def test_the_input_hash_is_made_before_the_log_as_the_processor_makes_it(monkeypatch):
    monkeypatch.setenv("COSTSPAN_TEST_HASH_KEY", "k3y")
    processors = {"redact": {"input_hash_key_env": "COSTSPAN_TEST_HASH_KEY"}}
    content_filter = ContentFilter.for_chain(processors)
    assert content_filter.remove and content_filter.hash_key == b"k3y"
    # the client's own hash first, so that taking it out moves the attributes after it
    attrs = {"costspan.input.hash": "sent-by-the-client", **CHAT, "gen_ai.input.messages": SECRET}
    expected = input_hash({"gen_ai.input.messages": SECRET}, b"k3y")
    logged, _ = content_filter.before_log(request_with(attrs), request_with(attrs).SerializeToString())
    assert SECRET.encode() not in logged.SerializeToString()
    batch = batch_from_request(logged)
    assert batch.attributes[0] == {**CHAT, "costspan.input.hash": expected}
    done = build_chain(["normalize", ("redact", processors["redact"])])(batch)
    assert done.calls[0].input_hash == expected
    # without the filter the processor hashes the text itself: the same
    direct = build_chain(["normalize", ("redact", processors["redact"])])(
        batch_from_request(request_with({**CHAT, "gen_ai.input.messages": SECRET}))
    )
    assert direct.calls[0].input_hash == expected


def test_which_chains_keep_content(monkeypatch):
    assert ContentFilter.for_chain(None).remove  # the default chain redacts
    assert ContentFilter.for_chain({"redact": {"keep_content": False}}).remove
    assert not ContentFilter.for_chain({"redact": {"keep_content": True}}).remove
    assert not ContentFilter.for_chain(
        {"redact/kept": {"keep_content": True}}, ["normalize", "redact/kept"]
    ).remove
    # no redact processor: content reaches no store, so it is not logged either
    assert ContentFilter.for_chain({}, ["normalize", "price"]).remove
    with pytest.raises(ConfigError):
        ContentFilter.for_chain({"redact": {"keep_content": "yes"}})


def test_the_pipeline_logs_no_content(tmp_path):
    """Pipeline.submit, its log read back as the workers read it."""
    pipeline = Pipeline(tmp_path, workers=1)
    pipeline.submit(request_with({**CHAT, "gen_ai.input.messages": SECRET}), None)
    request = request_with({**CHAT, "gen_ai.output.messages": SECRET})
    pipeline.submit(request, request.SerializeToString())
    pipeline.wal.close()
    logged = b"".join(p.read_bytes() for p in (tmp_path / "wal").rglob("*") if p.is_file())
    assert logged and SECRET.encode() not in logged
    kept = Pipeline(tmp_path / "kept", {"redact": {"keep_content": True}}, workers=1)
    kept.submit(request_with({**CHAT, "gen_ai.input.messages": SECRET}), None)
    kept.wal.close()
    logged = b"".join(p.read_bytes() for p in (tmp_path / "kept" / "wal").rglob("*") if p.is_file())
    assert SECRET.encode() in logged  # configured to keep content: the log holds it (docs/storage.md)


def test_redact_processor_still_hashes_text_it_sees():
    batch = build_chain(["normalize"])(batch_from_request(request_with({**CHAT, "input.value": SECRET})))
    out = redact(batch, Counter(), b"k", keep_content=False)
    assert out.calls[0].input_hash == input_hash({"input.value": SECRET}, b"k")
    assert "input.value" not in out.attributes[0]
