"""The corrections layer: published prices laid over genai-prices' catalog when it is loaded.

Each pricing test below prices a call through the real engine over the embedded catalog as costspan loads
it, and checks the figure the provider publishes (the correction's source), against the figure the
uncorrected catalog gives, so each test fails without its correction.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources

import pytest

from costspan.pricing import ESTIMATED, PRICED, PricingEngine, Usage, embedded_catalog, installed_catalogs
from costspan.pricing._catalog import Catalog, read_document
from costspan.pricing._corrections import (
    CorrectionError,
    apply_corrections,
    default_corrections,
    load_corrections,
    parse_corrections,
)

D = Decimal
M = 1_000_000


@pytest.fixture(scope="module")
def corrected() -> PricingEngine:
    return PricingEngine([embedded_catalog()])


@pytest.fixture(scope="module")
def uncorrected() -> PricingEngine:
    return PricingEngine([embedded_catalog(corrected=False)])


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def cost(engine: PricingEngine, model: str, provider: str, when: datetime, tier: str | None = None, **usage):
    result = engine.price(
        model, Usage.from_mapping(usage), provider=provider, timestamp=when, service_tier=tier
    )
    assert result.status in (PRICED, ESTIMATED), result.detail
    return result


def raw_document() -> dict:
    ref = resources.files("costspan.pricing").joinpath("data/catalog.json")
    with resources.as_file(ref) as path:
        return read_document(path)


# -- the shipped file ---------------------------------------------------------------------------------


def test_every_shipped_correction_changes_the_catalog_and_names_its_source():
    corrections = default_corrections()
    assert len(corrections.entries) >= 15
    _, applied = apply_corrections(raw_document(), corrections)
    assert applied.stale == []  # each correction still finds what it corrects
    used = set(applied.fields.values())
    assert used == {c.id for c in corrections.entries}
    for entry in corrections.entries:
        assert entry.source.startswith("https://") and entry.checked.year >= 2025
        assert entry.note, entry.id


def test_the_loaded_catalog_says_it_is_corrected():
    catalog = embedded_catalog()
    assert catalog.version == (f"genai-prices@0.2.3/{catalog.built_at[:10]}+{default_corrections().version}")
    assert embedded_catalog(corrected=False).corrections is None


def test_an_imported_genai_prices_catalog_is_corrected_too(tmp_path):
    folder = tmp_path / "pricing"
    folder.mkdir()
    (folder / "genai-prices.json").write_text(json.dumps(raw_document()))
    (primary,) = installed_catalogs(tmp_path)
    assert primary.path == str(folder / "genai-prices.json")
    assert primary.corrections == default_corrections().version
    engine = PricingEngine([primary])
    flex = cost(engine, "o4-mini", "openai", at("2025-05-01"), "flex", input_tokens=M)
    assert flex.cost_usd == D("0.55")


# -- each class of correction, priced -----------------------------------------------------------------


def test_flex_before_the_old_wrong_start_date_gets_the_flex_rate(corrected, uncorrected):
    # OpenAI launched flex for o3 and o4-mini on 2025-04-17; genai-prices dates it from 2026-10-12.
    usage = {"input_tokens": M, "output_tokens": M}
    may = at("2025-05-01")
    assert cost(corrected, "o4-mini", "openai", may, "flex", **usage).cost_usd == D("2.75")  # 0.55 + 2.20
    assert cost(uncorrected, "o4-mini", "openai", may, "flex", **usage).cost_usd == D("5.5")  # standard
    # o3's flex rates followed its 2025-06-10 price cut: $5 / $20 at launch, $1 / $4 after
    assert cost(corrected, "o3", "openai", may, "flex", **usage).cost_usd == D("25")
    assert cost(corrected, "o3", "openai", at("2025-07-01"), "flex", **usage).cost_usd == D("5")
    flex = cost(corrected, "o3", "openai", at("2025-07-01"), "flex", **usage)
    assert "variant service_tier=flex from 2025-06-10" in flex.rules
    # the standard tier is untouched
    assert cost(corrected, "o3", "openai", may, **usage).cost_usd == D("50")


def test_priority_and_gpt_5_tiers_from_their_dated_start(corrected, uncorrected):
    usage = {"input_tokens": M, "output_tokens": M}
    july = at("2025-07-01")
    # gpt-4o priority: $4.25 / $17 (https://openai.com/api-priority-processing/)
    assert cost(corrected, "gpt-4o", "openai", july, "priority", **usage).cost_usd == D("21.25")
    assert cost(uncorrected, "gpt-4o", "openai", july, "priority", **usage).cost_usd == D("12.5")
    # before the earliest dated record of the priority tier, the standard rate
    assert cost(corrected, "gpt-4o", "openai", at("2025-06-01"), "priority", **usage).cost_usd == D("12.5")
    # GPT-5 from its release on 2025-08-07: flex $0.625 / $5, priority $2.50 / $20
    sept = at("2025-09-01")
    assert cost(corrected, "gpt-5", "openai", sept, "flex", **usage).cost_usd == D("5.625")
    assert cost(corrected, "gpt-5-2025-08-07", "openai", sept, "priority", **usage).cost_usd == D("22.5")
    assert cost(uncorrected, "gpt-5", "openai", sept, "flex", **usage).cost_usd == D("11.25")
    # GPT-5.5 from its launch on 2026-04-23: flex $2.50 / $15, priority $12.50 / $75 (below 272K input tokens)
    may, short = at("2026-05-01"), {"input_tokens": 100_000, "output_tokens": 100_000}
    assert cost(corrected, "gpt-5.5", "openai", may, "flex", **short).cost_usd == D("1.75")
    assert cost(corrected, "gpt-5.5", "openai", may, "priority", **short).cost_usd == D("8.75")
    assert cost(uncorrected, "gpt-5.5", "openai", may, "flex", **short).cost_usd == D("3.5")
    assert cost(corrected, "gpt-5.5", "openai", at("2026-04-20"), "flex", **short).cost_usd == D("3.5")


def test_o3_cached_input_at_launch(corrected, uncorrected):
    usage = {"input_tokens": M, "cache_read_tokens": M}
    assert cost(corrected, "o3", "openai", at("2025-05-01"), **usage).cost_usd == D("2.5")
    assert cost(uncorrected, "o3", "openai", at("2025-05-01"), **usage).cost_usd == D("0.5")
    assert cost(corrected, "o3", "openai", at("2025-07-01"), **usage).cost_usd == D("0.5")


@pytest.mark.parametrize(
    ("model", "published"),
    [
        # https://platform.openai.com/docs/pricing#fine-tuning: input, cached input, output per 1M tokens
        ("ft:gpt-4.1-2025-04-14:acme:support:AbC123", ("3", "0.75", "12")),
        ("ft:gpt-4.1-mini-2025-04-14:acme::x1", ("0.8", "0.2", "3.2")),
        ("ft:gpt-4.1-nano-2025-04-14:acme::x1", ("0.2", "0.05", "0.8")),
        ("ft:o4-mini-2025-04-16:acme::rft1", ("4", "1", "16")),
        ("ft:gpt-4o-2024-08-06:acme::x1", ("3.75", "1.875", "15")),
        ("ft:gpt-4o-mini-2024-07-18:acme::x1", ("0.3", "0.15", "1.2")),
    ],
)
def test_fine_tuned_models_get_the_fine_tune_rate(corrected, model, published):
    inp, cached, out = (D(x) for x in published)
    result = cost(
        corrected, model, "openai", at("2025-11-01"), input_tokens=2 * M, cache_read_tokens=M, output_tokens=M
    )
    assert result.status == PRICED  # a published rate, not an estimate
    assert result.cost_usd == inp + cached + out
    assert result.model.startswith("ft:")


def test_fine_tune_rates_replace_the_base_model_estimate(uncorrected, corrected):
    name = "ft:gpt-4.1-2025-04-14:acme::x1"
    before = cost(uncorrected, name, "openai", at("2025-11-01"), input_tokens=M, output_tokens=M)
    after = cost(corrected, name, "openai", at("2025-11-01"), input_tokens=M, output_tokens=M)
    assert before.status == ESTIMATED and before.cost_usd == D("10")  # gpt-4.1's $2 / $8
    assert after.status == PRICED and after.cost_usd == D("15")  # $3 / $12
    # a batch call of a fine-tune: OpenAI's 50% batch discount (rules.json)
    batch = cost(corrected, name, "openai", at("2025-11-01"), "batch", input_tokens=M, output_tokens=M)
    assert batch.cost_usd == D("7.5")


def test_audio_tokens_of_audio_models_get_the_audio_rate(corrected, uncorrected):
    # gpt-4o-audio-preview: text $2.50 / $10, audio $40 / $80 per 1M tokens
    usage = {"input_tokens": 2 * M, "input_audio_tokens": M, "output_tokens": 2 * M, "output_audio_tokens": M}
    day = at("2025-11-01")
    assert cost(corrected, "gpt-4o-audio-preview", "openai", day, **usage).cost_usd == D("132.5")
    assert cost(uncorrected, "gpt-4o-audio-preview", "openai", day, **usage).cost_usd == D("25")
    mini = cost(corrected, "gpt-4o-mini-audio-preview-2024-12-17", "openai", day, **usage)
    assert mini.cost_usd == D("30.75")  # 0.15 + 10 + 0.60 + 20


def test_missing_long_context_tiers(corrected, uncorrected):
    day = at("2025-11-01")
    # Claude Sonnet 4 above 200K input tokens: $6 / $22.50, as Sonnet 4.5
    long = {"input_tokens": 300_000, "output_tokens": 10_000}
    assert cost(corrected, "claude-sonnet-4-20250514", "anthropic", day, **long).cost_usd == D("2.025")
    assert cost(uncorrected, "claude-sonnet-4-20250514", "anthropic", day, **long).cost_usd == D("1.05")
    short = {"input_tokens": 100_000, "output_tokens": 10_000}
    assert cost(corrected, "claude-sonnet-4-20250514", "anthropic", day, **short).cost_usd == D("0.45")
    # Grok 4 above 128K: $6 / $30; Grok 4 Fast above 128K: $0.40 / $1
    assert cost(corrected, "grok-4", "xai", day, input_tokens=200_000).cost_usd == D("1.2")
    assert cost(uncorrected, "grok-4", "xai", day, input_tokens=200_000).cost_usd == D("0.6")
    assert cost(corrected, "grok-4-fast", "x-ai", day, input_tokens=200_000).cost_usd == D("0.08")


def test_2025_price_history(corrected, uncorrected):
    usage = {"input_tokens": M, "output_tokens": M}
    # DeepSeek before 2025-09-05: standard hours and the off-peak discount (16:30-00:30 UTC)
    assert cost(corrected, "deepseek-chat", "deepseek", at("2025-08-01", 12), **usage).cost_usd == D("1.37")
    assert cost(corrected, "deepseek-chat", "deepseek", at("2025-08-01", 18), **usage).cost_usd == D("0.685")
    # V3.1 from 2025-09-05, at any hour: $0.56 / $1.68
    for hour in (12, 18):
        sept = cost(corrected, "deepseek-reasoner", "deepseek", at("2025-09-10", hour), **usage)
        assert sept.cost_usd == D("2.24")
    assert cost(uncorrected, "deepseek-reasoner", "deepseek", at("2025-09-10", 12), **usage).cost_usd == D(
        "2.74"
    )
    # V3.2-Exp from 2025-09-29: $0.28 / $0.42
    assert cost(corrected, "deepseek-chat", "deepseek", at("2025-10-01", 18), **usage).cost_usd == D("0.70")


def test_gemini_flex_and_priority_tiers_through_their_price_changes(corrected, uncorrected):
    # Google bills Flex at 50% of the standard price per token; genai-prices lists no flex tier for these
    usage = {"input_tokens": M, "output_tokens": M}
    dec = at("2026-12-06")
    assert cost(corrected, "gemini-3.5-flash", "google", dec, "flex", **usage).cost_usd == D(
        "5.25"
    )  # .75+4.5
    assert cost(uncorrected, "gemini-3.5-flash", "google", dec, "flex", **usage).cost_usd == D("10.5")
    # long-context tiers halve with the base rate: 2.5 Pro above 200K input tokens, $1.25 / $7.50
    long = {"input_tokens": 300_000, "output_tokens": M}
    assert cost(corrected, "gemini-2.5-pro", "google", dec, "flex", **long).cost_usd == D("7.875")
    # a tier whose standard rates change on a date (variant_history): Gemini 4 Argon doubled on 2026-12-01,
    # Gemini 3.8 Flash doubles on 2027-01-01; flex follows, and the standard tier is untouched
    assert cost(corrected, "gemini-4-argon", "google", at("2026-11-15"), "flex", **usage).cost_usd == D("6")
    assert cost(corrected, "gemini-4-argon", "google", dec, "flex", **usage).cost_usd == D("12")
    assert cost(corrected, "gemini-4-argon", "google", dec, **usage).cost_usd == D("24")
    assert cost(corrected, "gemini-3.8-flash", "google", dec, "flex", **usage).cost_usd == D("2.25")
    assert cost(corrected, "gemini-3.8-flash", "google", at("2027-01-15"), "flex", **usage).cost_usd == D(
        "4.5"
    )
    # priority at 1.8x standard where Google's pricing page says so (Gemini 3.8 Flash: $1.35 / $6.75)
    assert cost(corrected, "gemini-3.8-flash", "google", dec, "priority", **usage).cost_usd == D("8.1")
    assert cost(uncorrected, "gemini-3.8-flash", "google", dec, "priority", **usage).cost_usd == D("4.5")
    assert cost(corrected, "gemini-4-argon", "google", dec, "priority", **usage).cost_usd == D("43.2")
    cached = {"input_tokens": 2 * M, "cache_read_tokens": M}  # 1M uncached at $0.375, 1M read at $0.0375
    assert cost(corrected, "gemini-3.8-flash", "google", dec, "flex", **cached).cost_usd == D("0.4125")


def test_azure_batch_at_half_the_global_standard_rate(corrected, uncorrected):
    # Azure OpenAI global batch: 50% less than global standard (rules.json, Microsoft Learn's batch guide)
    usage = {"input_tokens": M, "output_tokens": M}
    dec = at("2026-12-06")
    standard = cost(corrected, "o4-mini", "azure", dec, **usage).cost_usd
    batch = cost(corrected, "o4-mini", "azure", dec, "batch", **usage)
    assert standard == D("5.5") and batch.cost_usd == D("2.75")


def test_bedrock_batch_and_flex_at_half_the_standard_rate(corrected, uncorrected):
    # Bedrock batch inference: 50% less than on-demand (rules.json); the Flex tier at a 50% discount
    usage = {"input_tokens": M, "output_tokens": M}
    dec = at("2026-12-06")
    assert cost(corrected, "amazon.nova-pro-v1:0", "aws", dec, **usage).cost_usd == D("4")  # 0.80 + 3.20
    assert cost(corrected, "amazon.nova-pro-v1:0", "aws", dec, "batch", **usage).cost_usd == D("2")
    assert cost(uncorrected, "amazon.nova-pro-v1:0", "aws", dec, "flex", **usage).cost_usd == D("4")
    assert cost(corrected, "amazon.nova-pro-v1:0", "aws", dec, "flex", **usage).cost_usd == D("2")
    # a cross-region profile the catalog lists: the regional premium is kept, then halved
    flex = cost(corrected, "us.moonshotai.kimi-k3", "aws", dec, "flex", **usage)
    assert flex.cost_usd == D("9.9")  # (3.30 + 16.50) / 2


def test_mistral_cache_hits_at_a_tenth_of_the_input_rate(corrected, uncorrected):
    # Mistral bills cached prompt tokens at 10% of the standard input price
    usage = {"input_tokens": 2 * M, "cache_read_tokens": M}
    dec = at("2026-12-06")
    assert cost(corrected, "pixtral-large-latest", "mistral", dec, **usage).cost_usd == D("2.2")  # 2 + 0.2
    assert cost(uncorrected, "pixtral-large-latest", "mistral", dec, **usage).cost_usd == D("4")


def test_web_search_calls_are_charged_on_every_model(corrected, uncorrected):
    # the web_search tool is $10 per 1K calls whatever the model; search-preview models $25
    dec = at("2026-12-06")
    assert cost(corrected, "o3-pro", "openai", dec, web_searches=1000).cost_usd == D("10")
    assert cost(uncorrected, "o3-pro", "openai", dec, web_searches=1000).cost_usd == D("0")
    assert cost(corrected, "gpt-4o-search-preview", "openai", dec, web_searches=1000).cost_usd == D("25")
    assert cost(corrected, "gpt-4.1-mini", "openai", dec, web_searches=1000).cost_usd == D("10")  # confirmed
    # Claude's web search through Vertex AI, at Anthropic's $10 per 1K searches
    assert cost(
        corrected, "claude-sonnet-4-5@20250929", "gcp.vertex_ai", dec, web_searches=1000
    ).cost_usd == D("10")
    assert cost(
        uncorrected, "claude-sonnet-4-5@20250929", "gcp.vertex_ai", dec, web_searches=1000
    ).cost_usd == D("0")


# -- the file's rules ---------------------------------------------------------------------------------


def good(**changes) -> dict:
    entry = {
        "id": "x",
        "class": "tier_start",
        "kind": "variant_start",
        "provider": "openai",
        "models": ["o3"],
        "context": {"service_tier": "flex"},
        "replaces": "2026-10-12",
        "start_date": "2025-06-10",
        "source": "https://example.com/pricing",
        "checked": "2026-12-06",
        "note": "why",
    }
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not None}


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([], "an object with a 'corrections' list"),
        ({"corrections": [good(kind="rename")]}, "kind 'rename' is not one of"),
        ({"corrections": [good(source=None)]}, "missing source"),
        ({"corrections": [good(source="http://example.com")]}, "https:// address"),
        ({"corrections": [good(checked="06/12/2026")]}, "checked is a date"),
        ({"corrections": [good(**{"class": "typo"})]}, "class 'typo' is not one of"),
        ({"corrections": [good(models=[])]}, "at least one catalog model"),
        ({"corrections": [good(extra=1)]}, "unknown field(s) extra"),
        ({"corrections": [good(), good()]}, "id 'x' is used twice"),
        ({"corrections": [good(context="flex")]}, "context is an object"),
        (
            {
                "corrections": [
                    good(kind="variant_history", replaces=None, start_date=None, prices={"input_mtok": "1"})
                ]
            },
            "list of the tier's dated price sets",
        ),
        (
            {
                "corrections": [
                    good(
                        kind="variant_history",
                        replaces=None,
                        start_date=None,
                        prices=[{"from": "2026-01-01", "prices": {"input_mtok": "1"}}],
                    )
                ]
            },
            "{'start_date' (optional), 'prices'}",
        ),
        (
            {
                "corrections": [
                    good(
                        kind="prices",
                        context=None,
                        replaces=None,
                        start_date=None,
                        prices={"input_mtokens": "1"},
                    )
                ]
            },
            "unknown price key 'input_mtokens'",
        ),
        (
            {
                "corrections": [
                    good(
                        kind="prices",
                        context=None,
                        replaces=None,
                        start_date=None,
                        prices={"input_mtok": "-1"},
                    )
                ]
            },
            "not negative",
        ),
    ],
)
def test_a_bad_corrections_file_is_a_clear_error(doc, fragment):
    with pytest.raises(CorrectionError) as caught:
        parse_corrections(doc, path="corrections.json")
    message = str(caught.value)
    assert message.startswith("corrections.json")
    assert fragment in message
    if isinstance(doc, dict) and doc["corrections"]:
        assert "correction " in message  # names the entry


def test_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "corrections.json"
    path.write_text("{not json")
    with pytest.raises(CorrectionError, match=r"corrections\.json: not JSON"):
        load_corrections(path)


def test_kinds_apply_as_documented():
    doc = {
        "schema_version": 1,
        "source": "test",
        "source_version": "1",
        "built_at": "2026-12-06T00:00:00+00:00",
        "units": raw_document()["units"],
        "providers": [
            {
                "id": "p",
                "models": [
                    {
                        "id": "m",
                        "match": {"equals": "m"},
                        "prices": [{"prices": {"input_mtok": "1"}}],
                        "variants": [
                            {"context": {"service_tier": "flex"}, "prices": {"input_mtok": "0.4"},
                             "when": {"start_date": "2026-10-12"}},
                        ],
                    }
                ],
            }
        ],
    }  # fmt: skip
    common = {"provider": "p", "source": "https://example.com", "checked": "2026-12-06"}
    corrections = parse_corrections(
        {
            "corrections": [
                {"id": "a", "class": "tier_start", "kind": "variant_start", "models": ["m"],
                 "context": {"service_tier": "flex"}, "replaces": "2026-10-12", "start_date": "2025-06-01",
                 **common},
                {"id": "b", "class": "tier_start", "kind": "variant", "models": ["m"],
                 "context": {"service_tier": "flex"}, "start_date": "2025-01-01",
                 "prices": {"input_mtok": "0.5"}, **common},
                {"id": "g", "class": "tier_missing", "kind": "variant_history", "models": ["m"],
                 "context": {"service_tier": "priority"},
                 "prices": [{"prices": {"input_mtok": "1.5"}},
                            {"start_date": "2026-01-01", "prices": {"input_mtok": "1.8"}}], **common},
                {"id": "c", "class": "audio", "kind": "prices", "models": ["m"],
                 "prices": {"input_audio_mtok": "8"}, **common},
                {"id": "d", "class": "fine_tune", "kind": "model",
                 "model": {"id": "ft:m", "match": {"starts_with": "ft:m"},
                           "prices": [{"prices": {"input_mtok": "2"}}]},
                 **common},
                {"id": "e", "class": "price", "kind": "confirm", "models": ["m"], "fields": ["output_mtok"],
                 **common},
                {"id": "f", "class": "price", "kind": "prices", "models": ["gone"],
                 "prices": {"input_mtok": "3"}, **common},
            ]
        },
        path="test",
    )  # fmt: skip
    out, applied = apply_corrections(doc, corrections)
    assert doc["providers"][0]["models"][0]["variants"][0]["when"] == {"start_date": "2026-10-12"}  # a copy
    models = out["providers"][0]["models"]
    assert [m["id"] for m in models] == ["ft:m", "m"]  # an added model is listed first
    variants = [v for v in models[1]["variants"] if v["context"] == {"service_tier": "flex"}]
    assert [(v["when"]["start_date"], v["prices"]["input_mtok"]) for v in variants] == [
        ("2025-06-01", "0.4"),
        ("2025-01-01", "0.5"),  # newest first: the engine takes the first in force
    ]
    assert models[1]["prices"][0]["prices"] == {"input_mtok": "1", "input_audio_mtok": "8"}
    assert applied.fields == {
        ("p", "m", "flex:start_date"): "a",
        ("p", "m", "flex:input_mtok"): "b",
        ("p", "m", "priority:input_mtok"): "g",
        ("p", "m", "priority:variant"): "g",  # a tier the catalog lacked
        ("p", "m", "input_audio_mtok"): "c",
        ("p", "ft:m", "model"): "d",
        ("p", "m", "output_mtok"): "e",
    }
    assert applied.stale == [("f", "p", "gone")]
    catalog = Catalog.from_json(out)
    assert catalog.corrections == corrections.version
    engine = PricingEngine([catalog])
    usage = Usage(input_tokens=M)
    assert engine.price(
        "m", usage, provider="p", timestamp=at("2025-03-01"), service_tier="flex"
    ).cost_usd == D("0.5")
    assert engine.price(
        "m", usage, provider="p", timestamp=at("2025-07-01"), service_tier="flex"
    ).cost_usd == D("0.4")
    assert engine.price("ft:m:org::1", usage, provider="p").status == PRICED
    assert [v.get("when") for v in models[1]["variants"] if v["context"] == {"service_tier": "priority"}] == [
        {"start_date": "2026-01-01"},
        None,
    ]
    for day, rate in (("2025-06-01", "1.5"), ("2026-06-01", "1.8")):
        priced = engine.price("m", usage, provider="p", timestamp=at(day), service_tier="priority")
        assert priced.cost_usd == D(rate)
