"""Import LiteLLM's price file into a costspan catalog.

The source is LiteLLM's ``model_prices_and_context_window.json`` (https://github.com/BerriAI/litellm; the
wheel on PyPI ships a copy as ``litellm/model_prices_and_context_window_backup.json``): one JSON object
mapping a model key (``gpt-4o``, ``azure/gpt-4o``, ``bedrock/us.anthropic.claude-...``) to an entry with
``litellm_provider``, ``mode`` (chat, embedding, audio_transcription, image_generation ...),
``max_input_tokens`` and prices in USD *per token*, per second, per image, per query ...

The result is costspan's catalog schema (see ``costspan.pricing._catalog``) and is no more than what the
file says. The mapping:

* Money never touches a float: the JSON is parsed with ``decimal.Decimal`` and a per-token cost becomes a
  per-million price by moving the decimal point (``scaleb(6)``), written without an exponent.
* Providers: ``litellm_provider`` becomes the catalog provider id where costspan knows one (``bedrock`` and
  ``bedrock_converse`` -> ``aws``, ``vertex_ai`` and every ``vertex_ai-*`` and ``gemini`` -> ``google``,
  ``azure_ai`` -> ``azure``, ``xai`` -> ``x-ai`` ...; see ``PROVIDER_IDS``), else stays as written.
  ``provider_match`` lists the LiteLLM names merged into the provider.
* Models: ``id`` is the LiteLLM key and ``match`` is that key. A key written ``<provider>/<model>`` also
  matches ``<model>`` (an OpenRouter key keeps its ``vendor/model``), unless another key of the same
  catalog provider is that name or an earlier entry already took the alias. ``context_window`` is
  ``max_input_tokens``.
* Prices, per ``_RULES``: token costs -> ``*_mtok``; ``input_cost_per_character`` -> ``input_mchars``;
  per-second audio costs (a plain ``input_cost_per_second`` only for transcription and realtime models)
  -> ``*_audio_hours`` (x 3600); ``output_cost_per_second`` of a video model -> ``output_video_second``;
  per-image costs -> ``*_image_each``; per-request and per-query costs -> ``*_kcount`` (x 1000); OCR
  per-page costs -> ``*_document_kpages``; ``search_context_cost_per_query`` (its medium context size)
  -> ``web_searches_kcount``, noted in ``price_comments``.
* ``<field>_above_<N>k_tokens`` is a long-context tier: ``{"base": ..., "tiers": [[N * 1000, ...]]}``, the
  whole request at the higher rate once its input passes N thousand tokens, as LiteLLM charges it. So is
  ``tiered_pricing``, a list of token ranges (DashScope, Volcengine).
* ``<field>_batches``, ``_flex`` and ``_priority`` become variants for ``{"processing": "batch"}``,
  ``{"service_tier": "flex"}`` and ``{"service_tier": "priority"}``.

Anything else that carries a price (``_above_12hr`` cache writes, per-resolution video prices, per-pixel
prices, off-peak windows ...) is counted in the :class:`ImportReport`, as is a price that is not a finite,
non-negative number; neither stops the import. The ``sample_spec`` entry is documentation and is ignored;
an entry with no usable price is skipped and counted.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from .._catalog import new_catalog_document
from .._units import EXTRA_UNITS

SOURCE = "litellm"
PACKAGED_FILE = "model_prices_and_context_window_backup.json"  # the copy in LiteLLM's wheel

# LiteLLM provider names that have a costspan catalog provider. Others keep their LiteLLM name.
PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure",
    "azure_ai": "azure",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "vertex_ai": "google",
    "gemini": "google",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "xai": "x-ai",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "cohere_chat": "cohere",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "openrouter": "openrouter",
    "text-completion-openai": "openai",
    "azure_text": "azure",
    "fireworks_ai-embedding-models": "fireworks",
    "codestral": "mistral",
}

# Display names, as the embedded (genai-prices) catalog spells them.
PROVIDER_NAMES: dict[str, str] = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "azure": "Microsoft Azure",
    "aws": "AWS Bedrock",
    "google": "Google",
    "together": "Together AI",
    "fireworks": "Fireworks",
    "x-ai": "X AI",
    "mistral": "Mistral",
    "deepseek": "Deepseek",
    "groq": "Groq",
    "cohere": "Cohere",
    "perplexity": "Perplexity",
    "cerebras": "Cerebras",
    "openrouter": "OpenRouter",
}

# A price-field suffix -> the catalog variant context it prices.
SERVICE_TIERS: dict[str, dict[str, str]] = {
    "batches": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}

_SPEC_KEY = "sample_spec"  # LiteLLM's documentation of the format, not a model
_SEARCH_CONTEXT = "search_context_cost_per_query"
_TIERED = "tiered_pricing"

# Audio-session modes whose plain per-second price is per second of input audio.
_AUDIO_MODES = frozenset({"audio_transcription", "realtime"})


@dataclass(frozen=True, slots=True)
class _Rule:
    """A LiteLLM price field read as a catalog price: ``value * multiplier * 10**scale``."""

    price_key: str
    scale: int = 0
    multiplier: int = 1
    modes: frozenset[str] | None = None  # the entry modes it applies to; None: any


def _per_token(price_key: str) -> tuple[_Rule, ...]:
    return (_Rule(price_key, scale=6),)


# Base field name (without a tier or service-tier suffix) -> its readings, the first whose modes fit wins.
_RULES: dict[str, tuple[_Rule, ...]] = {
    "input_cost_per_token": _per_token("input_mtok"),
    "output_cost_per_token": _per_token("output_mtok"),
    "cache_read_input_token_cost": _per_token("cache_read_mtok"),
    # DeepSeek's name for the cache-read price; the same value as cache_read_input_token_cost when both.
    "input_cost_per_token_cache_hit": _per_token("cache_read_mtok"),
    "cache_creation_input_token_cost": _per_token("cache_write_mtok"),
    "cache_creation_input_token_cost_above_1hr": _per_token("cache_write_1h_mtok"),
    "output_cost_per_reasoning_token": _per_token("output_reasoning_mtok"),
    "citation_cost_per_token": _per_token("output_citation_mtok"),
    "input_cost_per_audio_token": _per_token("input_audio_mtok"),
    "output_cost_per_audio_token": _per_token("output_audio_mtok"),
    "cache_read_input_audio_token_cost": _per_token("cache_audio_read_mtok"),
    "cache_creation_input_audio_token_cost": _per_token("cache_audio_write_mtok"),
    "input_cost_per_image_token": _per_token("input_image_mtok"),
    "output_cost_per_image_token": _per_token("output_image_mtok"),
    "cache_read_input_image_token_cost": _per_token("cache_image_read_mtok"),
    "input_cost_per_video_token": _per_token("input_video_mtok"),
    "output_cost_per_video_token": _per_token("output_video_mtok"),
    "input_cost_per_character": (_Rule("input_mchars", scale=6),),
    "input_cost_per_audio_per_second": (_Rule("input_audio_hours", multiplier=3600),),
    "input_cost_per_second": (_Rule("input_audio_hours", multiplier=3600, modes=_AUDIO_MODES),),
    "output_cost_per_second": (
        _Rule("output_video_second", modes=frozenset({"video_generation"})),
        _Rule("output_audio_hours", multiplier=3600, modes=frozenset({"audio_speech"})),
    ),
    "output_cost_per_video_per_second": (_Rule("output_video_second"),),
    # An image-generation entry's per-image price is per generated image (LiteLLM writes it as input).
    "input_cost_per_image": (
        _Rule("output_image_each", modes=frozenset({"image_generation"})),
        _Rule("input_image_each"),
    ),
    "output_cost_per_image": (_Rule("output_image_each"),),
    "input_cost_per_request": (_Rule("requests_kcount", scale=3),),
    "input_cost_per_query": (
        _Rule("rerank_searches_kcount", scale=3, modes=frozenset({"rerank"})),
        # A search API call is one query, and the catalog charges one request per call.
        _Rule("requests_kcount", scale=3, modes=frozenset({"search"})),
    ),
    "input_cost_per_text_message": (_Rule("input_text_messages_kcount", scale=3),),
    "ocr_cost_per_page": (_Rule("input_document_kpages", scale=3),),
    "annotation_cost_per_page": (_Rule("input_annotated_document_kpages", scale=3),),
}
_SEARCH_RULE = _Rule("web_searches_kcount", scale=3)

# <base>[_above_<N>k_tokens][_<service tier>]; the lazy base takes the shortest reading, so the suffixes
# are split off whenever they are there.
_FIELD_NAME = re.compile(
    r"^(?P<base>[a-z0-9_]+?)(?:_above_(?P<thousands>\d+)k_tokens)?(?:_(?P<tier>batches|flex|priority))?$"
)


@dataclass
class ImportReport:
    """What a conversion kept and what it left out."""

    models: int = 0
    skipped_entries: int = 0  # entries with no usable price (``sample_spec`` not counted)
    skipped_fields: Counter[str] = field(default_factory=Counter)  # field name (or "name: reason") -> count


# -- public API -------------------------------------------------------------------------------------------


def looks_like_litellm(raw: Any) -> bool:
    """True for a LiteLLM price file: a JSON object whose entries are objects with ``litellm_provider``."""
    return isinstance(raw, Mapping) and any(
        isinstance(entry, Mapping) and "litellm_provider" in entry
        for key, entry in raw.items()
        if key != _SPEC_KEY
    )


def import_file(path: str | Path, *, source_version: str | None = None) -> dict[str, Any]:
    """The catalog document for a LiteLLM price file."""
    return import_file_with_report(path, source_version=source_version)[0]


def import_file_with_report(
    path: str | Path, *, source_version: str | None = None
) -> tuple[dict[str, Any], ImportReport]:
    """The catalog document for a LiteLLM price file, and the report of what was left out.

    ``source_version`` defaults to the file name and a prefix of the SHA-256 of its bytes, since the file
    itself carries no version.
    """
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    raw = json.loads(data.decode("utf-8"), parse_float=Decimal, parse_constant=Decimal)
    if not looks_like_litellm(raw):
        raise ValueError(f"{path}: a LiteLLM price file is a JSON object of models with litellm_provider")
    if source_version is None:
        source_version = f"{path.name}@sha256:{hashlib.sha256(data).hexdigest()[:12]}"
    return convert(raw, source_version=source_version)


def convert(raw: Mapping[str, Any], *, source_version: str) -> tuple[dict[str, Any], ImportReport]:
    """Convert parsed LiteLLM data (best parsed with ``parse_float=Decimal``) into a catalog document."""
    units = copy.deepcopy(catalog_units())  # the document is the caller's to change; the cache is not
    price_keys = {unit["price_key"] for unit in units.values()}
    report = ImportReport()
    providers: dict[str, _ProviderAcc] = {}
    for key, entry in raw.items():
        if key == _SPEC_KEY:
            continue
        model = _model(key, entry, price_keys, report.skipped_fields)
        if model is None:
            report.skipped_entries += 1
            continue
        litellm_provider = entry["litellm_provider"]
        provider_id = provider_id_for(litellm_provider)
        acc = providers.setdefault(provider_id, _ProviderAcc(provider_id))
        acc.add(litellm_provider, key, model)
        report.models += 1
    documents = [providers[pid].to_json() for pid in sorted(providers)]
    return new_catalog_document(SOURCE, source_version, documents, units), report


def provider_id_for(litellm_provider: str) -> str:
    """The catalog provider id for a LiteLLM provider name."""
    if litellm_provider.startswith("vertex_ai-"):  # vertex_ai-language-models, vertex_ai-anthropic_models ...
        return "google"
    return PROVIDER_IDS.get(litellm_provider, litellm_provider)


@cache
def catalog_units() -> dict[str, dict[str, Any]]:
    """The unit registry written into the document: the embedded catalog's (genai-prices' registry, no
    extra dependency) and costspan's extra per-image and per-second units."""
    text = resources.files("costspan.pricing").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return {**json.loads(text)["units"], **EXTRA_UNITS}


