"""boto3's Amazon Bedrock Runtime calls: real boto3 clients against the local Bedrock stand-in
(tests/support/bedrock_server.py), all four operations, streams read whole, cut short and failing, the
application's objects unchanged, attribution, and the spans as the collector reads and prices them."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.eventstream import EventStream
from botocore.exceptions import ClientError, EventStreamError
from botocore.response import StreamingBody
from opentelemetry import baggage, context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import SpanKind, StatusCode

from costspan.instrumentation import CostspanInstrumentor, attribute
from costspan.pricing import PRICED, UNKNOWN_MODEL, load_engine
from costspan.processors import SpanBatch, build_chain
from costspan.processors._batch import Span
from costspan.semconv import to_call
from tests.instrumentation.conftest import Telemetry
from tests.support.bedrock_server import OUTPUT_TOKENS, REPLY_TEXT, BedrockServer

SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
POLICY = "The refund policy of the shop, kept in the cache for the whole day. " * 100  # 1400 words
QUESTION = "Was invoice INV-0042 paid, and when?"  # 6 words
ANTHROPIC_VERSION = "bedrock-2023-05-31"


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no configuration of this machine's: requests are signed and never checked."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bedrock() -> Iterator[BedrockServer]:
    with BedrockServer() as server:
        yield server


@pytest.fixture
def traced(telemetry: Telemetry) -> Iterator[Telemetry]:
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=MeterProvider(metric_readers=[telemetry.metrics]),
    )
    try:
        yield telemetry
    finally:
        instrumentor.uninstrument()


def client(server: BedrockServer, region: str = "us-east-1") -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name=region,
        endpoint_url=server.endpoint_url,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def cached_messages(ttl: str | None = None) -> list[dict[str, Any]]:
    point: dict[str, Any] = {"type": "default"}
    if ttl:
        point["ttl"] = ttl
    return [{"role": "user", "content": [{"text": POLICY}, {"cachePoint": point}, {"text": QUESTION}]}]


def anthropic_body(cache_ttl: str | None = None, question: str = QUESTION) -> str:
    policy: dict[str, Any] = {"type": "text", "text": POLICY}
    if cache_ttl:
        policy["cache_control"] = {"type": "ephemeral", "ttl": cache_ttl}
    content = [policy, {"type": "text", "text": question}] if cache_ttl else question
    return json.dumps(
        {
            "anthropic_version": ANTHROPIC_VERSION,
            "max_tokens": 256,
            "messages": [{"role": "user", "content": content}],
        }
    )


def attrs(span: Any) -> dict[str, Any]:
    return dict(span.attributes)


def canonical(usage: dict[str, int]) -> tuple[int, int, int, int]:
    """(input, output, cache read, cache write) in the GenAI arithmetic, from the stand-in's counts."""
    total_input = usage["input"] + usage["cache_read"] + usage["cache_write"]
    return total_input, usage["output"], usage["cache_read"], usage["cache_write"]


def span_usage(span: Any) -> tuple[Any, ...]:
    a = attrs(span)
    return (
        a.get("gen_ai.usage.input_tokens"),
        a.get("gen_ai.usage.output_tokens"),
        a.get("gen_ai.usage.cache_read.input_tokens", 0),
        a.get("gen_ai.usage.cache_creation.input_tokens", 0),
    )


# -- what the application reads ------------------------------------------------------------------------------


def application(server: BedrockServer) -> list[Any]:
    """Every operation, as an application reads it: the parsed results without their per-request metadata,
    each stream's events and each body's bytes."""
    bedrock = client(server)
    seen: list[Any] = []
    result = bedrock.converse(modelId=SONNET, messages=cached_messages())
    result.pop("ResponseMetadata")
    seen.append(result)
    result = bedrock.converse_stream(modelId=SONNET, messages=cached_messages())
    stream = result.pop("stream")
    result.pop("ResponseMetadata")
    seen.append((result, list(stream)))
    result = bedrock.invoke_model(modelId=SONNET, body=anthropic_body("5m"))
    headers = result["ResponseMetadata"]["HTTPHeaders"]
    seen.append(({k: v for k, v in headers.items() if k.startswith("x-amzn-bedrock")}, result["body"].read()))
    result = bedrock.invoke_model(
        modelId="meta.llama3-8b-instruct-v1:0", body=json.dumps({"prompt": QUESTION})
    )
    seen.append(b"".join(result["body"].iter_chunks(7)))
    result = bedrock.invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body())
    seen.append([event["chunk"]["bytes"] for event in result["body"]])
    return seen


