"""The fuzzing harness's short run against a real ``costspan serve``: a few thousand hostile requests over
OTLP/HTTP and OTLP/gRPC (mutated protobuf, OTLP/JSON and ``/v1/events`` bodies, gzip bombs, wrong content
types; see tests/fuzz/cases.py) get no 5xx but the retryable 503, no gRPC INTERNAL or UNKNOWN, and leave the
collector serving: no worker restarted, nothing logged as an error, memory bounded while refusing bombs, and
valid calls sent afterwards stored and priced exactly. ``make fuzz`` runs a million of them."""

from __future__ import annotations

import json
import random
import signal
from decimal import Decimal

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.cases import FLOOD_BYTES, JSON, Case, case, event, to_otlp_json, traces_request
from tests.fuzz.driver import (
    LogDrain,
    RssSampler,
    Sender,
    bomb_run,
    check_valid_spans,
    is_crash,
    metric,
    tree_rss,
)
from tests.support.collector import Collector

MAX_IN_FLIGHT = 128 * 1024 * 1024  # the memory limiter's default bound
FIXED_OVERHEAD = 96 * 1024 * 1024  # allocator slack and the decode of one request the limiter admits alone
# the one request being decoded at a time (collector/receivers/_decoded_size.py): a flood of empty spans takes
# about 90 times its size until it is inspected, refused and freed
ONE_DECODE = 90 * FLOOD_BYTES
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    database=None,
    derandomize=True,  # the same inputs every run; make fuzz explores (and prints seeds to replay)
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    running = Collector(tmp_path_factory.mktemp("fuzz") / "data").start()
    running.log = LogDrain(running.proc.stderr)
    yield running
    if running.proc and running.proc.poll() is None:
        running.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def sender(collector):
    opened = Sender(collector.http, collector.grpc)
    yield opened
    opened.close()


@FUZZ
@given(seed=st.integers(0, 2**63 - 1))
def test_mutated_requests_over_http_and_grpc_are_answered_without_a_crash(collector, sender, seed):
    c = case(random.Random(seed))
    answer = sender.send(c)
    assert not is_crash(answer), f"{answer} for {c.what} (python -m tests.fuzz.run --replay {seed})"


# JSON values as a client could send them: every type, unicode including lone surrogates, huge numbers
_TEXT = st.text(st.characters(min_codepoint=1) | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT | st.integers(2**63 - 10, 2**70),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_FIELDS = sorted(event(random.Random(0)))


@settings(FUZZ, max_examples=700)
@given(
    fields=st.dictionaries(st.sampled_from([*_FIELDS, "service", "cost_usd", "reasoning_tokens"]), _JSON),
    as_list=st.booleans(),
    ascii_only=st.booleans(),
)
def test_events_with_values_of_any_type_are_taken_or_refused_with_a_message(
    collector, sender, fields, as_list, ascii_only
):
    doc = {**event(random.Random(len(fields))), **fields}
    body = json.dumps([doc] if as_list else doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    answer = sender.send(Case("http", "/v1/events", body, {"content-type": JSON}))
    assert answer in ("http 200", "http 400", "http 503"), answer


def test_a_lone_surrogate_is_stored_as_the_replacement_character(collector, sender):
    # a JavaScript string cut in the middle of an emoji, as JSON.stringify writes it
    trace = "5e" * 16
    body = json.dumps({**event(random.Random(5)), "trace_id": trace, "feature": "chat \ud83d"}).encode()
    assert b"\\ud83d" in body
    assert sender.send(Case("http", "/v1/events", body, {"content-type": JSON})) == "http 200"
    span = json.loads(json.dumps(to_otlp_json(traces_request(random.Random(6), 1))))
    span["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append(
        {"key": "costspan.team", "value": {"stringValue": "\udc00team"}}
    )
    otlp_trace = span["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    answer = sender.send(Case("http", "/v1/traces", json.dumps(span).encode(), {"content-type": JSON}))
    assert answer == "http 200"
    collector.wait_for(
        f"SELECT feature, team FROM llm_calls WHERE trace_id IN ('{trace}', '{otlp_trace}') ORDER BY feature",
        ["chat \ufffd,discovery", "search,\ufffdteam"],
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_tokens", 2**64), ("duration_ms", 10**30), ("timestamp", "9999-12-31T23:59:59-23:59")],
)
def test_events_values_otlp_cannot_carry_are_refused_with_a_message(collector, sender, field, value):
    body = json.dumps({**event(random.Random(7)), field: value}).encode()
    answer = httpx.post(
        f"http://127.0.0.1:{collector.http}/v1/events", content=body, headers={"content-type": JSON}
    )
    assert answer.status_code == 400 and field.split("_")[0] in answer.json()["error"]


def test_afterwards_memory_was_bounded_nothing_restarted_and_valid_calls_are_stored(collector):
    before = tree_rss(collector.proc.pid)
    with RssSampler(collector.proc.pid, interval_s=0.01) as rss:
        bombs = bomb_run(collector.http, collector.grpc, rounds=3, parallel=8)
    assert bombs.crash_count == 0, bombs.crashes
    # too large (bombs), bad data (JSON floods), or retry later (the memory limiter)
    expected = {"http 400", "http 413", "http 503", "grpc RESOURCE_EXHAUSTED", "grpc UNAVAILABLE"}
    assert set(bombs.answers) <= expected, bombs.answers
    assert bombs.answers["http 413"] >= 5 and bombs.answers["grpc RESOURCE_EXHAUSTED"] >= 5, bombs.answers
    # refusing bombs and floods eight at a time takes no more than what the memory limiter lets requests hold
    # and one decode
    assert rss.peak_bytes - before <= MAX_IN_FLIGHT + ONE_DECODE + FIXED_OVERHEAD, (before, rss.peak_bytes)

    sent, stored, cost = check_valid_spans(collector.http, collector.grpc, collector.sql, calls=20)
    assert (stored, Decimal(cost)) == (sent, Decimal("0.000195") * sent)
    assert collector.proc.poll() is None
    assert metric(collector.admin, "costspan_collector_pipeline_worker_restarts_total") == 0
    assert metric(collector.admin, "costspan_collector_spans_unreadable_total") == 0
    assert metric(collector.admin, "costspan_collector_pipeline_workers") == 2
    assert collector.log.tracebacks == 0, collector.log.exceptions