# -- providers --------------------------------------------------------------------------------------------


@dataclass
class _Converted:
    """One model's catalog fields, before its match clause is settled."""

    prices: dict[str, Any]
    variants: list[dict[str, Any]]
    context_window: int | None
    price_comments: str | None


@dataclass
class _ProviderAcc:
    """A catalog provider's models as they are read, in file order."""

    id: str
    litellm_names: set[str] = field(default_factory=set)
    models: list[tuple[str, str, _Converted]] = field(default_factory=list)  # (key, litellm name, model)

    def add(self, litellm_provider: str, key: str, model: _Converted) -> None:
        self.litellm_names.add(litellm_provider)
        self.models.append((key, litellm_provider, model))

    def to_json(self) -> dict[str, Any]:
        names = sorted(self.litellm_names)
        provider_match: dict[str, Any] = (
            {"equals": names[0]} if len(names) == 1 else {"or": [{"equals": n} for n in names]}
        )
        # A key is its own best match: an alias never takes a name another entry of this provider has.
        taken = {key.lower() for key, _, _ in self.models}
        models = []
        for key, litellm_provider, model in self.models:
            full = key.lower()
            short = _short_name(full, litellm_provider)
            if short is not None and short not in taken:
                taken.add(short)
                match: dict[str, Any] = {"or": [{"equals": full}, {"equals": short}]}
            else:
                match = {"equals": full}
            models.append(_model_json(key, match, model))
        return {
            "id": self.id,
            "name": PROVIDER_NAMES.get(self.id, self.id),
            "provider_match": provider_match,
            "models": models,
        }