def test_the_application_reads_what_it_reads_without_costspan(telemetry):
    with BedrockServer() as plain_server:
        plain = application(plain_server)
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        with BedrockServer() as server:
            seen = application(server)
            requests = server.requests
    finally:
        instrumentor.uninstrument()
    assert seen == plain
    assert seen[0]["output"]["message"]["content"][0]["text"] == REPLY_TEXT
    spans = sorted(telemetry.calls(), key=lambda s: s.start_time)
    assert len(spans) == len(requests) == 5
    for span, request in zip(spans, requests, strict=True):
        assert span_usage(span) == canonical(request.usage), request.operation


def test_streams_and_bodies_keep_their_type_and_identity(traced, bedrock):
    bedrock_client = client(bedrock)
    stream = bedrock_client.converse_stream(modelId=SONNET, messages=cached_messages())["stream"]
    body = bedrock_client.invoke_model(modelId=SONNET, body=anthropic_body())["body"]
    assert isinstance(stream, EventStream)
    assert isinstance(body, StreamingBody)
    assert json.loads(body.read())["content"][0]["text"] == REPLY_TEXT
    assert list(stream)[-1]["metadata"]["usage"]["outputTokens"] == OUTPUT_TOKENS


# -- the four operations -------------------------------------------------------------------------------------


def test_converse_cache_write_then_read(traced, bedrock):
    bedrock_client = client(bedrock)
    first = bedrock_client.converse(modelId=SONNET, messages=cached_messages("1h"))
    second = bedrock_client.converse(modelId=SONNET, messages=cached_messages("1h"))
    assert first["usage"]["cacheWriteInputTokens"] == 1400
    assert second["usage"]["cacheReadInputTokens"] == 1400
    written, read = sorted(traced.calls(), key=lambda s: s.start_time)
    a = attrs(written)
    assert written.name == f"chat {SONNET}"
    assert written.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.request.model"] == SONNET
    assert a["gen_ai.request.stream"] is False
    assert (a["server.address"], a["server.port"], a["cloud.region"]) == (
        "127.0.0.1",
        bedrock.port,
        "us-east-1",
    )
    # Converse's inputTokens excludes the cache; the span's input includes it
    assert span_usage(written) == (6 + 1400, OUTPUT_TOKENS, 0, 1400)
    assert a["anthropic.usage.cache_creation.ephemeral_1h_input_tokens"] == 1400
    assert span_usage(read) == (6 + 1400, OUTPUT_TOKENS, 1400, 0)
    assert written.status.status_code is StatusCode.UNSET


def test_converse_stream_read_to_its_end(traced, bedrock):
    result = client(bedrock).converse_stream(modelId=SONNET, messages=cached_messages("5m"))
    assert traced.calls() == []  # the call lasts as long as its stream
    events = list(result["stream"])
    assert "metadata" in events[-1]
    (span,) = traced.calls()
    (request,) = bedrock.requests
    a = attrs(span)
    assert a["gen_ai.request.stream"] is True
    assert span_usage(span) == canonical(request.usage) == (1406, OUTPUT_TOKENS, 0, 1400)
    assert a["anthropic.usage.cache_creation.ephemeral_5m_input_tokens"] == 1400
    assert a["gen_ai.response.time_to_first_chunk"] > 0
    assert "costspan.stream.cut_short" not in a


