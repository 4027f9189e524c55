"""Import pydantic's genai-prices data into a costspan catalog.

Two inputs, one conversion: the installed ``genai_prices`` package (its bundled snapshot), or a
``data.json`` file in genai-prices' own format (a JSON list of providers, as its auto-update fetches),
which genai-prices' parser reads. Needs the optional dependency: ``pip install 'costspan[import]'``.

The result is costspan's catalog schema (see ``costspan.pricing._catalog``); costspan owns matching and
arithmetic from then on, and genai-prices is not imported at run time.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

from .._catalog import new_catalog_document

SOURCE = "genai-prices"


def _require_genai_prices() -> Any:
    try:
        import genai_prices
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError(
            "importing genai-prices data needs the genai-prices package: pip install 'costspan[import]'"
        ) from exc
    return genai_prices


def import_installed() -> dict[str, Any]:
    """The catalog document for the installed genai-prices package's bundled data."""
    genai_prices = _require_genai_prices()
    from genai_prices.data import providers
    from genai_prices.data_units import unit_data

    return convert(providers, unit_data, source_version=genai_prices.__version__)


def import_file(path: str | Path) -> dict[str, Any]:
    """The catalog document for a genai-prices ``data.json`` (a JSON list of providers)."""
    genai_prices = _require_genai_prices()
    from genai_prices.data_units import unit_data
    from genai_prices.types import _providers_from_raw

    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, list):
        raise ValueError(f"{path}: a genai-prices data file is a JSON list of providers")
    providers = _providers_from_raw(raw)
    return convert(providers, unit_data, source_version=f"{genai_prices.__version__}+{Path(path).name}")


def looks_like_genai_prices(raw: Any) -> bool:
    return isinstance(raw, list) and bool(raw) and isinstance(raw[0], dict) and "api_pattern" in raw[0]


def convert(providers: list[Any], unit_data: dict[str, Any], *, source_version: str) -> dict[str, Any]:
    return new_catalog_document(
        SOURCE,
        source_version,
        [_provider(p) for p in providers],
        {
            key: {"price_key": u.get("price_key", key), "per": u["per"], "dimensions": u["dimensions"]}
            for key, u in unit_data.items()
        },
    )


def _provider(p: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": p.id, "name": p.name, "api_pattern": p.api_pattern}
    if p.provider_match is not None:
        out["provider_match"] = _clause(p.provider_match)
    if p.model_match is not None:
        out["model_match"] = _clause(p.model_match)
    if p.fallback_model_providers:
        out["fallback_model_providers"] = list(p.fallback_model_providers)
    if p.pricing_urls:
        out["pricing_urls"] = list(p.pricing_urls)
    out["models"] = [_model(m) for m in p.models]
    return out


def _model(m: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": m.id, "match": _clause(m.match)}
    if m.name:
        out["name"] = m.name
    if m.context_window:
        out["context_window"] = m.context_window
    if m.deprecated:
        out["deprecated"] = True
    if m.price_comments:
        out["price_comments"] = m.price_comments
    if isinstance(m.prices, list):
        out["prices"] = [
            {"prices": _prices(cp.prices), **({"when": _constraint(cp.constraint)} if cp.constraint else {})}
            for cp in m.prices
        ]
    else:
        out["prices"] = [{"prices": _prices(m.prices)}]
    if m.price_variants:
        out["variants"] = [
            {
                "context": dict(v.when),
                "prices": _prices(v.prices),
                **({"when": _constraint(v.constraint)} if v.constraint else {}),
            }
            for v in m.price_variants
        ]
    return out


def _prices(model_price: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in model_price.__dict__.items():
        if key.startswith("_") or value is None:
            continue
        if isinstance(value, Decimal):
            out[key] = str(value)
        else:  # TieredPrices
            out[key] = {"base": str(value.base), "tiers": [[t.start, str(t.price)] for t in value.tiers]}
    return out


def _constraint(c: Any) -> dict[str, str]:
    start_date = getattr(c, "start_date", None)
    if isinstance(start_date, date):
        return {"start_date": start_date.isoformat()}
    start, end = c.start_time, c.end_time
    assert isinstance(start, time) and isinstance(end, time)
    return {"start_time": start.isoformat(), "end_time": end.isoformat()}


def _clause(clause: Any) -> dict[str, Any]:
    fields = {f.name: getattr(clause, f.name) for f in dataclasses.fields(clause)}
    if "or_" in fields:
        return {"or": [_clause(c) for c in fields["or_"]]}
    if "and_" in fields:
        return {"and": [_clause(c) for c in fields["and_"]]}
    ((kind, value),) = fields.items()
    return {kind: value}