def _short_name(full: str, litellm_provider: str) -> str | None:
    """``full`` without its ``<provider>/`` prefix, or None when its first segment names no provider.

    Only a provider prefix is cut: ``low/1024-x-1024/gpt-image-1`` starts with a quality, not a provider.
    Cutting one segment keeps an OpenRouter ``vendor/model`` whole.
    """
    prefix, sep, rest = full.partition("/")
    if not sep or not rest:
        return None
    # LiteLLM writes some prefixes apart from the provider name: vertex_ai/ for vertex_ai-anthropic_models,
    # azure/ for azure_text, amazon-nova/ for amazon_nova.
    own = litellm_provider.lower().replace("-", "_")
    prefix = prefix.replace("-", "_")
    if own == prefix or own.startswith(prefix + "_"):
        return rest
    return None


def _model_json(key: str, match: dict[str, Any], model: _Converted) -> dict[str, Any]:
    out: dict[str, Any] = {"id": key, "match": match}
    if model.context_window is not None:
        out["context_window"] = model.context_window
    if model.price_comments:
        out["price_comments"] = model.price_comments
    out["prices"] = [{"prices": model.prices}]
    if model.variants:
        out["variants"] = model.variants
    return out


# -- models -----------------------------------------------------------------------------------------------


@dataclass
class _Slot:
    """One price key of one price set: a flat rate, plus long-context tiers by threshold."""

    base: Decimal | None = None
    tiers: dict[int, Decimal] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # the fields that filled it, to report a tier orphan


