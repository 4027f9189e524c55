"""The pricing rules the engine must get right, each checked against the provider's public price.

Rates are quoted from the provider pages named in each test (and carried by the embedded catalog,
compiled from genai-prices 0.2.3). Expected amounts are worked out by hand from those rates.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from costspan.pricing import (
    ESTIMATED,
    INVALID_USAGE,
    NO_USAGE,
    PRICED,
    SOURCE_PROVIDER,
    UNKNOWN_MODEL,
    PricingEngine,
    Usage,
    embedded_catalog,
)
from costspan.pricing._corrections import default_corrections

D = Decimal
AUG_2025 = datetime(2025, 8, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine() -> PricingEngine:
    return PricingEngine([embedded_catalog()])


def price(engine, model, provider=None, at=AUG_2025, **kwargs):
    tier = kwargs.pop("service_tier", None)
    cost = kwargs.pop("provider_cost", None)
    return engine.price(
        model,
        Usage.from_mapping(kwargs),
        provider=provider,
        timestamp=at,
        service_tier=tier,
        provider_cost=cost,
    )


# -- token buckets ---------------------------------------------------------------------------------------


def test_anthropic_cache_buckets(engine):
    # https://docs.anthropic.com/en/docs/about-claude/pricing : Claude Sonnet 4.5 $3 input, $3.75 5m cache
    # write (1.25x), $6 1h cache write (2x), $0.30 cache read (0.1x), $15 output, per million tokens.
    r = price(
        engine,
        "claude-sonnet-4-5",
        "anthropic",
        input_tokens=100_000,
        cache_read_tokens=60_000,
        cache_write_tokens=30_000,
        cache_write_1h_tokens=10_000,
        output_tokens=2_000,
    )
    assert r.status == PRICED
    # uncached input = 100k - 60k read - 30k written = 10k
    assert r.breakdown["input"] == D("0.03")
    assert r.breakdown["cache_read"] == D("0.018")  # 60k x 0.30
    assert r.breakdown["cache_write"] == D("0.075") + D("0.06")  # 20k x 3.75 + 10k x 6
    assert r.breakdown["output"] == D("0.03")
    assert r.cost_usd == D("0.213")


def test_input_includes_cache_and_output_includes_reasoning(engine):
    # https://openai.com/api/pricing : o3 $2 input, $0.50 cached input, $8 output (after 2025-06-10).
    r = price(
        engine,
        "o3",
        "openai",
        input_tokens=10_000,
        cache_read_tokens=4_000,
        output_tokens=5_000,
        reasoning_tokens=4_500,
    )
    assert r.breakdown["input"] == D("0.012")  # 6k uncached x 2
    assert r.breakdown["cache_read"] == D("0.002")  # 4k x 0.5
    # o3 has no separate reasoning rate: reasoning tokens are output tokens, charged once
    assert r.breakdown["output"] == D("0.04")
    assert r.breakdown["reasoning"] == 0
    assert r.cost_usd == D("0.054")


def test_reasoning_has_its_own_rate_where_one_exists(engine):
    # https://docs.perplexity.ai/getting-started/pricing : Sonar Deep Research $2 input, $8 output,
    # $3 reasoning per million tokens, $5 per 1000 searches.
    r = price(
        engine,
        "sonar-deep-research",
        "perplexity",
        input_tokens=1_000,
        output_tokens=10_000,
        reasoning_tokens=8_000,
        web_searches=3,
    )
    assert r.breakdown["reasoning"] == D("0.024")  # 8k x 3
    assert r.breakdown["output"] == D("0.016")  # the other 2k x 8
    assert r.breakdown["other"] == D("0.015")  # 3 searches x $5/1000
    assert r.cost_usd == D("0.002") + D("0.024") + D("0.016") + D("0.015")


def test_audio_tokens(engine):
    # https://openai.com/api/pricing : gpt-4o-realtime-preview text $5 in / $20 out, audio $40 in / $80 out.
    r = price(
        engine,
        "gpt-4o-realtime-preview",
        "openai",
        input_tokens=3_000,
        input_audio_tokens=2_000,
        output_tokens=1_500,
        output_audio_tokens=1_000,
    )
    assert r.breakdown["input"] == D("0.005") + D("0.08")  # 1k text x 5 + 2k audio x 40
    assert r.breakdown["output"] == D("0.01") + D("0.08")  # 500 text x 20 + 1k audio x 80


def test_image_tokens(engine):
    # https://ai.google.dev/gemini-api/docs/pricing : Gemini 2.5 Flash Image $30 per million output image
    # tokens
    # ($0.039 per 1290-token image), text output $2.50.
    r = price(
        engine,
        "gemini-2.5-flash-image",
        "google",
        input_tokens=500,
        output_tokens=1_290,
        output_image_tokens=1_290,
    )
    assert r.breakdown["output"] == D("0.0387")
    assert r.breakdown["input"] == D("0.00015")


def test_per_request_fee(engine):
    # https://docs.perplexity.ai/getting-started/pricing : Sonar $1/$1 per million tokens plus a request fee
    # ($12 per 1000 requests at the catalog's default search context size).
    r = price(engine, "sonar", "perplexity", input_tokens=1_000, output_tokens=500)
    assert r.breakdown["other"] == D("0.012")
    assert r.cost_usd == D("0.001") + D("0.0005") + D("0.012")


def test_web_search_per_query(engine):
    # https://docs.anthropic.com/en/docs/about-claude/pricing : web search $10 per 1,000 searches.
    r = price(engine, "claude-sonnet-4-5", "anthropic", input_tokens=0, output_tokens=0, web_searches=4)
    assert r.breakdown["other"] == D("0.04")


def test_per_character_speech(engine):
    # https://openai.com/api/pricing : TTS $15 per million characters.
    r = price(engine, "tts-1", "openai", input_characters=2_000)
    assert r.cost_usd == D("0.03")
    assert r.breakdown["input"] == D("0.03")


def test_per_second_transcription(engine):
    # https://openai.com/api/pricing : Whisper $0.006 per minute ($0.36 per hour).
    r = price(engine, "whisper-1", "openai", input_audio_seconds=90)
    assert r.cost_usd == D("0.009")


def test_transcription_minimum_billed_seconds(engine):
    # https://groq.com/pricing : Whisper Large v3 $0.111 per hour, minimum 10 seconds per request.
    short = price(engine, "whisper-large-v3", "groq", audio_seconds=3)
    assert short.cost_usd == D("0.111") * 10 / 3600
    longer = price(engine, "whisper-large-v3", "groq", audio_seconds=30)
    assert longer.cost_usd == D("0.111") * 30 / 3600


def test_embeddings_price_input_only(engine):
    # https://openai.com/api/pricing : text-embedding-3-small $0.02 per million tokens.
    r = price(engine, "text-embedding-3-small", "openai", input_tokens=50_000)
    assert r.cost_usd == D("0.001")
    assert r.breakdown["output"] == 0


# -- inconsistent usage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "fragment"),
    [
        ({"input_tokens": 100, "cache_read_tokens": 150}, "inconsistent usage"),
        ({"input_tokens": 100, "output_tokens": 10, "reasoning_tokens": 11}, "inconsistent usage"),
        ({"input_tokens": 100, "cache_write_tokens": 10, "cache_write_1h_tokens": 20}, "inconsistent usage"),
        ({"input_tokens": -5}, "negative"),
        ({"input_tokens": float("nan")}, "not finite"),
        ({"output_tokens": float("inf")}, "not finite"),
        ({"input_tokens": 10**12}, "implausibly large"),
        ({"input_tokens": 10.5}, "fractional"),
        ({"input_tokens": "100"}, "not a number"),
        ({"input_tokens": True}, "not a number"),
        ({"input_tokens": 10, "web_searches": -1}, "negative"),
        ({"input_tokens": 10, "input_audio_tokens": 2.5}, "fractional"),
    ],
)
def test_nonsense_usage_is_flagged_not_raised(engine, usage, fragment):
    r = price(engine, "claude-sonnet-4-5", "anthropic", **usage)
    assert r.status == INVALID_USAGE
    assert r.cost_usd is None
    assert fragment in r.detail
    assert r.model == "claude-sonnet-4-5"  # still says what it was


def test_no_usage_is_its_own_status(engine):
    r = engine.price("gpt-4o", Usage(), provider="openai")
    assert r.status == NO_USAGE and r.cost_usd is None


def test_fractional_seconds_are_fine(engine):
    r = price(engine, "whisper-1", "openai", input_audio_seconds=1.5)
    assert r.cost_usd == D("0.36") * D("1.5") / 3600


# -- tiers, service tiers, dates --------------------------------------------------------------------------


def test_long_context_tier_prices_the_whole_request(engine):
    # https://ai.google.dev/gemini-api/docs/pricing : Gemini 2.5 Pro $1.25 / $10 up to 200k prompt tokens,
    # $2.50 / $15 for prompts above 200k; the whole request pays the higher rate.
    at_threshold = price(engine, "gemini-2.5-pro", "google", input_tokens=200_000, output_tokens=1_000)
    assert at_threshold.cost_usd == D("0.25") + D("0.01")
    above = price(engine, "gemini-2.5-pro", "google", input_tokens=200_001, output_tokens=1_000)
    assert above.cost_usd == D("2.5") * 200_001 / 1_000_000 + D("0.015")


def test_service_tiers_from_the_response(engine):
    # https://platform.openai.com/docs/pricing (Flex and Priority tables, verified 2026-10-12 in the catalog):
    # o3 standard $2 / $8, flex $1 / $4, priority $3.50 / $14.
    at = datetime(2026, 11, 1, tzinfo=UTC)
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert price(engine, "o3", "openai", at, **usage).cost_usd == D("10")
    assert price(engine, "o3", "openai", at, service_tier="flex", **usage).cost_usd == D("5")
    assert price(engine, "o3", "openai", at, service_tier="priority", **usage).cost_usd == D("17.5")
    assert price(engine, "o3", "openai", at, service_tier="default", **usage).cost_usd == D("10")
    assert price(engine, "o3", "openai", at, service_tier="batch", **usage).cost_usd == D("5")


def test_batch_is_half_price_even_before_the_catalog_lists_batch_rates(engine):
    # https://platform.openai.com/docs/guides/batch : "50% cost discount" on batch requests. The catalog's
    # batch variant for gpt-4o-mini starts 2026-10-14; a batch call from 2025 is still billed at half.
    r = price(
        engine, "gpt-4o-mini", "openai", input_tokens=1_000_000, output_tokens=1_000_000, service_tier="batch"
    )
    assert r.cost_usd == (D("0.15") + D("0.6")) / 2
    assert any(rule.startswith("batch x0.5") for rule in r.rules)


def test_effective_dates_o3_price_cut(engine):
    # OpenAI cut o3 from $10 / $40 to $2 / $8 on 2025-06-10 (https://openai.com/api/pricing).
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    before = price(engine, "o3", "openai", datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC), **usage)
    after = price(engine, "o3", "openai", datetime(2025, 6, 10, 0, 0, tzinfo=UTC), **usage)
    assert before.cost_usd == D("50")
    assert after.cost_usd == D("10")
    assert after.price_start == "2025-06-10"


def test_time_of_day_prices(engine):
    # https://api-docs.deepseek.com/quick_start/pricing : deepseek-chat off-peak (16:30-00:30 UTC) discount.
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    peak = price(engine, "deepseek-chat", "deepseek", datetime(2025, 6, 1, 12, tzinfo=UTC), **usage)
    off_peak = price(engine, "deepseek-chat", "deepseek", datetime(2025, 6, 1, 20, tzinfo=UTC), **usage)
    assert peak.cost_usd == D("0.27") + D("1.1")
    assert off_peak.cost_usd == D("0.135") + D("0.55")


def test_one_hour_cache_writes_at_twice_input_where_the_entry_lacks_them(engine):
    # Anthropic: 1h cache writes cost 2x base input (https://docs.anthropic.com/en/docs/about-claude/pricing).
    # The Vertex AI entry for Claude 3.5 Sonnet lists only the 5m write price ($3.75 on $3 input).
    r = price(
        engine,
        "claude-3-5-sonnet-v2@20241022",
        "google",
        input_tokens=10_000,
        cache_write_tokens=10_000,
        cache_write_1h_tokens=4_000,
    )
    assert r.breakdown["cache_write"] == D("3.75") * 6_000 / 10**6 + D("6") * 4_000 / 10**6
    assert any(rule.startswith("1h cache write at 2x") for rule in r.rules)


# -- regions and platforms --------------------------------------------------------------------------------


def test_bedrock_regional_profiles_carry_their_own_price(engine):
    # https://aws.amazon.com/bedrock/pricing : Claude Sonnet 4.5 regional (geo) profiles cost 10% more than
    # global ones ($3.30 vs $3 input).
    usage = {"input_tokens": 1_000_000}
    eu = price(engine, "eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws", **usage)
    glob = price(engine, "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws", **usage)
    assert eu.cost_usd == D("3.3")
    assert glob.cost_usd == D("3")


def test_bedrock_arn_and_unlisted_region_profile(engine):
    arn = (
        "arn:aws:bedrock:eu-west-1:111122223333:inference-profile/"
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    )
    r = price(engine, arn, input_tokens=1_000_000)
    assert r.status == PRICED and r.provider == "aws" and r.cost_usd == D("3.3")
    assert "Bedrock ARN reduced to its model id" in r.rules
    foundation = price(
        engine, "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0", input_tokens=1_000
    )
    assert foundation.status == PRICED and foundation.provider == "aws"


def test_azure_falls_back_to_openai_prices(engine):
    r = price(engine, "gpt-4o", "azure.ai.openai", input_tokens=1_000_000)
    assert r.provider == "azure" and r.cost_usd == D("2.5")
    assert "'azure' falls back to 'openai' prices" in r.rules


def test_vertex_version_suffix(engine):
    r = price(engine, "claude-3-5-sonnet-v2@20241022", "gcp.vertex_ai", input_tokens=1_000_000)
    assert r.status == PRICED and r.provider == "google" and r.cost_usd == D("3")


# -- name resolution ------------------------------------------------------------------------------------


def test_dated_snapshots_keep_their_own_price(engine):
    # https://openai.com/api/pricing : gpt-4o-2024-05-13 $5 / $15; gpt-4o $2.50 / $10.
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert price(engine, "gpt-4o-2024-05-13", "openai", **usage).cost_usd == D("20")
    assert price(engine, "gpt-4o", "openai", **usage).cost_usd == D("12.5")


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("openai/gpt-4o-mini", None),
        ("openai/gpt-4o-mini", "litellm"),
        ("GPT-4o-Mini", "OpenAI"),
        ("gpt-4o-mini", "openai"),
        ("azure/gpt-4o-mini", None),
    ],
)
def test_prefixes_and_case(engine, model, provider):
    r = price(engine, model, provider, input_tokens=1_000_000)
    assert r.status == PRICED, r.detail
    assert r.model == "gpt-4o-mini" and r.cost_usd == D("0.15")


def test_gemini_resource_prefix(engine):
    r = price(engine, "models/gemini-2.5-flash", "gcp.gemini", input_tokens=1_000_000)
    assert r.status == PRICED and r.model == "gemini-2.5-flash"


def test_fine_tuned_models(engine):
    # https://openai.com/api/pricing (fine-tuning): gpt-4o-mini fine-tuned inference $0.30 / $1.20.
    r = price(
        engine,
        "ft:gpt-4o-mini-2024-07-18:acme::AbC123",
        "openai",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
    )
    assert r.status == PRICED and r.cost_usd == D("1.5")
    # a fine-tune the catalog has no entry for is priced at its base model and flagged as an estimate
    est = price(engine, "ft:open-mistral-7b:587a6b29:20240514:7e773925", "mistral", input_tokens=1_000_000)
    assert est.status == ESTIMATED and est.model == "mistral-7b"
    assert est.rules[0] == "fine-tuned model priced at its base model's rates"


def test_unknown_model_is_a_status(engine):
    r = price(engine, "my-private-model", "openai", input_tokens=10)
    assert r.status == UNKNOWN_MODEL and r.cost_usd is None
    assert "my-private-model" in r.detail
    unknown_provider = price(engine, "llama3.1:8b", "ollama", input_tokens=10)
    assert unknown_provider.status == UNKNOWN_MODEL
    assert "provider 'ollama' is not in the catalog" in unknown_provider.detail
    assert price(engine, "", None, input_tokens=1).status == UNKNOWN_MODEL
    assert engine.price(None, Usage(input_tokens=1)).status == UNKNOWN_MODEL


def test_provider_reported_cost_wins(engine):
    r = price(
        engine,
        "anthropic/claude-3.5-sonnet",
        "openrouter",
        input_tokens=1_000,
        output_tokens=200,
        provider_cost="0.0061",
    )
    assert r.source == SOURCE_PROVIDER
    assert r.cost_usd == D("0.0061")
    assert r.local_cost_usd == D("0.006")
    assert sum(r.breakdown.values()) == D("0.0061")
    # even for a model the catalog does not know
    unknown = price(engine, "some/new-model", "openrouter", input_tokens=10, provider_cost=D("0.5"))
    assert (
        unknown.cost_usd == D("0.5") and unknown.status == UNKNOWN_MODEL and unknown.source == SOURCE_PROVIDER
    )
    bad = price(engine, "gpt-4o", "openai", input_tokens=10, provider_cost="NaN")
    assert bad.source == "local" and bad.warnings


def test_every_result_carries_the_catalog_version(engine):
    for r in (price(engine, "gpt-4o", "openai", input_tokens=1), price(engine, "nope", None, input_tokens=1)):
        assert r.catalog_version == (
            "genai-prices@0.2.3/" + embedded_catalog().built_at[:10] + "+" + default_corrections().version
        )


def test_timestamps_in_other_zones_are_converted_to_utc(engine):
    from datetime import timedelta, timezone

    # 2025-06-10 01:00 in UTC+02:00 is still 2025-06-09 UTC: o3's old price.
    stamp = datetime(2025, 6, 10, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    r = price(engine, "o3", "openai", stamp, input_tokens=1_000_000)
    assert r.cost_usd == D("10")


def test_unpriced_units_are_reported(engine):
    r = price(engine, "gpt-4o-mini", "openai", input_tokens=10, output_images=2)
    assert r.status == PRICED
    assert r.warnings == ("reported but not priced for this model: output_images",)


def test_azure_data_zone_deployments(engine):
    # Azure Retail Prices API, Azure OpenAI meters: gpt-4o 2024-08-06 input $0.0025/1K Global,
    # $0.00275/1K Data Zone.
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    glob = engine.price("gpt-4o", usage, provider="azure", timestamp=AUG_2025)
    zone = engine.price(
        "gpt-4o", usage, provider="azure", timestamp=AUG_2025, context={"deployment": "data_zone"}
    )
    assert glob.cost_usd == D("12.5")
    assert zone.cost_usd == D("13.75")
    assert any(rule.startswith("data_zone deployment x1.1") for rule in zone.rules)
    # the deployment type means nothing to a provider without such pricing
    direct = engine.price(
        "gpt-4o", usage, provider="openai", timestamp=AUG_2025, context={"deployment": "data_zone"}
    )
    assert direct.cost_usd == D("12.5")


def test_second_source_prices_per_image_and_what_the_first_lacks():
    # LiteLLM's price file (fixture from litellm 1.109.1) as a second catalog: OpenAI's gpt-image-1 at low
    # quality, 1024x1024, is $0.011 per image (https://openai.com/api/pricing).
    from pathlib import Path

    from costspan.pricing import Catalog
    from costspan.pricing.importers.litellm import import_file

    fixture = Path(__file__).with_name("fixtures") / "litellm_prices_sample.json"
    engine = PricingEngine([embedded_catalog(), Catalog.from_json(import_file(fixture))])
    image = engine.price("low/1024-x-1024/gpt-image-1", Usage(other={"output_images": 3}), provider="openai")
    assert image.status == PRICED and image.cost_usd == D("0.033")
    assert image.breakdown["output"] == D("0.033")
    assert image.catalog_version.startswith("genai-prices@0.2.3/") and "+ litellm@" in image.catalog_version
    # the primary catalog still wins where it knows the model
    assert engine.price("gpt-4o", Usage(input_tokens=1_000_000), provider="openai").model == "gpt-4o"


def test_no_model_and_no_usage_is_no_usage(engine):
    # an HTTP-level span: a call happened, with neither model nor usage known
    assert engine.price(None, Usage()).status == NO_USAGE


def test_without_a_provider_the_model_is_looked_up_everywhere(engine):
    # the name suggests Anthropic, whose list has no Bedrock profile ids; Bedrock's list has it
    r = price(engine, "us.anthropic.claude-sonnet-4-20250514-v1:0", None, input_tokens=1_000_000)
    assert r.status == ESTIMATED and r.provider == "aws"
    assert r.rules[-1] == "no provider reported: priced as listed by 'aws'"
    # a name that resolves directly keeps its status
    assert price(engine, "gpt-4o", None, input_tokens=1).status == PRICED