@pytest.mark.parametrize(
    ("model", "operation"),
    [
        (SONNET, "chat"),
        ("meta.llama3-8b-instruct-v1:0", "chat"),
        ("amazon.nova-lite-v1:0", "chat"),
        ("amazon.titan-text-express-v1", "text_completion"),
        ("amazon.titan-embed-text-v2:0", "embeddings"),
    ],
)
@pytest.mark.parametrize("headers", [True, False], ids=["usage-headers", "body-only"])
def test_invoke_model_reads_each_family(traced, bedrock, model, operation, headers):
    bedrock.usage_headers = headers
    body = anthropic_body("5m") if model.startswith("anthropic.") else json.dumps({"inputText": QUESTION})
    result = client(bedrock).invoke_model(modelId=model, body=body)
    assert traced.calls() == []  # the body is not read yet
    payload = json.loads(result["body"].read())
    (span,) = traced.calls()
    (request,) = bedrock.requests
    a = attrs(span)
    assert (a["gen_ai.operation.name"], a["gen_ai.request.model"]) == (operation, model)
    assert a["gen_ai.request.stream"] is False
    if operation == "embeddings":  # the body reports no output count, the headers report 0
        assert span_usage(span)[:2] == (6, 0 if headers else None)
    else:
        assert (
            span_usage(span)[:2]
            == canonical(request.usage)[:2]
            == (
                1406 if model.startswith("anthropic.") else 6,
                OUTPUT_TOKENS,
            )
        )
    if model.startswith("anthropic."):
        assert span_usage(span) == (1406, OUTPUT_TOKENS, 0, 1400)
        assert a["gen_ai.response.id"] == payload["id"]
        assert a["anthropic.usage.cache_creation.ephemeral_5m_input_tokens"] == 1400
        assert "gen_ai.response.model" not in a  # the body names the base model, not the profile priced


@pytest.mark.parametrize("model", [SONNET, "amazon.nova-pro-v1:0"])
def test_invoke_model_cache_counts_from_the_body_when_the_headers_lack_them(traced, bedrock, model):
    bedrock.cache_headers = False
    body = anthropic_body("1h") if model == SONNET else json.dumps({"messages": cached_messages()})
    client(bedrock).invoke_model(modelId=model, body=body)["body"].read()
    (span,) = traced.calls()
    (request,) = bedrock.requests
    assert request.usage["cache_write"] == 1400
    assert span_usage(span) == canonical(request.usage) == (1406, OUTPUT_TOKENS, 0, 1400)


def test_invoke_model_body_read_in_pieces_ends_at_its_last_byte(traced, bedrock):
    result = client(bedrock).invoke_model(modelId=SONNET, body=anthropic_body())
    body = result["body"]
    length = int(result["ResponseMetadata"]["HTTPHeaders"]["content-length"])
    data = body.read(10)
    buffer = bytearray(16)
    data += bytes(buffer[: body.readinto(buffer)])
    assert traced.calls() == []
    data += body.read(length - len(data))  # exactly the rest: no empty read follows
    (span,) = traced.calls()
    assert json.loads(data)["id"] == attrs(span)["gen_ai.response.id"]
    assert "costspan.stream.cut_short" not in attrs(span)


def test_invoke_model_body_closed_unread_keeps_the_header_usage(traced, bedrock):
    result = client(bedrock).invoke_model(modelId=SONNET, body=anthropic_body())
    result["body"].close()
    (span,) = traced.calls()
    (request,) = bedrock.requests
    assert attrs(span)["costspan.stream.cut_short"] is True
    assert span_usage(span) == canonical(request.usage)


def test_invoke_model_with_response_stream(traced, bedrock):
    result = client(bedrock).invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body("1h"))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in result["body"]]
    assert chunks[-1]["type"] == "message_stop"
    (span,) = traced.calls()
    (request,) = bedrock.requests
    a = attrs(span)
    assert span_usage(span) == canonical(request.usage) == (1406, OUTPUT_TOKENS, 0, 1400)
    assert a["gen_ai.response.id"] == chunks[0]["message"]["id"]
    assert a["anthropic.usage.cache_creation.ephemeral_1h_input_tokens"] == 1400
    assert a["gen_ai.request.stream"] is True


@pytest.mark.parametrize(
    ("model", "body"),
    [
        ("meta.llama3-8b-instruct-v1:0", {"prompt": QUESTION}),
        ("amazon.nova-lite-v1:0", {"messages": cached_messages()}),
    ],
)
def test_invoke_model_with_response_stream_of_other_families(traced, bedrock, model, body):
    result = client(bedrock).invoke_model_with_response_stream(modelId=model, body=json.dumps(body))
    chunks = [json.loads(event["chunk"]["bytes"]) for event in result["body"]]
    assert "amazon-bedrock-invocationMetrics" in chunks[-1]
    (span,) = traced.calls()
    (request,) = bedrock.requests
    assert span_usage(span) == canonical(request.usage)
    assert span_usage(span)[1] == OUTPUT_TOKENS


