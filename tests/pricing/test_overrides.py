"""User overrides: custom models, negotiated discounts, chargeback, aliases, and clear errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from textwrap import dedent

import pytest

from costspan.pricing import (
    PRICED,
    OverrideError,
    PricingEngine,
    Usage,
    embedded_catalog,
    load_overrides,
)

D = Decimal
MILLION_EACH = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


def engine_with(tmp_path, text: str) -> PricingEngine:
    path = tmp_path / "prices.yaml"
    path.write_text(dedent(text))
    catalog = embedded_catalog()
    return PricingEngine([catalog], overrides=load_overrides(path, catalog.units))


def test_custom_model_with_pattern_and_dates(tmp_path):
    engine = engine_with(
        tmp_path,
        """
        models:
          - id: llama-3.1-70b-internal
            provider: self-hosted
            match: "llama-3.1-70b*"
            prices:
              - {input_mtok: 0.30, output_mtok: 0.30}
              - {start_date: 2025-07-01, input_mtok: 0.20, output_mtok: 0.25}
        """,
    )
    june = engine.price(
        "llama-3.1-70b-instruct",
        MILLION_EACH,
        provider="self-hosted",
        timestamp=datetime(2025, 6, 30, tzinfo=UTC),
    )
    july = engine.price(
        "Llama-3.1-70B-Instruct",
        MILLION_EACH,
        provider="self-hosted",
        timestamp=datetime(2025, 7, 1, tzinfo=UTC),
    )
    assert june.status == PRICED and june.cost_usd == D("0.60")
    assert july.cost_usd == D("0.45")
    assert july.model == "llama-3.1-70b-internal"
    assert july.rules[0].startswith("override ") and july.rules[0].endswith("prices.yaml:3")
    # without a provider the override is still found
    assert engine.price("llama-3.1-70b", MILLION_EACH).cost_usd == D("0.45")


def test_override_wins_over_catalog(tmp_path):
    engine = engine_with(
        tmp_path,
        """
        models:
          - id: gpt-4o-negotiated
            provider: openai
            match: gpt-4o
            prices: {input_mtok: 2, output_mtok: 8}
        """,
    )
    assert engine.price("gpt-4o", MILLION_EACH, provider="openai").cost_usd == D("10")
    # other models still come from the catalog
    assert engine.price("gpt-4o-mini", MILLION_EACH, provider="openai").cost_usd == D("0.75")
    assert "overrides:prices.yaml#" in engine.version


def test_discounts_by_provider_model_and_date(tmp_path):
    engine = engine_with(
        tmp_path,
        """
        discounts:
          - {provider: openai, model: "gpt-4o*", percent: 15, start_date: 2025-01-01, end_date: 2025-12-31,
             name: enterprise agreement}
          - {provider: anthropic, percent: 10}
        """,
    )
    in_term = engine.price(
        "gpt-4o", MILLION_EACH, provider="openai", timestamp=datetime(2025, 5, 1, tzinfo=UTC)
    )
    after = engine.price(
        "gpt-4o", MILLION_EACH, provider="openai", timestamp=datetime(2026, 1, 1, tzinfo=UTC)
    )
    other_model = engine.price(
        "o3", MILLION_EACH, provider="openai", timestamp=datetime(2025, 8, 1, tzinfo=UTC)
    )
    claude = engine.price(
        "claude-sonnet-4-5",
        Usage(input_tokens=100_000, output_tokens=100_000),
        provider="anthropic",
        timestamp=datetime(2025, 11, 1, tzinfo=UTC),
    )
    assert in_term.cost_usd == D("12.5") * D("0.85")
    assert sum(in_term.breakdown.values()) == in_term.cost_usd
    assert any("discount 15% (enterprise agreement)" in rule for rule in in_term.rules)
    assert after.cost_usd == D("12.5")
    assert other_model.cost_usd == D("10")
    assert claude.cost_usd == D("1.8") * D("0.9")


def test_chargeback_markup_and_internal_rates(tmp_path):
    engine = engine_with(
        tmp_path,
        """
        models:
          - {id: llama-internal, match: "llama-*", prices: {input_mtok: 0, output_mtok: 0}}
        chargeback:
          - {model: "llama-*", prices: {input_mtok: 0.5, output_mtok: 1.5}}
          - {provider: "*", markup_percent: 10}
        """,
    )
    gpt = engine.price("gpt-4o", MILLION_EACH, provider="openai")
    assert gpt.cost_usd == D("12.5") and gpt.chargeback_usd == D("13.75")
    llama = engine.price("llama-3-8b", MILLION_EACH)
    assert llama.cost_usd == 0 and llama.chargeback_usd == D("2")


def test_aliases_map_deployment_names(tmp_path):
    engine = engine_with(
        tmp_path,
        """
        aliases:
          - {model: "prod-gpt4o-*", provider: azure, target: gpt-4o-2024-08-06}
        """,
    )
    r = engine.price("prod-gpt4o-eastus", MILLION_EACH, provider="azure")
    # the catalog's gpt-4o entry covers the 2024-08-06 snapshot
    assert r.status == PRICED and r.model == "gpt-4o" and r.cost_usd == D("12.5")
    assert r.rules[0].startswith("alias ")
    assert engine.price("prod-gpt4o-eastus", MILLION_EACH, provider="openai").status == "unknown_model"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("models:\n  - id: x\n    prices: {input_mtokens: 1}\n", 3, "unknown price key 'input_mtokens'"),
        ("models:\n  - id: x\n", 2, "needs prices"),
        ("discounts:\n  - provider: openai\n    percent: 150\n", 3, "at most 100"),
        ("discounts:\n  - {percent: -5}\n", 2, "non-negative"),
        ("discounts:\n  - {percent: 5, start_date: 2025-13-01}\n", 2, "date"),
        ("chargeback:\n  - {provider: openai}\n", 2, "markup_percent, prices"),
        ("models:\n  - id: x\n    prices: {input_mtok: abc}\n", 3, "not a number"),
        ("models:\n  - id: x\n    price: {input_mtok: 1}\n", 3, "unknown key 'price'"),
        ("modles: []\n", 1, "unknown key 'modles'"),
        ("models:\n  - id: x\n    prices: {input_mtok: 1\n", 4, "not valid YAML"),
        ("models: {id: x}\n", 1, "is a list"),
        ("aliases:\n  - {model: x}\n", 2, "'target'"),
        ("- just a list\n", 1, "is a mapping"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, text, line, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(OverrideError) as err:
        load_overrides(path, embedded_catalog().units)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert fragment in message, message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(OverrideError, match="cannot read"):
        load_overrides(tmp_path / "absent.yaml", embedded_catalog().units)


def test_empty_file_is_no_overrides(tmp_path):
    engine = engine_with(tmp_path, "")
    assert engine.price("gpt-4o", MILLION_EACH, provider="openai").cost_usd == D("12.5")


def test_decimal_prices_are_read_exactly(tmp_path):
    engine = engine_with(
        tmp_path,
        """
        models:
          - {id: tiny, match: tiny, prices: {input_mtok: 0.123456789012}}
        """,
    )
    # 0.123456789012 as a binary float is 0.12345678901199999...; the override keeps the written digits
    r = engine.price("tiny", Usage(input_tokens=99_999_999))
    assert r.cost_usd == D("0.123456789012") * 99_999_999 / 1_000_000


# -- provider names in override files are read as catalog lookups read them --------------------------

COLLECTED_SPAN = (
    Path(__file__).resolve().parents[1] / "fixtures" / "genai" / "otel_genai_openai" / "openai_chat.json"
)


def _collected_azure_batch(deployment: str):
    """A span as the OpenTelemetry GenAI instrumentation of the openai SDK writes it (captured, see
    tests/fixtures/genai), for a call to an Azure OpenAI deployment: provider ``azure.ai.openai`` (the
    semantic conventions' name) and the deployment's name as the model."""
    from costspan.collector.otlp import batch_from_request, request_from_json

    doc = json.loads(COLLECTED_SPAN.read_text())
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    for attribute in span["attributes"]:
        if attribute["key"] == "gen_ai.provider.name":
            attribute["value"] = {"stringValue": "azure.ai.openai"}
        elif attribute["key"] in ("gen_ai.request.model", "gen_ai.response.model"):
            attribute["value"] = {"stringValue": deployment}
        elif attribute["key"] in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            attribute["value"] = {"intValue": "1000000"}
    return batch_from_request(request_from_json(doc))


def test_readme_alias_prices_a_collected_azure_span(tmp_path):
    """The README's override example (``provider: azure``) prices a collected span whose provider is
    ``azure.ai.openai``, through the collector's own processor chain."""
    from costspan.processors import chain_from_config
    from costspan.semconv import LLM

    path = tmp_path / "prices.yaml"
    path.write_text('aliases:\n  - {model: "prod-gpt4o-*", provider: azure, target: gpt-4o-2024-08-06}\n')
    chain = chain_from_config({"price": {"overrides": str(path)}})
    calls = [
        c for c in chain(_collected_azure_batch("prod-gpt4o-eastus")).calls if c is not None and c.kind == LLM
    ]
    assert len(calls) == 1
    call = calls[0]
    assert call.provider == "azure.ai.openai"
    assert call.pricing_status == PRICED, call.flags
    assert call.pricing_model == "gpt-4o" and call.cost_usd == D("12.5")  # $2.50 + $10 per 1M


@pytest.mark.parametrize("written", ["azure", "azure.ai.openai", "az.ai.openai", "Azure_OpenAI"])
def test_override_provider_names_of_every_convention(tmp_path, written):
    engine = engine_with(
        tmp_path,
        f"""
        aliases:
          - {{model: "prod-gpt4o-*", provider: "{written}", target: gpt-4o-2024-08-06}}
        models:
          - {{id: house-model, provider: "{written}", prices: {{input_mtok: 1, output_mtok: 1}}}}
        discounts:
          - {{provider: "{written}", model: "house-*", percent: 50}}
        """,
    )
    for reported in ("azure", "azure.ai.openai", "az.ai.openai"):
        aliased = engine.price("prod-gpt4o-eastus", MILLION_EACH, provider=reported)
        assert aliased.status == PRICED and aliased.cost_usd == D("12.5"), (reported, aliased.detail)
        custom = engine.price("house-model", MILLION_EACH, provider=reported)
        assert custom.status == PRICED and custom.cost_usd == D("1"), (
            reported,
            custom.detail,
        )  # 2 at 50% off
    assert engine.price("prod-gpt4o-eastus", MILLION_EACH, provider="openai").status == "unknown_model"


def test_discount_names_the_provider_called_not_the_one_whose_prices_it_borrows(tmp_path):
    # Azure has no list of its own for gpt-4o and falls back to OpenAI's prices; a discount negotiated
    # with Azure applies to Azure calls, one negotiated with OpenAI does not.
    engine = engine_with(
        tmp_path,
        """
        discounts:
          - {provider: azure.ai.openai, model: "gpt-4o*", percent: 10}
        """,
    )
    azure = engine.price("gpt-4o", MILLION_EACH, provider="azure.ai.openai")
    openai = engine.price("gpt-4o", MILLION_EACH, provider="openai")
    assert azure.cost_usd == D("11.25") and any(r.startswith("discount 10%") for r in azure.rules)
    assert openai.cost_usd == D("12.5")
