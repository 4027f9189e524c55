"""The LiteLLM importer turns LiteLLM's price file into a catalog that costspan loads and prices exactly.

The fixture holds entries copied verbatim from LiteLLM's file (see ``fixtures/README.md``); every expected
price below is that file's per-token (or per-second, per-image ...) figure, scaled by hand.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

import pytest

from costspan.pricing import PRICED, Usage, load_engine
from costspan.pricing._catalog import Catalog, Model, TieredPrice
from costspan.pricing._units import EXTRA_UNITS
from costspan.pricing.importers import litellm

FIXTURE = Path(__file__).parent / "fixtures" / "litellm_prices_sample.json"


@cache
def _imported() -> tuple[dict, litellm.ImportReport, Catalog]:
    doc, report = litellm.import_file_with_report(FIXTURE)
    return doc, report, Catalog.from_json(doc)


def _catalog() -> Catalog:
    return _imported()[2]


def _model(provider_id: str, model_id: str, catalog: Catalog | None = None) -> Model:
    provider = (catalog or _catalog()).provider(provider_id)
    assert provider is not None, provider_id
    return next(m for m in provider.models if m.id == model_id)


def _prices(provider_id: str, model_id: str) -> dict:
    return dict(_model(provider_id, model_id).prices[0].prices)


def _variant(model: Model, context: dict[str, str]) -> dict:
    return dict(next(v for v in model.variants if dict(v.context) == context).prices)


def _doc_model(doc: dict, provider_id: str, model_id: str) -> dict:
    provider = next(p for p in doc["providers"] if p["id"] == provider_id)
    return next(m for m in provider["models"] if m["id"] == model_id)


def _convert(entries: dict) -> tuple[dict, litellm.ImportReport, Catalog]:
    doc, report = litellm.convert(entries, source_version="test")
    return doc, report, Catalog.from_json(doc)


# -- the document -------------------------------------------------------------------------------------------


def test_the_whole_fixture_loads_as_a_catalog():
    doc, report, catalog = _imported()
    assert doc["source"] == "litellm"
    assert catalog.source == "litellm"
    assert re.fullmatch(r"litellm_prices_sample\.json@sha256:[0-9a-f]{12}", doc["source_version"])
    assert report.models == catalog.model_count == 22
    # The document carries its units: genai-prices' registry and costspan's per-image and per-second ones.
    assert doc["units"]["input_tokens"]["price_key"] == "input_mtok"
    assert doc["units"]["input_audio_seconds"] == {
        "price_key": "input_audio_hours",
        "per": 3600,
        "dimensions": {"direction": "input", "family": "durations", "modality": "audio"},
    }
    assert set(EXTRA_UNITS) <= set(doc["units"])


def test_prices_are_decimal_strings_without_exponents():
    doc = _imported()[0]
    gpt_4o = _doc_model(doc, "openai", "gpt-4o")["prices"][0]["prices"]
    assert gpt_4o == {"input_mtok": "2.5", "output_mtok": "10", "cache_read_mtok": "1.25"}
    assert _doc_model(doc, "openai", "gpt-4o-mini")["prices"][0]["prices"]["cache_read_mtok"] == "0.075"

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    for provider in doc["providers"]:
        for model in provider["models"]:
            price_sets = [*model["prices"], *model.get("variants", [])]
            for price in strings([p["prices"] for p in price_sets]):
                assert re.fullmatch(r"\d+(\.\d*[1-9])?", price), (model["id"], price)


def test_every_rule_names_a_unit_of_the_document():
    price_keys = {unit["price_key"] for unit in litellm.catalog_units().values()}
    for rules in litellm._RULES.values():
        for rule in rules:
            assert rule.price_key in price_keys, rule


# -- prices -------------------------------------------------------------------------------------------------


def test_token_prices_are_scaled_exactly_to_per_million():
    assert _prices("openai", "gpt-4o") == {
        "input_mtok": Decimal("2.5"),
        "output_mtok": Decimal("10"),
        "cache_read_mtok": Decimal("1.25"),
    }
    assert _prices("openai", "gpt-4o-mini")["input_mtok"] == Decimal("0.15")
    assert _prices("openai", "gpt-4o-mini")["output_mtok"] == Decimal("0.6")
    assert _prices("openai", "text-embedding-3-small") == {
        "input_mtok": Decimal("0.02"),
        "output_mtok": Decimal("0"),
    }
    assert _prices("deepseek", "deepseek/deepseek-chat") == {
        "input_mtok": Decimal("0.28"),
        "output_mtok": Decimal("0.42"),
        "cache_read_mtok": Decimal("0.028"),
        "cache_write_mtok": Decimal("0"),
    }


def test_cache_writes_with_a_one_hour_lifetime():
    prices = _prices("anthropic", "claude-sonnet-4-5")
    assert prices["input_mtok"] == Decimal("3")
    assert prices["output_mtok"] == Decimal("15")
    assert prices["cache_read_mtok"] == Decimal("0.3")
    assert prices["cache_write_mtok"] == Decimal("3.75")
    assert prices["cache_write_1h_mtok"] == Decimal("6")


def test_reasoning_and_audio_tokens():
    prices = _prices("google", "gemini-2.5-flash")
    assert prices["output_reasoning_mtok"] == Decimal("2.5")
    assert prices["input_audio_mtok"] == Decimal("1")
    assert prices["cache_audio_read_mtok"] == Decimal("0.1")
    assert prices["input_mtok"] == Decimal("0.3")
    assert prices["cache_read_mtok"] == Decimal("0.03")


def test_long_context_prices_become_tiers():
    prices = _prices("google", "gemini-2.5-pro")
    assert prices["input_mtok"] == TieredPrice(Decimal("1.25"), ((200_000, Decimal("2.5")),))
    assert prices["output_mtok"] == TieredPrice(Decimal("10"), ((200_000, Decimal("15")),))
    assert prices["cache_read_mtok"] == TieredPrice(Decimal("0.125"), ((200_000, Decimal("0.25")),))
    # gemini-2.5-pro lists a long-context cache-write rate but no standard one: nothing to tier, reported.
    assert "cache_write_mtok" not in prices
    assert _imported()[1].skipped_fields["cache_creation_input_token_cost_above_200k_tokens"] == 1


def test_tiered_pricing_ranges_become_tiers():
    prices = _prices("dashscope", "dashscope/qwen3-max")
    assert prices == {
        "input_mtok": TieredPrice(Decimal("1.2"), ((32_000, Decimal("2.4")), (128_000, Decimal("3")))),
        "output_mtok": TieredPrice(Decimal("6"), ((32_000, Decimal("12")), (128_000, Decimal("15")))),
    }


def test_batch_flex_and_priority_become_variants():
    o3 = _model("openai", "o3")
    assert [dict(v.context) for v in o3.variants] == [
        {"processing": "batch"},
        {"service_tier": "flex"},
        {"service_tier": "priority"},
    ]
    assert _variant(o3, {"processing": "batch"}) == {
        "input_mtok": Decimal("1"),
        "output_mtok": Decimal("4"),
    }
    assert _variant(o3, {"service_tier": "flex"}) == {
        "input_mtok": Decimal("1"),
        "output_mtok": Decimal("4"),
        "cache_read_mtok": Decimal("0.25"),
    }
    assert _variant(o3, {"service_tier": "priority"}) == {
        "input_mtok": Decimal("3.5"),
        "output_mtok": Decimal("14"),
        "cache_read_mtok": Decimal("0.875"),
    }
    claude = _model("anthropic", "claude-sonnet-4-5")
    assert _variant(claude, {"processing": "batch"}) == {
        "input_mtok": Decimal("1.5"),
        "output_mtok": Decimal("7.5"),
        "cache_read_mtok": Decimal("0.15"),
        "cache_write_mtok": Decimal("1.875"),
    }
    # A variant keeps its own long-context tiers.
    priority = _variant(_model("google", "gemini-2.5-pro"), {"service_tier": "priority"})
    assert priority["input_mtok"] == TieredPrice(Decimal("2.25"), ((200_000, Decimal("4.5")),))
    assert priority["output_mtok"] == TieredPrice(Decimal("18"), ((200_000, Decimal("27")),))


def test_per_second_per_character_and_per_image_units():
    assert _prices("openai", "whisper-1") == {"input_audio_hours": Decimal("0.36")}  # 0.0001/s x 3600
    assert _prices("openai", "tts-1") == {"input_mchars": Decimal("15")}  # 0.000015/char x 1e6
    assert _prices("google", "vertex_ai/veo-2.0-generate-001") == {"output_video_second": Decimal("0.5")}
    assert _prices("aiml", "aiml/dall-e-3") == {"output_image_each": Decimal("0.052")}
    # an image-generation entry's "input_cost_per_image" is the price of each generated image
    assert _prices("openai", "low/1024-x-1024/gpt-image-1") == {"output_image_each": Decimal("0.011")}


def test_an_image_generation_entry_that_prices_its_output_images_apart_has_an_input_image_price():
    # LiteLLM 1.110.2's gemini-3-pro-image-preview: input_cost_per_image 0.0011, output_cost_per_image 0.134
    catalog = Catalog.from_json(
        litellm.import_file(FIXTURE.with_name("litellm_model_prices_1.110.2.json.gz"))
    )
    prices = _model("google", "gemini-3-pro-image-preview", catalog).prices[0].prices
    assert prices["output_image_each"] == Decimal("0.134")
    assert prices["input_image_each"] == Decimal("0.0011")


def test_per_request_per_query_and_web_search_prices():
    assert _prices("perplexity", "perplexity/pplx-7b-online") == {
        "requests_kcount": Decimal("5"),
        "input_mtok": Decimal("0"),
        "output_mtok": Decimal("0.28"),
    }
    assert _prices("cohere", "rerank-v3.5")["rerank_searches_kcount"] == Decimal("2")
    assert _prices("openai", "gpt-4o-mini")["web_searches_kcount"] == Decimal("25")
    comment = _model("openai", "gpt-4o-mini").price_comments
    assert comment is not None and "search_context_cost_per_query" in comment and "medium" in comment


def test_context_window_is_max_input_tokens():
    assert _model("google", "gemini-2.5-pro").context_window == 1048576
    assert _model("openai", "whisper-1").context_window is None


# -- providers and names ------------------------------------------------------------------------------------


def test_litellm_providers_map_to_catalog_providers():
    doc, _, catalog = _imported()
    ids = [p["id"] for p in doc["providers"]]
    assert ids == sorted(ids)
    assert "bedrock" not in ids and "azure_ai" not in ids and "gemini" not in ids
    aws = catalog.provider("aws")
    assert aws is not None and aws.name == "AWS Bedrock"
    assert catalog.provider("bedrock") is aws  # by provider_match
    assert {m.id for m in aws.models} == {
        "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    }
    azure = next(p for p in doc["providers"] if p["id"] == "azure")
    assert azure["provider_match"] == {"or": [{"equals": "azure"}, {"equals": "azure_ai"}]}
    google = next(p for p in doc["providers"] if p["id"] == "google")
    assert google["provider_match"] == {
        "or": [
            {"equals": "gemini"},
            {"equals": "vertex_ai-language-models"},
            {"equals": "vertex_ai-video-models"},
        ]
    }
    # A provider costspan does not know keeps its LiteLLM name.
    assert next(p for p in doc["providers"] if p["id"] == "dashscope")["provider_match"] == {
        "equals": "dashscope"
    }


def test_prefixed_keys_also_match_without_their_provider_prefix():
    doc = _imported()[0]
    assert _doc_model(doc, "azure", "azure/gpt-4o")["match"] == {
        "or": [{"equals": "azure/gpt-4o"}, {"equals": "gpt-4o"}]
    }
    # vertex_ai/ prefixes a vertex_ai-video-models key.
    assert _doc_model(doc, "google", "vertex_ai/veo-2.0-generate-001")["match"] == {
        "or": [{"equals": "vertex_ai/veo-2.0-generate-001"}, {"equals": "veo-2.0-generate-001"}]
    }
    # A gateway's vendor/model stays whole.
    assert _doc_model(doc, "vercel_ai_gateway", "vercel_ai_gateway/openai/gpt-4o")["match"] == {
        "or": [{"equals": "vercel_ai_gateway/openai/gpt-4o"}, {"equals": "openai/gpt-4o"}]
    }
    # A quality/size prefix is not a provider.
    assert _doc_model(doc, "openai", "low/1024-x-1024/gpt-image-1")["match"] == {
        "equals": "low/1024-x-1024/gpt-image-1"
    }
    assert _catalog().provider("azure").find_model("gpt-4o").id == "azure/gpt-4o"


def test_an_alias_never_takes_another_entrys_own_key():
    doc = _imported()[0]
    # us.anthropic... is its own entry at aws, and gemini-2.5-pro (Vertex) its own at google.
    assert _doc_model(doc, "aws", "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0")["match"] == {
        "equals": "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0"
    }
    assert _doc_model(doc, "google", "gemini/gemini-2.5-pro")["match"] == {"equals": "gemini/gemini-2.5-pro"}
    assert _catalog().provider("google").find_model("gemini-2.5-pro").id == "gemini-2.5-pro"


def test_openrouter_keeps_vendor_model_and_the_first_entry_keeps_a_shared_alias():
    # LiteLLM 1.109.1 lists no OpenRouter models; these entries follow LiteLLM's openrouter/ key shape.
    price = {"input_cost_per_token": Decimal("3e-06"), "output_cost_per_token": Decimal("1.5e-05")}
    doc, report, catalog = _convert(
        {
            "openrouter/anthropic/claude-3.5-sonnet": {"litellm_provider": "openrouter", **price},
            "azure/gpt-4o": {"litellm_provider": "azure", **price},
            "azure_ai/gpt-4o": {"litellm_provider": "azure_ai", **price},
        }
    )
    assert _doc_model(doc, "openrouter", "openrouter/anthropic/claude-3.5-sonnet")["match"] == {
        "or": [
            {"equals": "openrouter/anthropic/claude-3.5-sonnet"},
            {"equals": "anthropic/claude-3.5-sonnet"},
        ]
    }
    assert _doc_model(doc, "azure", "azure/gpt-4o")["match"] == {
        "or": [{"equals": "azure/gpt-4o"}, {"equals": "gpt-4o"}]
    }
    assert _doc_model(doc, "azure", "azure_ai/gpt-4o")["match"] == {"equals": "azure_ai/gpt-4o"}
    assert _prices_of(catalog, "openrouter", "openrouter/anthropic/claude-3.5-sonnet") == {
        "input_mtok": Decimal("3"),
        "output_mtok": Decimal("15"),
    }
    assert report.models == 3


def _prices_of(catalog: Catalog, provider_id: str, model_id: str) -> dict:
    return dict(_model(provider_id, model_id, catalog).prices[0].prices)


# -- what is left out ---------------------------------------------------------------------------------------


def test_unmapped_fields_and_unpriced_entries_are_counted():
    _, report, catalog = _imported()
    # sample_spec is documentation; the Bedrock commitment entry has only throughput prices and
    # github_copilot/gpt-4 none at all.
    assert report.skipped_entries == 2
    assert all(m.id != "sample_spec" for p in catalog.providers for m in p.models)
    assert report.skipped_fields == Counter(
        {
            "google_maps_grounding_cost_per_query": 3,
            "cost_per_second": 1,
            "input_cost_per_second": 1,  # a chat model's provisioned throughput, not audio
            "output_cost_per_second": 1,  # whisper-1 bills input audio seconds only
            "cache_creation_input_token_cost_above_200k_tokens": 1,
            "input_cost_per_pixel": 1,
            "output_cost_per_pixel": 1,
        }
    )


def test_malformed_prices_are_skipped_and_counted_not_raised():
    doc, report, catalog = _convert(
        {
            "good-but-partly-bad": {
                "litellm_provider": "openai",
                "mode": "chat",
                "input_cost_per_token": Decimal("-1e-06"),
                "output_cost_per_token": "abc",
                "cache_read_input_token_cost": Decimal("NaN"),
                "output_cost_per_reasoning_token": True,
                "input_cost_per_audio_token": None,
                "input_cost_per_token_batches": Decimal("Infinity"),
                "search_context_cost_per_query": {"search_context_size_medium": "x"},
                "tiered_pricing": [{"range": [0, 1000], "input_cost_per_token": Decimal("-1")}],
                "output_cost_per_audio_token": Decimal("2E-5"),
            },
            "all-bad": {"litellm_provider": "openai", "input_cost_per_token": "abc"},
            "not-an-object": "abc",
            "no-provider": {"input_cost_per_token": Decimal("1e-06")},
        }
    )
    assert _prices_of(catalog, "openai", "good-but-partly-bad") == {"output_audio_mtok": Decimal("20")}
    assert report.models == 1
    assert report.skipped_entries == 3
    assert report.skipped_fields == Counter(
        {
            "input_cost_per_token: invalid value": 2,
            "output_cost_per_token: invalid value": 1,
            "cache_read_input_token_cost: invalid value": 1,
            "output_cost_per_reasoning_token: invalid value": 1,
            "input_cost_per_audio_token: invalid value": 1,
            "input_cost_per_token_batches: invalid value": 1,
            "search_context_cost_per_query: invalid value": 1,
            "tiered_pricing": 1,
            "<entry>: not an object": 1,
            "input_cost_per_token": 1,  # no litellm_provider
        }
    )
    assert doc["providers"][0]["models"][0]["prices"] == [{"prices": {"output_audio_mtok": "20"}}]


def test_float_input_and_float_artefacts_stay_exact():
    _, _, catalog = _convert(
        {
            "from-floats": {"litellm_provider": "x", "input_cost_per_token": 2.5e-06},
            # LiteLLM's text, read exactly: the artefact is kept rather than rounded away.
            "artefact": {"litellm_provider": "x", "input_cost_per_token": Decimal("1.0000000000000001e-07")},
            "large": {"litellm_provider": "x", "input_cost_per_token": Decimal("0.0001")},
        }
    )
    assert _prices_of(catalog, "x", "from-floats") == {"input_mtok": Decimal("2.5")}
    assert str(_prices_of(catalog, "x", "artefact")["input_mtok"]) == "0.10000000000000001"
    assert str(_prices_of(catalog, "x", "large")["input_mtok"]) == "100"


# -- file handling ------------------------------------------------------------------------------------------


def test_looks_like_litellm():
    raw = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert litellm.looks_like_litellm(raw)
    assert not litellm.looks_like_litellm([{"id": "openai", "api_pattern": "x"}])
    assert not litellm.looks_like_litellm({"schema_version": 1, "providers": []})
    assert not litellm.looks_like_litellm({"sample_spec": {"litellm_provider": "one of ..."}})
    assert not litellm.looks_like_litellm({})


def test_import_file_takes_a_source_version_and_refuses_other_json(tmp_path):
    doc = litellm.import_file(FIXTURE, source_version="1.109.1")
    assert doc["source_version"] == "1.109.1"
    other = tmp_path / "other.json"
    other.write_text('{"providers": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="LiteLLM price file"):
        litellm.import_file(other)


def test_the_engine_prices_with_the_imported_catalog():
    engine = load_engine(catalogs=[_catalog()])
    at = datetime(2025, 9, 1, tzinfo=UTC)
    result = engine.price("gpt-4o", Usage(input_tokens=1_000_000), provider="openai", timestamp=at)
    assert result.status == PRICED and result.cost_usd == Decimal("2.5")
    # 300k input tokens is past gemini-2.5-pro's 200k threshold: the whole input at 2.5 per MTok.
    result = engine.price("gemini-2.5-pro", Usage(input_tokens=300_000), provider="vertex_ai", timestamp=at)
    assert result.cost_usd == Decimal("0.75")
    result = engine.price(
        "gpt-4o", Usage(input_tokens=1_000_000), provider="azure", timestamp=at, service_tier="batch"
    )
    assert result.model == "azure/gpt-4o" and result.cost_usd == Decimal("1.25")