class _Prices:
    """The price sets of one entry as its fields are read: the standard one (tier None) and variants."""

    def __init__(self, skipped: Counter[str]) -> None:
        self.skipped = skipped
        self.slots: dict[tuple[str | None, str], _Slot] = {}

    def put(self, tier: str | None, price_key: str, threshold: int | None, value: Decimal, name: str) -> None:
        slot = self.slots.setdefault((tier, price_key), _Slot())
        current = slot.base if threshold is None else slot.tiers.get(threshold)
        if current is not None and current != value:
            # Two fields for one price that disagree (cost_per_second beside input_cost_per_second ...):
            # the first reading stands.
            self.skipped[f"{name}: conflicts with another field"] += 1
            return
        if threshold is None:
            slot.base = value
        else:
            slot.tiers[threshold] = value
        slot.names.append(name)

    def field_names(self) -> list[str]:
        """The fields behind every price that could be written (orphan tiers are reported already)."""
        return [name for slot in self.slots.values() if slot.base is not None for name in slot.names]

    def price_set(self, tier: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (slot_tier, price_key), slot in self.slots.items():
            if slot_tier != tier:
                continue
            if slot.base is None:
                # A long-context rate with no standard rate to rise from: nothing to anchor the tier on.
                self.skipped.update(slot.names)
                continue
            if slot.tiers:
                out[price_key] = {
                    "base": _decimal_text(slot.base),
                    "tiers": [[start, _decimal_text(rate)] for start, rate in sorted(slot.tiers.items())],
                }
            else:
                out[price_key] = _decimal_text(slot.base)
        return out


def _model(key: str, entry: Any, price_keys: set[str], skipped: Counter[str]) -> _Converted | None:
    """One LiteLLM entry converted, or None when it carries no usable price."""
    if not isinstance(entry, Mapping):
        skipped["<entry>: not an object"] += 1
        return None
    price_fields = [name for name in entry if _is_price_field(name)]
    if not price_fields:
        return None
    provider = entry.get("litellm_provider")
    if not isinstance(provider, str) or not provider:
        skipped.update(price_fields)
        return None
    mode = entry.get("mode")
    prices = _Prices(skipped)
    comments: list[str] = []
    for name in price_fields:
        value = entry[name]
        if name == _SEARCH_CONTEXT:
            comment = _search_context(value, prices, price_keys)
            if comment is not None:
                comments.append(comment)
        elif name == _TIERED:
            _tiered_pricing(value, mode, prices, price_keys)
        elif (
            name == "input_cost_per_image" and mode == "image_generation" and "output_cost_per_image" in entry
        ):
            # the entry prices its generated images apart: this one is the price of an input image
            _field(name, value, None, prices, price_keys)
        else:
            _field(name, value, mode, prices, price_keys)
    standard = prices.price_set(None)
    variants = [
        {"context": dict(context), "prices": variant_prices}
        for tier, context in SERVICE_TIERS.items()
        if (variant_prices := prices.price_set(tier))
    ]
    if not standard:
        # The catalog needs standard prices; a model with only batch prices cannot be quoted.
        skipped.update(prices.field_names())
        return None
    max_input = entry.get("max_input_tokens")
    return _Converted(
        prices=standard,
        variants=variants,
        context_window=max_input if _is_int(max_input) and max_input > 0 else None,
        price_comments=" ".join(comments) or None,
    )


def _is_price_field(name: str) -> bool:
    """Fields that carry money or change it; the rest (limits, supports_*, links) is metadata."""
    return "cost" in name or "pricing" in name or "multiplier" in name


def _field(name: str, value: Any, mode: Any, prices: _Prices, price_keys: set[str]) -> None:
    parsed = _FIELD_NAME.match(name)
    rule = _rule_for(parsed["base"], mode) if parsed else None
    if parsed is None or rule is None or rule.price_key not in price_keys:
        prices.skipped[name] += 1
        return
    price = _price(value, rule)
    if price is None:
        prices.skipped[f"{name}: invalid value"] += 1
        return
    thousands = parsed["thousands"]
    threshold = int(thousands) * 1000 if thousands is not None else None
    prices.put(parsed["tier"], rule.price_key, threshold, price, name)


def _rule_for(base: str, mode: Any) -> _Rule | None:
    for rule in _RULES.get(base, ()):
        if rule.modes is None or mode in rule.modes:
            return rule
    return None


def _search_context(value: Any, prices: _Prices, price_keys: set[str]) -> str | None:
    """Web search priced at LiteLLM's medium search-context size; the comment says so."""
    medium = value.get("search_context_size_medium") if isinstance(value, Mapping) else None
    price = _price(medium, _SEARCH_RULE)
    if price is None or _SEARCH_RULE.price_key not in price_keys:
        prices.skipped[f"{_SEARCH_CONTEXT}: invalid value"] += 1
        return None
    prices.put(None, _SEARCH_RULE.price_key, None, price, _SEARCH_CONTEXT)
    sizes = ", ".join(
        f"{size.removeprefix('search_context_size_')} {_decimal_text(per_query)}"
        for size, raw in sorted(value.items())
        if (per_query := _number(raw)) is not None
    )
    return (
        f"web_searches_kcount is LiteLLM's {_SEARCH_CONTEXT} for the medium search context size "
        f"(USD per query by size: {sizes})."
    )


def _tiered_pricing(value: Any, mode: Any, prices: _Prices, price_keys: set[str]) -> None:
    """``tiered_pricing``: a list of ``{"range": [start, end], <field>: <cost> ...}`` over input tokens,
    the whole request at the rate of the range its input falls in. Read into tiered prices when the ranges
    start at 0 and follow one another; anything else (DataForSEO's ranges over result counts) is skipped."""
    readings = _tier_readings(value, mode, price_keys)
    if readings is None:
        prices.skipped[_TIERED] += 1
        return
    for start, price_key, price in readings:
        prices.put(None, price_key, start or None, price, _TIERED)


def _tier_readings(value: Any, mode: Any, price_keys: set[str]) -> list[tuple[int, str, Decimal]] | None:
    """(range start, price key, price) for every cost of every range, or None if one does not read."""
    if not isinstance(value, list) or not value:
        return None
    out: list[tuple[int, str, Decimal]] = []
    expected_start = Decimal(0)
    for tier in value:
        bounds = tier.get("range") if isinstance(tier, Mapping) else None
        if not isinstance(bounds, list) or len(bounds) != 2:
            return None
        start, end = _number(bounds[0]), _number(bounds[1])
        if start is None or end is None or start != expected_start or end <= start:
            return None
        if start != start.to_integral_value():
            return None
        expected_start = end
        for name, cost in tier.items():
            if name == "range":
                continue
            rule = _rule_for(name, mode)
            price = _price(cost, rule) if rule is not None else None
            if rule is None or price is None or rule.price_key not in price_keys:
                return None
            out.append((int(start), rule.price_key, price))
    return out


# -- numbers ----------------------------------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    """A finite, non-negative JSON number as a Decimal, else None. A float (data parsed without
    ``parse_float=Decimal``) is read through its shortest repr, the digits the JSON file had."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        return None
    if not number.is_finite() or number < 0:
        return None
    return number


def _price(value: Any, rule: _Rule) -> Decimal | None:
    number = _number(value)
    if number is None:
        return None
    return (number * rule.multiplier).scaleb(rule.scale)


def _decimal_text(value: Decimal) -> str:
    """A price as the catalog writes it: no exponent, no trailing zeros (``2.5``, ``0.075``, ``100``)."""
    if value == 0:
        return "0"  # also folds -0
    return format(value.normalize(), "f")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
