"""Generate the genai-prices parity corpus: ``cases.jsonl`` beside this file.

    python tests/pricing/parity/generate_corpus.py

Deterministic (seeded). Every provider genai-prices knows contributes models; each case's usage is built
from the prices the model has at the case's timestamp (cache reads and writes, one-hour writes, reasoning,
audio, web searches, characters, seconds, per-request fees), timestamps fall on both sides of each dated
price change, and models with service-tier or batch variants get those tiers. Only cases genai-prices can
price are kept, so the corpus checks arithmetic and selection, not coverage.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from genai_prices import Usage, calc_price, types
from genai_prices.data import providers

OUT = Path(__file__).with_name("cases.jsonl")
PER_PROVIDER = 14  # models sampled per provider (all of them when fewer)
SEED = 20251123

# genai-prices usage keys that a case may carry, and how large a plausible count is.
TOKEN_KEYS = {
    "input_audio_tokens": 3_000,
    "output_audio_tokens": 2_000,
    "input_image_tokens": 2_000,
    "output_image_tokens": 4_000,
    "cache_audio_read_tokens": 1_000,
    "cache_image_read_tokens": 1_000,
    "input_video_tokens": 5_000,
    "output_video_tokens": 5_000,
}
COUNT_KEYS = {
    "web_searches": 3,
    "storage_searches": 3,
    "input_characters": 4_000,
    "audio_seconds": 300,
    "input_audio_seconds": 300,
    "output_audio_seconds": 120,
    "input_document_pages": 20,
    "input_annotated_document_pages": 5,
    "input_text_messages": 4,
    "rerank_searches": 2,
}
PRICE_TO_USAGE = {
    "input_audio_mtok": "input_audio_tokens",
    "output_audio_mtok": "output_audio_tokens",
    "input_image_mtok": "input_image_tokens",
    "output_image_mtok": "output_image_tokens",
    "cache_audio_read_mtok": "cache_audio_read_tokens",
    "cache_image_read_mtok": "cache_image_read_tokens",
    "input_video_mtok": "input_video_tokens",
    "output_video_mtok": "output_video_tokens",
    "web_searches_kcount": "web_searches",
    "storage_searches_kcount": "storage_searches",
    "input_mchars": "input_characters",
    "audio_hours": "audio_seconds",
    "input_audio_hours": "input_audio_seconds",
    "output_audio_hours": "output_audio_seconds",
    "input_document_kpages": "input_document_pages",
    "input_annotated_document_kpages": "input_annotated_document_pages",
    "input_text_messages_kcount": "input_text_messages",
    "rerank_searches_kcount": "rerank_searches",
}


def _dates(model: types.ModelInfo) -> list[datetime]:
    """Timestamps around every dated change of the model's prices and variants."""
    starts: set[date] = set()
    if isinstance(model.prices, list):
        starts |= {
            p.constraint.start_date
            for p in model.prices
            if isinstance(p.constraint, types.StartDateConstraint)
        }
    for variant in model.price_variants or ():
        if isinstance(variant.constraint, types.StartDateConstraint):
            starts.add(variant.constraint.start_date)
    stamps = [datetime(2025, 3, 1, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC)]
    for start in sorted(starts):
        day = datetime(start.year, start.month, start.day, tzinfo=UTC)
        stamps += [day - timedelta(seconds=1), day]
    if any(
        isinstance(getattr(p, "constraint", None), types.TimeOfDateConstraint) for p in _price_list(model)
    ):
        stamps += [datetime(2025, 9, 1, 3, tzinfo=UTC), datetime(2025, 9, 1, 17, tzinfo=UTC)]
    return stamps


def _is_rare(model: types.ModelInfo) -> bool:
    price_sets = [p.prices for p in model.prices] if isinstance(model.prices, list) else [model.prices]
    for prices in price_sets:
        for key, value in prices.__dict__.items():
            if value is not None and (key in PRICE_TO_USAGE or isinstance(value, types.TieredPrices)):
                return True
    return bool(model.price_variants) and len(model.price_variants) > 2


def _name_for(model: types.ModelInfo) -> str | None:
    """A name the model's clause accepts: its id, else the text of an equals or starts_with clause."""
    if model.is_match(model.id):
        return model.id
    clauses = [model.match]
    while clauses:
        clause = clauses.pop(0)
        if isinstance(clause, types.ClauseOr):
            clauses.extend(clause.or_)
        elif isinstance(clause, types.ClauseEquals | types.ClauseStartsWith):
            text = getattr(clause, "equals", None) or clause.starts_with
            if model.is_match(text):
                return text
    return None


def _price_list(model: types.ModelInfo) -> list[Any]:
    return model.prices if isinstance(model.prices, list) else []


