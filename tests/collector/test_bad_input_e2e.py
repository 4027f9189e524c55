"""Bad input to a real ``costspan serve`` over OTLP/HTTP and OTLP/gRPC: invalid UTF-8 inside protobuf
string fields, attribute values of megabytes, gzip bombs, floods of empty messages. Each gets the answer the
OTLP specification gives it, what was acknowledged is stored, and the collector keeps serving."""

from __future__ import annotations

import gzip
import json
import random
import signal

import grpc
import httpx2 as httpx
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.fuzz.cases import protobuf_floods
from tests.fuzz.driver import metric
from tests.support.collector import Collector

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
PROTOBUF = {"content-type": "application/x-protobuf"}
LIMIT = 20 * 1024 * 1024  # the collector's default request size limit, after decompression
MB2 = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    running = Collector(tmp_path_factory.mktemp("bad-input") / "data").start()
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def channel(collector):
    with grpc.insecure_channel(
        f"127.0.0.1:{collector.grpc}", options=[("grpc.max_send_message_length", 4 * LIMIT)]
    ) as opened:
        yield opened


def request(trace: int, name: str = "chat gpt-4o", **attributes: str) -> ExportTraceServiceRequest:
    """One priced call: gpt-4o, 1000 input and 100 output tokens, $0.0035 at the catalog's $2.50 and $10
    per million."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "bad-input"
    span = resource_spans.scope_spans.add().spans.add(
        name=name,
        trace_id=trace.to_bytes(16, "big"),
        span_id=b"\x01" * 8,
        start_time_unix_nano=1_763_000_000_000_000_000,
        end_time_unix_nano=1_763_000_001_000_000_000,
    )
    for key, value in {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        **attributes,
    }.items():
        span.attributes.add(key=key).value.string_value = value
    for key, count in (("gen_ai.usage.input_tokens", 1000), ("gen_ai.usage.output_tokens", 100)):
        span.attributes.add(key=key).value.int_value = count
    return message


def raw(channel: grpc.Channel, method: str, body: bytes, **kwargs) -> bytes:
    return channel.unary_unary(method)(body, timeout=60, **kwargs)


def post(collector: Collector, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"http://127.0.0.1:{collector.http}/v1/traces", content=body, headers=headers or PROTOBUF, timeout=60
    )


def bad_utf8(message: ExportTraceServiceRequest) -> bytes:
    """The message's bytes with its span name's UTF-8 broken (same length, so the framing stays valid)."""
    body = message.SerializeToString()
    assert body.count(b"chat gpt-4o") == 1
    return body.replace(b"chat gpt-4o", b"chat gpt\xff\xfe\xfd")


def test_invalid_utf8_in_a_string_field_is_bad_data(collector, channel):
    over_http = post(collector, bad_utf8(request(1)))
    assert over_http.status_code == 400  # not retried
    status = status_pb2.Status.FromString(over_http.content)
    assert "UTF-8" in status.message
    assert status.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
    as_json = post(collector, b'{"resourceSpans": [{"scopeSpans": 7}]}', {"content-type": "application/json"})
    assert as_json.status_code == 400
    assert json.loads(as_json.content)["details"][0]["@type"].endswith("google.rpc.BadRequest")

    with pytest.raises(grpc.RpcError) as over_grpc:
        raw(channel, TRACES, bad_utf8(request(2)))
    assert over_grpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # not retried
    assert "not an OTLP traces request" in over_grpc.value.details() and "UTF-8" in over_grpc.value.details()
    detail = rpc_status.from_call(over_grpc.value)
    assert detail.code == code_pb2.INVALID_ARGUMENT
    assert detail.details[0].Is(error_details_pb2.BadRequest.DESCRIPTOR)
    with pytest.raises(grpc.RpcError) as bad_logs:
        raw(channel, LOGS, b"\x0a\x05\x12\x03\x0a\x01\xff")  # resource_logs.scope_logs.scope.name = b"\xff"
    assert bad_logs.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # the same requests with their names intact are taken, over both transports
    assert post(collector, request(3).SerializeToString()).status_code == 200
    ExportTraceServiceResponse.FromString(raw(channel, TRACES, request(4).SerializeToString()))
    collector.wait_for(
        "SELECT trace_id, cost_usd FROM llm_calls WHERE trace_id IN "
        f"('{3:032x}', '{4:032x}', '{1:032x}', '{2:032x}') ORDER BY trace_id",
        [f"{3:032x},0.0035", f"{4:032x},0.0035"],
    )


@pytest.mark.parametrize("transport", ["http/protobuf", "http/json", "grpc"])
def test_megabyte_attribute_values_are_stored_whole_and_kept_off_metrics(collector, channel, transport):
    trace = {"http/protobuf": 11, "http/json": 12, "grpc": 13}[transport]
    message = request(trace, **{"costspan.feature": "f" * MB2, "gen_ai.input.messages": "p" * MB2})
    if transport == "grpc":
        ExportTraceServiceResponse.FromString(raw(channel, TRACES, message.SerializeToString()))
    elif transport == "http/json":
        span = {
            "traceId": f"{trace:032x}",
            "spanId": "01" * 8,
            "name": "chat gpt-4o",
            "startTimeUnixNano": "1763000000000000000",
            "endTimeUnixNano": "1763000001000000000",
            "attributes": [
                {"key": key, "value": {"stringValue": value}}
                for key, value in (
                    ("gen_ai.operation.name", "chat"),
                    ("gen_ai.provider.name", "openai"),
                    ("gen_ai.request.model", "gpt-4o"),
                    ("costspan.feature", "f" * MB2),
                    ("gen_ai.input.messages", "p" * MB2),
                )
            ]
            + [
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "100"}},
            ],
        }
        body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
        answer = post(collector, json.dumps(body).encode(), {"content-type": "application/json"})
        assert answer.status_code == 200, answer.text
    else:
        answer = post(collector, message.SerializeToString())
        assert answer.status_code == 200
        assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")
    # stored whole: acknowledged data is never cut
    collector.wait_for(
        f"SELECT length(feature), cost_usd FROM llm_calls WHERE trace_id = '{trace:032x}'", [f"{MB2},0.0035"]
    )
    # counted in the metrics, under the overflow value rather than a 2 MB label
    metrics = httpx.get(f"http://127.0.0.1:{collector.admin}/metrics", timeout=10).text
    assert len(metrics) < 256 * 1024
    assert 'feature="other"' in metrics


def test_gzip_bombs_are_refused_as_too_large(collector, channel):
    zeros = gzip.compress(b"\0" * (3 * LIMIT))  # 60 MiB of zeros in about 60 KiB
    assert len(zeros) < LIMIT // 100
    bomb = post(collector, zeros, {**PROTOBUF, "content-encoding": "gzip"})
    assert bomb.status_code == 413  # not retried
    assert "once decompressed" in status_pb2.Status.FromString(bomb.content).message

    oversized = request(21, name="x" * (LIMIT + 1024)).SerializeToString()
    with pytest.raises(grpc.RpcError) as grpc_bomb:
        raw(channel, TRACES, oversized, compression=grpc.Compression.Gzip)
    assert grpc_bomb.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # without RetryInfo, which would make RESOURCE_EXHAUSTED retryable
    assert not any(key == "google.rpc.retryinfo-bin" for key, _ in grpc_bomb.value.trailing_metadata() or ())

    # a small gzip request is still fine afterwards, over both transports
    assert (
        post(
            collector,
            gzip.compress(request(22).SerializeToString()),
            {
                **PROTOBUF,
                "content-encoding": "gzip",
            },
        ).status_code
        == 200
    )
    raw(channel, TRACES, request(23).SerializeToString(), compression=grpc.Compression.Gzip)
    collector.wait_for(
        "SELECT trace_id FROM llm_calls WHERE trace_id IN "
        f"('{21:032x}', '{22:032x}', '{23:032x}') ORDER BY trace_id",
        [f"{22:032x}", f"{23:032x}"],
    )
    assert collector.proc.poll() is None


def test_truncated_and_random_bytes_over_grpc_are_bad_data_or_harmless(collector, channel):
    whole = request(31).SerializeToString()
    with pytest.raises(grpc.RpcError) as truncated:
        raw(channel, TRACES, whole[: len(whole) // 2])
    assert truncated.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Random bytes either fail to decode (INVALID_ARGUMENT) or happen to be a valid message of unknown
    # fields (OK, nothing stored); never an internal error, a retryable code or a crash.
    noise = random.Random(20)
    answers = []
    for _ in range(50):
        body = noise.randbytes(noise.randrange(1, 2000))
        try:
            raw(channel, TRACES, body)
            answers.append(grpc.StatusCode.OK)
        except grpc.RpcError as refused:
            answers.append(refused.code())
    assert set(answers) <= {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}
    assert grpc.StatusCode.INVALID_ARGUMENT in answers
    raw(channel, TRACES, request(32).SerializeToString())
    collector.wait_for(f"SELECT count(*) FROM llm_calls WHERE trace_id = '{32:032x}'", ["1"])
    assert collector.proc.poll() is None


@pytest.mark.parametrize("kind", list(protobuf_floods()))
def test_a_request_of_empty_messages_is_refused_as_too_large_before_the_log(collector, channel, kind):
    """2 MiB of empty resource spans, spans, attributes, events or links (180 to 350 MiB decoded) is refused
    over both transports, not retried, counted, and never logged for the workers to decode again."""
    flood = protobuf_floods()[kind]
    received = metric(collector.admin, "costspan_collector_spans_received_total")
    too_large = metric(collector.admin, "costspan_collector_requests_refused_total", 'reason="too_large"')

    answer = post(collector, flood)
    assert answer.status_code == 413
    assert "mostly empty messages" in status_pb2.Status.FromString(answer.content).message
    with pytest.raises(grpc.RpcError) as refused:
        raw(channel, TRACES, flood)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "mostly empty messages" in refused.value.details()
    assert not any(key == "google.rpc.retryinfo-bin" for key, _ in refused.value.trailing_metadata() or ())

    assert metric(collector.admin, "costspan_collector_requests_refused_total", 'reason="too_large"') == (
        too_large + 2
    )
    assert metric(collector.admin, "costspan_collector_spans_received_total") == received
    assert collector.proc.poll() is None


def test_real_requests_of_many_spans_and_attributes_are_taken(collector, channel):
    """What real exporters send stays well within the bound: a batch of 2,000 calls, and a call with 1,000
    small attributes (eight times the SDK's default limit)."""
    batch = ExportTraceServiceRequest()
    for trace in range(41, 2041):
        batch.resource_spans.extend(request(trace).resource_spans)
    assert post(collector, batch.SerializeToString()).status_code == 200
    wide = request(2041)
    for k in range(1000):
        wide.resource_spans[0].scope_spans[0].spans[0].attributes.add(key=f"app.k{k}").value.int_value = k
    raw(channel, TRACES, wide.SerializeToString())
    collector.wait_for(
        f"SELECT count(*) FROM llm_calls WHERE trace_id BETWEEN '{41:032x}' AND '{2041:032x}'", ["2001"]
    )