def test_a_nova_stream_cut_before_its_metadata_has_no_usage(traced, bedrock):
    body = json.dumps({"messages": cached_messages()})
    result = client(bedrock).invoke_model_with_response_stream(modelId="amazon.nova-lite-v1:0", body=body)
    for event in result["body"]:
        if "messageStop" in json.loads(event["chunk"]["bytes"]):
            break
    (span,) = traced.calls()
    assert attrs(span)["costspan.stream.cut_short"] is True
    assert "gen_ai.usage.input_tokens" not in attrs(span)


# -- streams cut short and failing ---------------------------------------------------------------------------


def test_converse_stream_cut_short(traced, bedrock):
    result = client(bedrock).converse_stream(modelId=SONNET, messages=cached_messages())
    for event in result["stream"]:
        if "contentBlockDelta" in event:
            break
    (span,) = traced.calls()  # ended when the application stopped iterating
    a = attrs(span)
    assert a["costspan.stream.cut_short"] is True
    assert "gen_ai.usage.input_tokens" not in a  # the usage comes last, and did not come


def test_invoke_stream_cut_short_keeps_the_usage_it_saw(traced, bedrock):
    result = client(bedrock).invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body("5m"))
    for event in result["body"]:
        if json.loads(event["chunk"]["bytes"])["type"] == "content_block_delta":
            break
    (span,) = traced.calls()
    a = attrs(span)
    assert a["costspan.stream.cut_short"] is True
    # message_start's input and cache counts, and the one output token it reports
    assert span_usage(span) == (1406, 1, 0, 1400)


def test_a_stream_closed_ends_its_call(traced, bedrock):
    result = client(bedrock).converse_stream(modelId=SONNET, messages=cached_messages())
    result["stream"].close()
    (span,) = traced.calls()
    assert attrs(span)["costspan.stream.cut_short"] is True


def test_a_stream_dropped_unread_ends_its_call(traced, bedrock):
    import gc

    result = client(bedrock).invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body())
    del result
    gc.collect()
    (span,) = traced.calls()
    assert attrs(span)["costspan.stream.cut_short"] is True


def _converse_stream(bedrock_client: Any) -> Iterator[Any]:
    return iter(bedrock_client.converse_stream(modelId=SONNET, messages=cached_messages())["stream"])


def _invoke_stream(bedrock_client: Any) -> Iterator[Any]:
    return iter(
        bedrock_client.invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body())["body"]
    )


def _failure_of(server: BedrockServer, failure: str, read: Callable[[Any], Iterator[Any]]) -> tuple[Any, int]:
    server.stream_failure = failure
    events = 0
    try:
        for _ in read(client(server)):
            events += 1
    except Exception as exc:  # the exception botocore raises is the subject
        return type(exc), events
    raise AssertionError("the stream did not fail")


@pytest.mark.parametrize("read", [_converse_stream, _invoke_stream], ids=["converse-stream", "invoke-stream"])
@pytest.mark.parametrize("failure", ["exception", "drop"])
def test_a_failing_stream_fails_as_it_would_and_ends_its_span_with_the_error(telemetry, read, failure):
    with BedrockServer() as plain_server:
        plain = _failure_of(plain_server, failure, read)
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        with BedrockServer() as server:
            seen = _failure_of(server, failure, read)
    finally:
        instrumentor.uninstrument()
    assert seen == plain
    if failure == "exception":
        assert seen[0] is EventStreamError
    (span,) = telemetry.calls()
    a = attrs(span)
    assert a["error.type"] == f"{seen[0].__module__}.{seen[0].__qualname__}"
    assert a["costspan.stream.cut_short"] is True
    assert span.status.status_code is StatusCode.ERROR
    if read is _invoke_stream:
        assert a["gen_ai.usage.input_tokens"] == 6  # from message_start, which came


