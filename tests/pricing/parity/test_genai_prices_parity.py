"""costspan and genai-prices price the same corpus to identical Decimal totals.

The corpus (``cases.jsonl``, made by ``generate_corpus.py``) spans every provider genai-prices 0.2.3 knows,
with cache, one-hour cache writes, reasoning, audio, searches, tiers, dated price changes and service tiers.
A difference is accepted only where ``deliberate_differences.py`` explains it.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

genai_prices = pytest.importorskip("genai_prices")

from costspan.pricing import PRICED, PricingEngine, Usage, embedded_catalog  # noqa: E402

from .deliberate_differences import explain  # noqa: E402

CASES = [json.loads(line) for line in Path(__file__).with_name("cases.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def engine() -> PricingEngine:
    # Both engines over the same data: genai-prices' catalog as it is, without costspan's corrections
    # (tests/pricing/test_corrections.py prices those).
    return PricingEngine([embedded_catalog(corrected=False)])


def _genai_total(case: dict) -> object:
    context = None
    if case["service_tier"] == "batch":
        context = {"processing": "batch"}
    elif case["service_tier"]:
        context = {"service_tier": case["service_tier"]}
    return genai_prices.calc_price(
        genai_prices.Usage(**case["usage"]),
        case["model"],
        provider_id=case["provider"],
        genai_request_timestamp=datetime.fromisoformat(case["timestamp"]),
        price_context=context,
    ).total_price


def _costspan(engine: PricingEngine, case: dict):
    return engine.price(
        case["model"],
        Usage.from_mapping(case["usage"]),
        provider=case["provider"],
        timestamp=datetime.fromisoformat(case["timestamp"]),
        service_tier=case["service_tier"],
    )


def test_corpus_covers_every_provider_and_feature():
    from genai_prices.data import providers

    assert len(CASES) >= 500
    assert {c["provider"] for c in CASES} == {p.id for p in providers}
    usage_keys = Counter(k for c in CASES for k in c["usage"])
    for key in (
        "cache_read_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "output_reasoning_tokens",
        "input_audio_tokens",
        "web_searches",
        "input_characters",
        "audio_seconds",
    ):
        assert usage_keys[key] >= 3, key
    tiers = Counter(c["service_tier"] for c in CASES)
    for tier in ("batch", "flex", "priority"):
        assert tiers[tier] >= 5, tier


def test_identical_totals_except_deliberate_differences(engine):
    mismatches = []
    explained: Counter[str] = Counter()
    for case in CASES:
        expected = _genai_total(case)
        result = _costspan(engine, case)
        assert result.status == PRICED, (case["id"], result.status, result.detail)
        if result.cost_usd == expected:
            continue
        difference = explain(result)
        if difference is None:
            mismatches.append((case["id"], str(expected), str(result.cost_usd), result.rules))
        else:
            explained[difference.name] += 1
    assert not mismatches, f"{len(mismatches)} unexplained differences, first: {mismatches[:5]}"
    # the deliberate differences stay the exception
    assert sum(explained.values()) < len(CASES) // 10, explained


def test_breakdown_sums_to_total(engine):
    for case in CASES[:300]:
        result = _costspan(engine, case)
        assert sum(result.breakdown.values()) == result.cost_usd, case["id"]


def test_quotes_price_every_case_they_cover_as_price_does(engine):
    """The price processor prices most calls by :class:`Quote` (one resolution per model and day); each
    case a quote covers gets the same amounts, total and provenance as ``engine.price``."""
    from costspan.pricing import named_counts

    covered = 0
    for case in CASES:
        usage = Usage.from_mapping(case["usage"])
        if usage.other or usage.cache_write_1h_tokens:
            continue  # not what quotes cover
        at = datetime.fromisoformat(case["timestamp"])
        quote = engine.quote(case["model"], case["provider"], at, case["service_tier"])
        if quote is None:
            continue
        outcome = quote.cost(named_counts(usage))
        expected = _costspan(engine, case)
        assert outcome is not None, case["id"]
        amounts, total = outcome
        assert (list(amounts), total, quote.status) == (
            list(expected.amounts),
            expected.cost_usd,
            expected.status,
        )
        assert (quote.provider, quote.model, quote.rules) == (
            expected.provider,
            expected.model,
            expected.rules,
        )
        covered += 1
    assert covered >= 1000, covered
