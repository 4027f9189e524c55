"""Prometheus cost metrics: names, labels, exposition, and cardinality caps."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from costspan.exporters.prometheus import MAX_VALUE_LENGTH, OVERFLOW, CostMetrics, CostTally
from costspan.processors import Span, SpanBatch, build_chain

T0 = 1_760_000_000_000_000_000


def calls(n, *, feature=lambda i: "chat", model="gpt-4o"):
    spans = [
        Span(
            "cd" * 16,
            f"{i + 1:016x}",
            "chat",
            T0 + i * 10**9,
            T0 + i * 10**9 + 10**8,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.cache_read.input_tokens": 400,
                "gen_ai.usage.output_tokens": 100,
                "costspan.feature": feature(i),
                "costspan.team": "search",
            },
            {"service.name": "api", "deployment.environment.name": "prod"},
            scope_name="costspan.instrumentation",
        )
        for i in range(n)
    ]
    return build_chain()(SpanBatch.from_spans(spans)).calls


def samples(metrics):
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_cost_tokens_and_calls():
    metrics = CostMetrics()
    metrics.observe(calls(3))
    labels = {
        "provider": "openai",
        "model": "gpt-4o",
        "service": "api",
        "environment": "prod",
        "team": "search",
        "feature": "chat",
    }
    got = samples(metrics)
    key = tuple(sorted(labels.items()))
    # gpt-4o: 600 uncached x $2.50 + 400 cached x $1.25 + 100 x $10 per million = $0.0030 per call
    assert got[("costspan_cost_usd_total", key)] == pytest.approx(3 * 0.003)
    assert got[("costspan_tokens_total", tuple(sorted({**labels, "type": "input"}.items())))] == 3000
    assert got[("costspan_tokens_total", tuple(sorted({**labels, "type": "cache_read"}.items())))] == 1200
    assert got[("costspan_llm_calls_total", tuple(sorted({**labels, "status": "priced"}.items())))] == 3


def test_label_values_are_capped():
    metrics = CostMetrics(limits={"feature": 5})
    metrics.observe(calls(20, feature=lambda i: f"feature-{i}"))
    features = {dict(k[1])["feature"] for k in samples(metrics) if k[0] == "costspan_llm_calls_total"}
    assert len(features) == 6 and OVERFLOW in features
    total_calls = sum(v for k, v in samples(metrics).items() if k[0] == "costspan_llm_calls_total")
    assert total_calls == 20  # nothing is lost, only folded
    # a batch is summed per label set before the counters move: the folded series carry every call's share
    total_cost = sum(v for k, v in samples(metrics).items() if k[0] == "costspan_cost_usd_total")
    inputs = sum(
        v
        for k, v in samples(metrics).items()
        if k[0] == "costspan_tokens_total" and dict(k[1])["type"] == "input"
    )
    assert total_cost == pytest.approx(20 * 0.003) and inputs == 20 * 1000


def test_an_overlong_label_value_is_counted_under_other():
    metrics = CostMetrics()
    long_feature = "f" * (MAX_VALUE_LENGTH + 1)
    metrics.observe(calls(2, feature=lambda i: [long_feature, "f" * MAX_VALUE_LENGTH][i]))
    features = {dict(k[1])["feature"] for k in samples(metrics) if k[0] == "costspan_llm_calls_total"}
    assert features == {OVERFLOW, "f" * MAX_VALUE_LENGTH}
    assert len(generate_latest(metrics.registry)) < 10 * 1024


def test_a_tally_crosses_a_process_boundary_and_counts_the_same():
    # a pipeline worker sums its batch (CostTally) and the serving process counts it (CostMetrics.add)
    batches = [calls(4, feature=lambda i: f"f{i % 2}"), calls(3, model="gpt-4o-mini")]
    direct, relayed = CostMetrics(limits={"feature": 1}), CostMetrics(limits={"feature": 1})
    for batch in batches:
        direct.observe(batch)
        tally = pickle.loads(pickle.dumps(CostTally.of(batch)))
        relayed.add(tally)
    assert samples(relayed) == samples(direct)
    assert any(dict(labels).get("feature") == OVERFLOW for _, labels in samples(relayed))  # caps apply
    (tally,) = [CostTally.of(calls(2))]
    assert sum(tally.cost.values()) == 2 * Decimal("0.003")  # exact until the Prometheus edge
