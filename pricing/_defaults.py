"""Where catalogs come from: the embedded one, those imported into the data directory, user overrides.

The primary catalog (genai-prices', embedded or imported) is read with costspan's corrections laid over it
(``data/corrections.json``, see ``_corrections``): the one place a catalog and its corrections meet.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

from ._catalog import Catalog, read_document
from ._corrections import Applied, apply_corrections, default_corrections
from ._engine import PricingEngine
from ._overrides import load_overrides
from ._units import EXTRA_UNITS, UnitRegistry

DEFAULT_DATA_DIR = "costspan-data"
PRIMARY_SOURCE = "genai-prices"


def data_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get("COSTSPAN_DATA_DIR") or DEFAULT_DATA_DIR)


def imported_catalog_dir(directory: str | Path | None = None) -> Path:
    """Where ``costspan pricing import`` writes: ``<data dir>/pricing/<source>.json``."""
    return data_dir(directory) / "pricing"


@cache
def embedded_catalog(*, corrected: bool = True) -> Catalog:
    """The catalog shipped with costspan, compiled from genai-prices (``make catalog`` rebuilds it), with
    costspan's corrections (``corrected=False``: exactly as genai-prices has it)."""
    ref = resources.files("costspan.pricing").joinpath("data/catalog.json")
    with resources.as_file(ref) as path:
        doc = read_document(path)
        return corrected_catalog(doc, str(path))[0] if corrected else Catalog.from_json(doc, path=str(path))


def corrected_catalog(doc: dict, path: str | None = None) -> tuple[Catalog, Applied]:
    """A primary catalog document read with the shipped corrections laid over it, and what they changed."""
    units = UnitRegistry({**EXTRA_UNITS, **doc.get("units", {})})
    corrected, applied = apply_corrections(doc, default_corrections(units))
    return Catalog.from_json(corrected, path=path), applied


def installed_catalogs(directory: str | Path | None = None) -> list[Catalog]:
    """The catalog stack: an imported genai-prices catalog replaces the embedded one; other imported
    sources (LiteLLM) follow it, consulted for models it does not know."""
    folder = imported_catalog_dir(directory)
    primary_file = folder / f"{PRIMARY_SOURCE}.json"
    catalogs = [
        corrected_catalog(read_document(primary_file), str(primary_file))[0]
        if primary_file.is_file()
        else embedded_catalog()
    ]
    if folder.is_dir():
        for path in sorted(folder.glob("*.json")):
            if path != primary_file:
                catalogs.append(Catalog.load(path))
    return catalogs


def load_engine(
    directory: str | Path | None = None,
    *,
    overrides: str | Path | None = None,
    catalogs: list[Catalog] | None = None,
) -> PricingEngine:
    """An engine over the installed catalogs and the override file (``COSTSPAN_PRICING_OVERRIDES``)."""
    stack = catalogs if catalogs is not None else installed_catalogs(directory)
    overrides = overrides or os.environ.get("COSTSPAN_PRICING_OVERRIDES") or None
    loaded = load_overrides(overrides, stack[0].units) if overrides else None
    return PricingEngine(stack, overrides=loaded)
