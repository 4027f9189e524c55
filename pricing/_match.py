"""Match clauses: the small boolean language the catalog uses to recognise model and provider names.

A clause is data (``{"starts_with": "gpt-4o"}``, ``{"or": [...]}``) compiled once into a plain predicate.
Text clauses compare case-insensitively; ``regex`` is applied as written, like the catalog's source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[str], bool]

CLAUSE_KINDS = ("starts_with", "ends_with", "contains", "regex", "equals", "or", "and")


class ClauseError(ValueError):
    """A match clause that is not one of the known kinds, or has the wrong shape."""


def compile_clause(clause: Mapping[str, Any]) -> Predicate:
    """Compile a clause into a predicate over an already lower-cased name."""
    if not isinstance(clause, Mapping) or len(clause) != 1:
        raise ClauseError(f"a match clause is one key of {', '.join(CLAUSE_KINDS)}; got {clause!r}")
    ((kind, arg),) = clause.items()
    if kind in ("or", "and"):
        if not isinstance(arg, list) or not arg:
            raise ClauseError(f"{kind!r} takes a non-empty list of clauses; got {arg!r}")
        parts = tuple(compile_clause(part) for part in arg)
        if kind == "or":
            return lambda text: any(part(text) for part in parts)
        return lambda text: all(part(text) for part in parts)
    if not isinstance(arg, str):
        raise ClauseError(f"{kind!r} takes a string; got {arg!r}")
    if kind == "regex":
        try:
            search = re.compile(arg).search
        except re.error as exc:
            raise ClauseError(f"invalid regex {arg!r}: {exc}") from exc
        return lambda text: search(text) is not None
    needle = arg.lower()
    if kind == "starts_with":
        return lambda text: text.startswith(needle)
    if kind == "ends_with":
        return lambda text: text.endswith(needle)
    if kind == "contains":
        return lambda text: needle in text
    if kind == "equals":
        return lambda text: text == needle
    raise ClauseError(f"unknown match clause {kind!r}; expected one of {', '.join(CLAUSE_KINDS)}")


def glob_clause(pattern: str) -> dict[str, Any]:
    """A clause for a shell-style pattern (``gpt-4o*``), the form users write in override files."""
    if not any(ch in pattern for ch in "*?["):
        return {"equals": pattern}
    if pattern.endswith("*") and not any(ch in pattern[:-1] for ch in "*?["):
        return {"starts_with": pattern[:-1]}
    import fnmatch

    return {"regex": "(?i)" + fnmatch.translate(pattern)}