def _failures_counted(telemetry: Telemetry, stage: str) -> int:
    data = telemetry.metrics.get_metrics_data()
    if data is None:
        return 0
    return sum(
        point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "costspan.instrumentation.failures"
        for point in metric.data.data_points
        if point.attributes["costspan.stage"] == stage
    )


def test_a_malformed_event_is_passed_on_and_the_call_still_ends(traced, bedrock):
    # a chunk that names message_start but is no JSON: costspan's reading fails, the application's does not
    failed_before = _failures_counted(traced, "read a Bedrock stream event")
    result = client(bedrock).invoke_model_with_response_stream(
        modelId="garbled.model-v1", body=anthropic_body()
    )
    chunks = [event["chunk"]["bytes"] for event in result["body"]]
    assert chunks[0].startswith(b'{"type":"message_start"')
    assert len(chunks) == 3
    (span,) = traced.calls()
    assert "gen_ai.usage.input_tokens" not in attrs(span)
    assert "error.type" not in attrs(span)
    assert _failures_counted(traced, "read a Bedrock stream event") == failed_before + 1  # swallowed, counted


def test_an_error_response_sets_error_type(traced, bedrock):
    with pytest.raises(ClientError) as raised:
        client(bedrock).converse(modelId="missing.model-v1:0", messages=cached_messages())
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    (span,) = traced.calls()
    assert attrs(span)["error.type"] == "404"
    assert span.status.status_code is StatusCode.ERROR


def test_other_calls_pass_untraced(traced, bedrock):
    bedrock_client = client(bedrock)
    with pytest.raises(ClientError):
        bedrock_client.apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
        )
    assert traced.calls() == []


def test_uninstrumented_calls_make_no_span(telemetry, bedrock):
    instrumentor = CostspanInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    instrumentor.uninstrument()
    client(bedrock).converse(modelId=SONNET, messages=cached_messages())
    assert telemetry.calls() == []


# -- attribution, region, metrics ----------------------------------------------------------------------------


def test_attribution_scopes_and_baggage(traced, bedrock):
    bedrock_client = client(bedrock)
    with attribute(team="search", feature="answers", customer_id="acme"):
        bedrock_client.converse(modelId=SONNET, messages=cached_messages())
        with attribute(feature="rerank", tags={"region": "eu"}):
            stream = bedrock_client.converse_stream(modelId=SONNET, messages=cached_messages())["stream"]
    list(stream)  # read outside the scope: the call belongs to the scope it was made in
    token = context.attach(baggage.set_baggage("costspan.team", "billing"))
    try:
        bedrock_client.invoke_model(modelId=SONNET, body=anthropic_body())["body"].read()
    finally:
        context.detach(token)
    plain, streamed, propagated = (attrs(s) for s in sorted(traced.calls(), key=lambda s: s.start_time))
    assert (plain["costspan.team"], plain["costspan.feature"], plain["costspan.customer_id"]) == (
        "search",
        "answers",
        "acme",
    )
    assert (streamed["costspan.team"], streamed["costspan.feature"], streamed["costspan.tag.region"]) == (
        "search",
        "rerank",
        "eu",
    )
    assert propagated["costspan.team"] == "billing"


def test_the_region_goes_into_server_address(traced, bedrock):
    """A client of the real endpoint, whose requests are answered by the stand-in (botocore's before-send
    event may answer a request itself): server.address is the regional host the client addressed."""
    pool = urllib3.PoolManager()

    def answer(request: Any, **_: Any) -> AWSResponse:
        path = request.url.split("amazonaws.com", 1)[1]
        raw = pool.request(
            request.method,
            bedrock.endpoint_url + path,
            body=request.body,
            headers=dict(request.headers.items()),
            preload_content=False,
        )
        return AWSResponse(request.url, raw.status, raw.headers, raw)

    real = boto3.client("bedrock-runtime", region_name="eu-central-1")
    real.meta.events.register("before-send.bedrock-runtime.*", answer)
    real.converse(modelId="eu." + SONNET, messages=cached_messages())
    events = list(real.converse_stream(modelId="eu." + SONNET, messages=cached_messages())["stream"])
    assert "metadata" in events[-1]
    for span in traced.calls():
        a = attrs(span)
        assert a["server.address"] == "bedrock-runtime.eu-central-1.amazonaws.com"
        assert "server.port" not in a
        assert a["cloud.region"] == "eu-central-1"
        assert a["gen_ai.usage.output_tokens"] == OUTPUT_TOKENS
    pool.clear()