def _usage(rng: random.Random, prices: Any) -> dict[str, int]:
    keys = {k for k, v in prices.__dict__.items() if v is not None and not k.startswith("_")}
    usage: dict[str, int] = {}
    input_tokens = int(rng.lognormvariate(8.5, 1.3)) + 1
    if any(isinstance(getattr(prices, k, None), types.TieredPrices) for k in keys) and rng.random() < 0.5:
        tiers = [
            t.start for k in keys if isinstance(v := getattr(prices, k), types.TieredPrices) for t in v.tiers
        ]
        input_tokens = max(tiers) + rng.randint(1, 50_000)
    usage["input_tokens"] = input_tokens
    if "output_mtok" in keys or rng.random() < 0.3:
        usage["output_tokens"] = int(rng.lognormvariate(6, 1.1)) + 1
    budget = input_tokens
    if "cache_read_mtok" in keys and rng.random() < 0.7:
        usage["cache_read_tokens"] = rng.randint(0, budget // 2)
        budget -= usage["cache_read_tokens"]
    if "cache_write_mtok" in keys and rng.random() < 0.6:
        usage["cache_write_tokens"] = rng.randint(0, budget // 2)
        budget -= usage["cache_write_tokens"]
        if "cache_write_1h_mtok" in keys and rng.random() < 0.6:
            usage["cache_write_1h_tokens"] = rng.randint(0, usage["cache_write_tokens"])
    if "output_tokens" in usage and rng.random() < 0.5:
        usage["output_reasoning_tokens"] = rng.randint(0, usage["output_tokens"])
    for price_key, usage_key in PRICE_TO_USAGE.items():
        if price_key not in keys:
            continue
        if usage_key in TOKEN_KEYS:
            parent = "output_tokens" if usage_key.startswith("output") else "input_tokens"
            room = usage.get(parent, 0) - sum(
                v
                for k, v in usage.items()
                if k != parent
                and k.startswith(parent.split("_")[0])
                and "tokens" in k
                and k not in ("cache_write_1h_tokens",)
            )
            if usage_key.startswith("cache_"):
                room = usage.get("cache_read_tokens", 0)
            if room > 0:
                usage[usage_key] = rng.randint(0, min(room, TOKEN_KEYS[usage_key]))
        else:
            usage[usage_key] = rng.randint(1, COUNT_KEYS[usage_key])
    return usage


def _contexts(model: types.ModelInfo) -> list[str | None]:
    tiers: list[str | None] = [None]
    for variant in model.price_variants or ():
        if variant.when.get("processing") == "batch":
            tiers.append("batch")
        elif "service_tier" in variant.when:
            tiers.append(variant.when["service_tier"])
    return sorted(set(tiers), key=lambda t: t or "")


def _genai_context(service_tier: str | None) -> dict[str, str] | None:
    if service_tier is None:
        return None
    return {"processing": "batch"} if service_tier == "batch" else {"service_tier": service_tier}


def main() -> None:
    rng = random.Random(SEED)
    cases: list[dict[str, Any]] = []
    for provider in providers:
        # every model with a rare unit, tiers or variants; a sample of the plain ones
        rare = [m for m in provider.models if _is_rare(m)]
        plain = [m for m in provider.models if not _is_rare(m)]
        models = rare + rng.sample(plain, min(len(plain), max(0, PER_PROVIDER - len(rare) // 3)))
        for model in models:
            name = _name_for(model)
            if name is None:
                continue
            stamps = _dates(model)
            contexts = _contexts(model)
            chosen = stamps if len(stamps) <= 4 else rng.sample(stamps, 4)
            # every tier the model has, at the newest stamp (after the variants start) and at a random one
            plan = [(stamp, None) for stamp in chosen]
            for tier in contexts[1:]:
                plan += [(stamps[1], tier), (rng.choice(stamps), tier)]
            for i, (stamp, tier) in enumerate(plan):
                prices = model.get_prices(stamp, _genai_context(tier))
                usage = _usage(rng, prices)
                ref = name if rng.random() < 0.8 else name.upper()
                try:
                    calc_price(
                        Usage(**usage),
                        ref,
                        provider_id=provider.id,
                        genai_request_timestamp=stamp,
                        price_context=_genai_context(tier),
                    )
                except (LookupError, ValueError):
                    continue
                cases.append(
                    {
                        "id": f"{provider.id}/{model.id}/{i}",
                        "provider": provider.id,
                        "model": ref,
                        "timestamp": stamp.isoformat(),
                        "service_tier": tier,
                        "usage": usage,
                    }
                )
    with OUT.open("w", encoding="utf-8") as fh:
        for case in cases:
            fh.write(json.dumps(case, sort_keys=True) + "\n")
    print(f"{len(cases)} cases from {len({c['provider'] for c in cases})} providers -> {OUT}")


if __name__ == "__main__":
    main()
