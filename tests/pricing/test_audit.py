"""The catalog audit over the real embedded catalog and LiteLLM's whole price file (vendored, see
fixtures/README.md), through the library and the ``costspan pricing audit`` command."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from costspan.pricing import embedded_catalog
from costspan.pricing._audit import (
    FINE_TUNE,
    LONG_CONTEXT,
    TIER_START,
    AuditReport,
    audit,
    load_second_source,
    same_price,
)
from costspan.pricing._catalog import TieredPrice, read_document
from costspan.pricing._corrections import apply_corrections, default_corrections

from .test_cli import run

LITELLM = Path(__file__).with_name("fixtures") / "litellm_model_prices_1.110.2.json.gz"
AT = datetime(2026, 12, 6, 12, tzinfo=UTC)


def raw_document() -> dict:
    ref = resources.files("costspan.pricing").joinpath("data/catalog.json")
    with resources.as_file(ref) as path:
        return read_document(path)


@cache
def report() -> AuditReport:
    second = load_second_source(LITELLM, Path("/nonexistent"))
    assert second is not None
    return audit(raw_document(), default_corrections(), second, AT)


def rows_for(model: str, field: str) -> list:
    return [d for d in report().disagreements if d.model == model and d.field == field]


def test_every_model_is_audited_and_counts_add_up():
    summary = report().summary()
    assert summary["models_audited"] == embedded_catalog(corrected=False).model_count == 2330
    assert 500 < summary["models_paired_with_second_source"] < summary["models_audited"]
    total = summary["disagreements"]
    assert total == summary["settled"] + summary["open"] == len(report().disagreements)
    assert sum(c["found"] for c in summary["by_class"].values()) == total
    for counts in summary["by_class"].values():
        assert counts["found"] == counts["settled"] + counts["open"]
    assert sum(summary["by_source"].values()) == total
    assert summary["stale_corrections"] == []


def test_every_disagreement_is_settled_by_a_correction_or_listed_open():
    ids = {c.id for c in default_corrections().entries}
    _, applied = apply_corrections(raw_document(), default_corrections())
    for d in report().disagreements:
        if d.status == "settled":
            assert d.settled_by in ids and d.corrected, d
        else:
            assert d.settled_by == "" and d.corrected == "", d
            # nothing a correction set is left open
            assert applied.settled_by(d.provider, d.model, d.field) is None, d
    # every correction settles at least one disagreement (as the published price it cites, at least)
    assert {d.settled_by for d in report().settled} == ids


def test_a_corrected_tier_start_is_settled_and_one_without_a_source_stays_open():
    (published, litellm) = sorted(rows_for("o4-mini", "flex:start_date"), key=lambda d: d.source)
    assert published.cls == litellm.cls == TIER_START
    assert published.source.startswith("https://") and litellm.source == "litellm"
    assert published.catalog == litellm.catalog == "from 2026-10-12"
    assert published.corrected == litellm.corrected == "from 2025-04-17"
    assert published.settled_by == litellm.settled_by == "openai-o4-mini-flex-from-2025-04-17"
    (still_open,) = rows_for("gpt-5.1", "flex:start_date")
    assert still_open.status == "open" and still_open.catalog == "from 2026-10-12"


def test_fine_tunes_the_catalog_only_estimated_are_found_and_settled():
    found = [d for d in report().disagreements if d.cls == FINE_TUNE and d.source == "litellm"]
    names = {d.model for d in found}
    assert {"ft:gpt-4.1-2025-04-14", "ft:gpt-4.1-mini-2025-04-14", "ft:o4-mini-2025-04-16"} <= names
    for d in found:
        assert d.catalog.startswith("estimated at "), d
        assert d.status == "settled", d
    (gpt41,) = [d for d in found if d.model == "ft:gpt-4.1-2025-04-14"]
    assert gpt41.other == "cache_read_mtok=0.75 input_mtok=3 output_mtok=12"
    assert gpt41.corrected == "ft:gpt-4.1: " + gpt41.other  # the catalog entry it now resolves to


def test_long_context_differences_and_confirmations():
    # LiteLLM lists no long-context tier for Claude Sonnet 4.5; Anthropic's page confirms the catalog's
    (row,) = [d for d in rows_for("claude-sonnet-4-5", "input_mtok") if d.source == "litellm"]
    assert row.cls == LONG_CONTEXT and row.catalog == "3 (6 above 200,000)" and row.other == "3"
    assert row.settled_by == "anthropic-sonnet-4-5-long-context-confirmed"
    assert row.corrected == row.catalog  # confirmed, unchanged
    (grok,) = rows_for("grok-4-0709", "input_mtok")
    assert grok.cls == LONG_CONTEXT and grok.corrected == "3 (6 above 128,000)"


def test_a_bedrock_model_is_compared_with_the_litellm_key_priced_where_the_catalog_is():
    # LiteLLM prices Claude Opus 4.5 on Bedrock as the bare id ($5), the us./eu. profiles ($5.50, the regional
    # premium) and global ($5); the catalog's regional entry is the us. profile's price
    assert rows_for("regional.anthropic.claude-opus-4-5-v1:0", "input_mtok") == []
    # a key pinned to one region (GovCloud, eu-west-2) is that region's price: never the counterpart, where
    # an unpinned key is taken or not ...
    assert rows_for("nvidia.nemotron-super-3-120b:0", "input_mtok") == []
    assert rows_for("regional.anthropic.claude-3-haiku-20240307-v1:0", "input_mtok") == []  # GovCloud only
    # Mistral's free Codestral endpoint is not La Plateforme's codestral-latest ($0.30 / $0.90)
    assert rows_for("codestral", "input_mtok") == []
    # ... and a us. profile that disagrees is still found
    second = load_second_source(LITELLM, Path("/nonexistent"))
    assert second is not None
    doc = raw_document()
    (aws,) = [p for p in doc["providers"] if p["id"] == "aws"]
    (opus,) = [m for m in aws["models"] if m["id"] == "regional.anthropic.claude-opus-4-5-v1:0"]
    opus["prices"][0]["prices"]["input_mtok"] = "5"
    found = audit(doc, default_corrections(), second, AT).disagreements
    (row,) = [d for d in found if d.model == opus["id"] and d.field == "input_mtok"]
    assert (row.catalog, row.other) == ("5", "5.5")


def test_per_second_rates_agree_at_the_precision_litellm_writes_them():
    # Groq's whisper-large-v3 is $0.111 an hour; LiteLLM writes 0.00003083 a second (0.110988 an hour)
    assert rows_for("whisper-large-v3", "input_audio_hours") == []
    assert rows_for("whisper-large-v3-turbo", "input_audio_hours") == []  # $0.04: 0.00001111 a second
    second = load_second_source(LITELLM, Path("/nonexistent"))
    assert second is not None
    doc = raw_document()
    (groq,) = [p for p in doc["providers"] if p["id"] == "groq"]
    (whisper,) = [m for m in groq["models"] if m["id"] == "whisper-large-v3"]
    whisper["prices"][0]["prices"]["input_audio_hours"] = "0.1112"  # 0.00003089 a second: another price
    found = audit(doc, default_corrections(), second, AT).disagreements
    (row,) = [d for d in found if d.model == "whisper-large-v3" and d.field == "input_audio_hours"]
    assert (row.catalog, row.other) == ("0.1112", "0.110988")


def test_databricks_rates_agree_at_the_precision_of_their_dbus():
    # Databricks publishes 1.429 DBU per 1M tokens for bge-large-en; LiteLLM writes that at $0.070 a DBU,
    # $0.10003; the catalog's $0.10 is the same price
    assert rows_for("databricks-bge-large-en", "input_mtok") == []
    assert rows_for("databricks-bge-large-en", "cache_read_mtok") == []  # through the input rate
    second = load_second_source(LITELLM, Path("/nonexistent"))
    assert second is not None
    doc = raw_document()
    (databricks,) = [p for p in doc["providers"] if p["id"] == "databricks"]
    (bge,) = [m for m in databricks["models"] if m["id"] == "databricks-bge-large-en"]
    bge["prices"][0]["prices"]["input_mtok"] = "0.1001"  # 1.43 DBU: another price
    found = audit(doc, default_corrections(), second, AT).disagreements
    (row,) = [d for d in found if d.model == "databricks-bge-large-en" and d.field == "input_mtok"]
    assert (row.catalog, row.other) == ("0.1001", "0.10003")


def test_an_image_rate_at_the_input_base_rate_is_the_input_rate():
    # LiteLLM writes Grok 4.3's image tokens at $1.25, the base of its own input rate ($2.50 above 200K):
    # the catalog charges them as input tokens, tier included; the tier is compared on input_mtok's row
    assert rows_for("grok-4.3", "input_image_mtok") == []
    # an image rate above the input rate is another price: Grok Code Fast 1's $1 against its $0.20 input
    (row,) = rows_for("grok-code-fast-1", "input_image_mtok")
    assert (row.catalog, row.other) == ("none (0.2 as input_mtok)", "1")


def test_a_gemini_per_image_equivalent_beside_the_per_token_rate_is_no_price_of_its_own():
    # Gemini 2.5 Flash Image: $30 per 1M output image tokens, "$0.039 per image" on the pricing page
    assert rows_for("gemini-2.5-flash-image", "output_image_each") == []
    assert rows_for("gemini-3-pro-image-preview", "input_image_each") == []  # images in, as input tokens
    # a model the catalog does not price image output tokens for keeps LiteLLM's per-image figure open
    (row,) = rows_for("gemini-3.1-pro-preview", "output_image_each")
    assert (row.catalog, row.other) == ("none", "0.00012")


def test_a_tier_at_the_rate_below_it_is_no_tier():
    # LiteLLM writes Gemini 3 Flash's audio rate as $1, and $1 above 200K tokens: the catalog's flat $1
    assert rows_for("gemini-3-flash-preview", "input_audio_mtok") == []
    # a tier at another rate is still a long-context difference
    (row,) = rows_for("gemini-2.5-flash", "input_audio_mtok")
    assert row.cls == LONG_CONTEXT and (row.catalog, row.other) == ("1", "1 (0.3 above 200,000)")
    assert same_price(
        TieredPrice(Decimal(2), ((200_000, Decimal(2)), (500_000, Decimal(4)))),
        TieredPrice(Decimal(2), ((500_000, Decimal(4)),)),
    )


def test_a_batch_factor_is_compared_with_the_batch_rates_litellm_lists():
    # Bedrock batch is 50% of on-demand (rules.json): LiteLLM's Nova Pro batch rates are exactly that ...
    assert [
        d for d in report().disagreements if d.model == "amazon.nova-pro-v1:0" and "batch" in d.field
    ] == []
    # ... while Gemma 3 12B's published batch rate is rounded: half of $0.09 is not $0.05
    (row,) = rows_for("google.gemma-3-12b-it", "batch:input_mtok")
    assert (row.cls, row.catalog, row.other, row.status) == ("price", "0.045", "0.05", "open")


def test_audit_command_prints_the_same_figures(tmp_path):
    out = run(
        "pricing", "audit", "--litellm", str(LITELLM), "--at", "2026-12-06", "--format", "json", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["summary"] == json.loads(json.dumps(report().summary()))
    assert len(answer["disagreements"]) == answer["summary"]["disagreements"]
    statuses = Counter(d["status"] for d in answer["disagreements"])
    assert statuses == {"settled": answer["summary"]["settled"], "open": answer["summary"]["open"]}

    only_open = run(
        "pricing", "audit", "--litellm", str(LITELLM), "--at", "2026-12-06", "--format", "csv", "--open",
        cwd=tmp_path,
    )  # fmt: skip
    assert only_open.returncode == 0, only_open.stderr
    rows = list(csv.DictReader(io.StringIO(only_open.stdout)))
    assert len(rows) == answer["summary"]["open"] and {r["status"] for r in rows} == {"open"}

    table = run("pricing", "audit", "--litellm", str(LITELLM), "--at", "2026-12-06", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert f"{answer['summary']['models_audited']} audited" in table.stdout
    assert f"{answer['summary']['settled']} settled by a correction" in table.stdout


def test_audit_uses_an_imported_litellm_catalog_and_says_when_there_is_none(tmp_path):
    missing = run("pricing", "audit", "--data-dir", str(tmp_path / "empty"), cwd=tmp_path)
    if missing.returncode == 0:  # the litellm package is installed: its copy is the second source
        pytest.skip("litellm is installed here")
    assert missing.returncode == 2 and "no second source" in missing.stderr
    data = tmp_path / "data"
    imported = run("pricing", "import", str(LITELLM), "--data-dir", str(data), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    out = run(
        "pricing", "audit", "--data-dir", str(data), "--format", "json", "--at", "2026-12-06", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"]["disagreements"] == report().summary()["disagreements"]