def test_metrics(traced, bedrock):
    client(bedrock).converse(modelId=SONNET, messages=cached_messages())
    data = traced.metrics.get_metrics_data()
    points = {
        (m.name, p.attributes.get("gen_ai.token.type")): p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        for p in m.data.data_points
        if m.name.startswith("gen_ai.client")
    }
    usage = points["gen_ai.client.token.usage", "input"]
    assert usage.sum == 6 + 1400  # the cache write included, as on the span
    assert usage.attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert usage.attributes["gen_ai.request.model"] == SONNET
    assert points["gen_ai.client.token.usage", "output"].sum == OUTPUT_TOKENS
    assert points["gen_ai.client.operation.duration", None].count == 1


# -- as the collector reads and prices the spans -------------------------------------------------------------


def _priced(span: Any) -> tuple[Any, Any]:
    call = to_call(
        format(span.context.trace_id, "032x"),
        format(span.context.span_id, "016x"),
        None,
        span.start_time,
        span.end_time,
        span.instrumentation_scope.name,
        dict(span.attributes),
        {"service.name": "billing"},
    )
    assert call is not None
    result = load_engine().price(
        call.model,
        call,
        provider=call.provider,
        timestamp=datetime.fromtimestamp(span.start_time // 1_000_000_000, UTC),
        service_tier=call.service_tier,
    )
    return call, result


MTOK = Decimal(1_000_000)


@pytest.mark.parametrize(
    "model",
    [
        SONNET,
        "us." + SONNET,
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us." + SONNET,
    ],
    ids=["model-id", "inference-profile", "arn"],
)
def test_claude_on_bedrock_is_read_and_priced_by_the_collector(traced, bedrock, model):
    bedrock_client = client(bedrock)
    bedrock_client.converse(modelId=model, messages=cached_messages())  # writes the cache
    result = bedrock_client.invoke_model_with_response_stream(modelId=model, body=anthropic_body("5m"))
    for _ in result["body"]:
        pass
    written, read = sorted(traced.calls(), key=lambda s: s.start_time)

    call, price = _priced(written)
    assert (call.provider, call.request_model, call.operation) == ("aws.bedrock", model, "chat")
    assert (call.input_tokens, call.output_tokens, call.cache_read_tokens, call.cache_write_tokens) == (
        1406,
        OUTPUT_TOKENS,
        0,
        1400,
    )
    # Claude 3.5 Sonnet on Bedrock: $3 input, $15 output, $3.75 cache write, $0.30 cache read per million
    assert price.status == PRICED
    assert price.cost_usd == (6 * Decimal(3) + 1400 * Decimal("3.75") + OUTPUT_TOKENS * Decimal(15)) / MTOK

    call, price = _priced(read)
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens) == (1406, 1400, 0)
    assert price.status == PRICED
    assert price.cost_usd == (6 * Decimal(3) + 1400 * Decimal("0.3") + OUTPUT_TOKENS * Decimal(15)) / MTOK


def test_an_application_inference_profile_is_kept_and_flagged_unknown(traced, bedrock):
    # an application inference profile's ARN names the profile, not the model: nothing to price it by
    model = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    client(bedrock).converse(modelId=model, messages=cached_messages())
    (span,) = traced.calls()
    call, price = _priced(span)
    assert (call.request_model, call.input_tokens, call.output_tokens) == (model, 1406, OUTPUT_TOKENS)
    assert price.status == UNKNOWN_MODEL
    assert price.cost_usd is None


def test_a_global_profile_is_priced_as_itself(traced, bedrock):
    model = "global.anthropic.claude-haiku-4-5-20251001-v1:0"
    client(bedrock).converse(modelId=model, messages=cached_messages("1h"))
    (span,) = traced.calls()
    call, price = _priced(span)
    assert call.cache_write_1h_tokens == 1400
    # the global profile's prices, not the regional ones 10% above: $1 input, $5 output, $2 1-hour writes
    assert price.status == PRICED
    assert price.cost_usd == (6 * Decimal(1) + 1400 * Decimal(2) + OUTPUT_TOKENS * Decimal(5)) / MTOK


