"""The unit registry: every usage bucket a price can attach to, and how buckets nest.

Each unit has dimensions (``family``, ``direction``, ``modality``, ``token_type``, ``cache_ttl`` ...). A unit
whose dimensions include another's is part of it: ``cache_read_tokens`` is part of ``input_tokens``. The
engine prices the *leaf* value of each priced unit (its count minus the counts of its priced parts), so
a token is charged exactly once, at the most specific rate the model has. The registry itself is data,
carried in the catalog, so a new unit needs no code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Where a unit's cost lands in a result's breakdown.
BUCKETS = ("input", "cache_read", "cache_write", "output", "reasoning", "other")


@dataclass(frozen=True, slots=True)
class Unit:
    usage_key: str
    price_key: str
    per: int
    dimensions: Mapping[str, str]

    @property
    def bucket(self) -> str:
        dims = self.dimensions
        token_type = dims.get("token_type")
        if dims.get("family") == "tokens" and token_type in ("cache_read", "cache_write", "reasoning"):
            return token_type
        direction = dims.get("direction")
        if direction in ("input", "output") and dims.get("family") in (
            "tokens",
            "characters",
            "durations",
            "images",
        ):
            return direction
        return "other"

    def contains(self, other: Unit) -> bool:
        """True when ``other`` is this unit or a part of it."""
        return self.dimensions.items() <= other.dimensions.items()


class UnitRegistry:
    """All units by usage key and by price key."""

    def __init__(self, raw_units: Mapping[str, Mapping[str, Any]]) -> None:
        self.by_usage_key: dict[str, Unit] = {}
        self.by_price_key: dict[str, Unit] = {}
        for usage_key, raw in raw_units.items():
            unit = Unit(
                usage_key=usage_key,
                price_key=str(raw.get("price_key", usage_key)),
                per=int(raw["per"]),
                dimensions=dict(raw.get("dimensions", {})),
            )
            self.by_usage_key[usage_key] = unit
            self.by_price_key[unit.price_key] = unit

    def __contains__(self, usage_key: object) -> bool:
        return usage_key in self.by_usage_key


# Units costspan prices beyond those of its primary source, for sources (LiteLLM, user overrides) that
# charge per image or per second of generated video.
EXTRA_UNITS: dict[str, dict[str, Any]] = {
    "input_images": {
        "price_key": "input_image_each",
        "per": 1,
        "dimensions": {"family": "images", "direction": "input"},
    },
    "output_images": {
        "price_key": "output_image_each",
        "per": 1,
        "dimensions": {"family": "images", "direction": "output"},
    },
    "output_video_seconds": {
        "price_key": "output_video_second",
        "per": 1,
        "dimensions": {"family": "durations", "direction": "output", "modality": "video"},
    },
}
