"""What a call consumed, in the arithmetic of the OpenTelemetry GenAI conventions.

``input_tokens`` includes cache reads and cache writes; ``cache_write_1h_tokens`` is the part of
``cache_write_tokens`` written with a one-hour lifetime; ``output_tokens`` includes ``reasoning_tokens``.
Every other unit the registry knows (``input_audio_tokens``, ``web_searches``, ``input_characters``,
``audio_seconds``, ``output_images`` ...) goes in ``other`` by its usage key. ``None`` means "not reported".

A ``Usage`` is not validated on construction: spans carry whatever their instrumentation wrote, and the
engine turns nonsense (negative, fractional or absurd counts, NaN, strings) into a flagged result instead of
an exception.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

# The named fields and the registry usage keys they fill.
FIELD_TO_USAGE_KEY: Final = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "cache_write_tokens": "cache_write_tokens",
    "cache_write_1h_tokens": "cache_write_1h_tokens",
    "reasoning_tokens": "output_reasoning_tokens",
}
USAGE_KEY_TO_FIELD: Final = {v: k for k, v in FIELD_TO_USAGE_KEY.items()}

# More tokens than any model's context window holds in one call: a corrupt count, not a real one.
DEFAULT_TOKEN_LIMIT: Final = 100_000_000


class UsageLike(Protocol):
    """Anything with the named counts and ``other``: a :class:`Usage`, or a canonical call record."""

    input_tokens: Any
    output_tokens: Any
    cache_read_tokens: Any
    cache_write_tokens: Any
    cache_write_1h_tokens: Any
    reasoning_tokens: Any

    @property
    def other(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: Any = None
    output_tokens: Any = None
    cache_read_tokens: Any = None
    cache_write_tokens: Any = None
    cache_write_1h_tokens: Any = None
    reasoning_tokens: Any = None
    other: Mapping[str, Any] | None = None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Usage:
        """A usage from flat keys: the named fields, or any registry usage key."""
        named: dict[str, Any] = {}
        other: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if key in FIELD_TO_USAGE_KEY:
                named[key] = value
            elif key in USAGE_KEY_TO_FIELD:
                named[USAGE_KEY_TO_FIELD[key]] = value
            else:
                other[key] = value
        return cls(**named, other=other or None)

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in FIELD_TO_USAGE_KEY if getattr(self, f) is not None}
        if self.other:
            out.update(self.other)
        return out


named_counts = operator.attrgetter(*FIELD_TO_USAGE_KEY)  # the six named counts, as a tuple
NOTHING_NAMED: Final = (None,) * len(FIELD_TO_USAGE_KEY)


def problem_with(
    values: tuple[Any, ...], other: Mapping[str, Any] | None, token_limit: int = DEFAULT_TOKEN_LIMIT
) -> str | None:
    """Why these counts cannot be priced, or ``None`` when they can. ``values`` are a usage's named
    counts (from :data:`named_counts`), ``other`` its other counts."""
    for value in values:
        if value is not None and not (type(value) is int and 0 <= value <= token_limit):
            name = next(n for n, v in zip(FIELD_TO_USAGE_KEY, values, strict=True) if v is value)
            return _describe_bad_count(name, value, token_limit, integral=True)
    if other:
        for name, value in other.items():
            if type(value) is int and 0 <= value <= token_limit:
                continue
            integral = name.endswith("_tokens")
            if not integral and isinstance(value, Decimal) and value.is_finite() and value >= 0:
                continue
            if not integral and type(value) is float and math.isfinite(value) and value >= 0:
                continue
            return _describe_bad_count(name, value, token_limit, integral=integral)
    # The canonical arithmetic: each part is counted inside its whole (an unreported whole is not checked).
    input_tokens, output_tokens, cache_read, cache_write, cache_write_1h, reasoning = values
    if input_tokens is not None and (cache_read or 0) + (cache_write or 0) > input_tokens:
        return _inconsistent(
            input_tokens, "input_tokens", cache_read_tokens=cache_read, cache_write_tokens=cache_write
        )
    if cache_write is not None and cache_write_1h and cache_write_1h > cache_write:
        return _inconsistent(cache_write, "cache_write_tokens", cache_write_1h_tokens=cache_write_1h)
    if output_tokens is not None and reasoning and reasoning > output_tokens:
        return _inconsistent(output_tokens, "output_tokens", reasoning_tokens=reasoning)
    return None


def _inconsistent(total: int, whole: str, **parts: int | None) -> str:
    names = " + ".join(f"{p} ({v})" for p, v in parts.items() if v)
    return f"inconsistent usage: {names} is more than {whole} ({total}); {whole} must include them"


def _describe_bad_count(name: str, value: Any, token_limit: int, *, integral: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return f"{name} is not a number: {value!r}"
    if (isinstance(value, float) and not math.isfinite(value)) or (
        isinstance(value, Decimal) and not value.is_finite()
    ):
        return f"{name} is not finite: {value!r}"
    if value < 0:
        return f"{name} is negative: {value!r}"
    if integral and value != int(value):
        return f"{name} is fractional: {value!r}"
    if value > token_limit:
        return f"{name} is implausibly large: {value!r} (limit {token_limit})"
    return f"{name} must be a whole number: {value!r}"