# -- beside other Bedrock instrumentations -------------------------------------------------------------------


def _batch_span(span: Any) -> Span:
    return Span(
        trace_id=f"{span.context.trace_id:032x}",
        span_id=f"{span.context.span_id:016x}",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent else None,
        name=span.name,
        start_ns=span.start_time,
        end_ns=span.end_time,
        kind=span.kind.value + 1,  # the SDK counts from 0 (internal), OTLP from 1
        scope_name=span.instrumentation_scope.name,
        attributes={k: list(v) if isinstance(v, tuple) else v for k, v in span.attributes.items()},
        resource=dict(span.resource.attributes),
    )


BEDROCK_INSTRUMENTORS = {
    "botocore": "opentelemetry.instrumentation.botocore:BotocoreInstrumentor",  # its bedrock extension
    "openllmetry": "opentelemetry.instrumentation.bedrock:BedrockInstrumentor",
    "openinference": "openinference.instrumentation.bedrock:BedrockInstrumentor",
}


@pytest.mark.parametrize(
    ("other", "costspan_first"),
    [("botocore", True), ("botocore", False), ("openllmetry", True), ("openinference", True)],
    ids=["botocore-after-costspan", "botocore-before-costspan", "openllmetry", "openinference"],
)
def test_beside_a_bedrock_instrumentation_each_call_is_counted_once(
    telemetry, bedrock, other, costspan_first
):
    """opentelemetry-instrumentation-botocore's bedrock extension, OpenLLMetry's and OpenInference's Bedrock
    instrumentors make GenAI spans with usage: costspan leaves the calls to them, as it leaves an SDK's calls
    to that SDK's instrumentor; their spans get the attribution, and the collector's chain counts each call
    once, priced. (The botocore instrumentation wraps the method costspan wraps: both orders.)"""
    module_name, class_name = BEDROCK_INSTRUMENTORS[other].split(":")
    instrumentors = [CostspanInstrumentor(), getattr(importlib.import_module(module_name), class_name)()]
    if not costspan_first:
        instrumentors.reverse()
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        bedrock_client = client(bedrock)
        with attribute(team="billing", feature="invoices"):
            bedrock_client.converse(modelId=SONNET, messages=cached_messages())
            for _ in bedrock_client.converse_stream(modelId=SONNET, messages=cached_messages())["stream"]:
                pass
            bedrock_client.invoke_model(modelId=SONNET, body=anthropic_body())["body"].read()
            for _ in bedrock_client.invoke_model_with_response_stream(modelId=SONNET, body=anthropic_body())[
                "body"
            ]:
                pass
    finally:
        for instrumentor in reversed(instrumentors):  # wrapt wrappers come off in the order they went on
            instrumentor.uninstrument()
    assert telemetry.calls() == []
    spans = telemetry.finished()
    assert spans, f"{other} traced nothing"
    batch = build_chain()(SpanBatch.from_spans(_batch_span(s) for s in spans))
    counted = [c for c in batch.llm_calls() if c.duplicate_of is None]
    assert len(counted) == len(bedrock.requests) == 4
    for call in counted:
        assert (call.team, call.feature) == ("billing", "invoices")
        assert call.input_tokens and call.output_tokens
        assert call.pricing_status == "priced", call.pricing_status


LATE_IMPORT = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from costspan.instrumentation import CostspanInstrumentor

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
CostspanInstrumentor().instrument(tracer_provider=provider)
assert "botocore" not in sys.modules, "botocore imported by instrument()"
import boto3

client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=sys.argv[1])
client.converse(modelId=sys.argv[2], messages=[{"role": "user", "content": [{"text": "hello"}]}])
print(sum(s.instrumentation_scope.name == "costspan.instrumentation" for s in exporter.get_finished_spans()))
"""


def test_botocore_is_wrapped_when_the_application_imports_it(bedrock):
    """instrument() does not import botocore (some hundreds of milliseconds of start-up): it is wrapped when
    the application imports it."""
    out = subprocess.run(
        [sys.executable, "-c", LATE_IMPORT, bedrock.endpoint_url, SONNET],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
