"""costspan.pricing: exact, cache-, tier- and date-aware cost for LLM calls.

    from costspan.pricing import Usage, load_engine

    engine = load_engine()
    result = engine.price("gpt-4o", Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000),
                          provider="openai", timestamp=datetime(2025, 9, 1, tzinfo=UTC))
    result.cost_usd   # Decimal('0.0035'), exact

Prices are data (``data/catalog.json``, compiled from pydantic's genai-prices; ``data/rules.json``); user
overrides come from a YAML file. Token counts follow the OpenTelemetry GenAI arithmetic: input includes
cache reads and writes, output includes reasoning.
"""

from ._catalog import Catalog, CatalogError
from ._defaults import data_dir, embedded_catalog, imported_catalog_dir, installed_catalogs, load_engine
from ._engine import PricingEngine, Quote
from ._overrides import OverrideError, Overrides, load_overrides
from ._resolve import Resolution
from ._result import (
    ESTIMATED,
    INVALID_USAGE,
    NO_USAGE,
    PRICED,
    SOURCE_LOCAL,
    SOURCE_PROVIDER,
    UNKNOWN_MODEL,
    PriceResult,
    decimal_str,
)
from ._units import BUCKETS
from ._usage import DEFAULT_TOKEN_LIMIT, NOTHING_NAMED, Usage, named_counts

__all__ = [
    "BUCKETS",
    "DEFAULT_TOKEN_LIMIT",
    "ESTIMATED",
    "INVALID_USAGE",
    "NOTHING_NAMED",
    "NO_USAGE",
    "PRICED",
    "SOURCE_LOCAL",
    "SOURCE_PROVIDER",
    "UNKNOWN_MODEL",
    "Catalog",
    "CatalogError",
    "OverrideError",
    "Overrides",
    "PriceResult",
    "PricingEngine",
    "Quote",
    "Resolution",
    "Usage",
    "data_dir",
    "decimal_str",
    "embedded_catalog",
    "imported_catalog_dir",
    "installed_catalogs",
    "load_engine",
    "load_overrides",
    "named_counts",
]
