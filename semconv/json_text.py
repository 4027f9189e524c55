"""JSON text, read by one set of rules wherever costspan reads it: OTLP/JSON and ``/v1/events`` bodies, and
the JSON that some instrumentations put in a span attribute (Langfuse's usage, the AI SDK's metadata).

- UTF-8 only (RFC 8259, section 8.1): bytes that are not are refused.
- At most :data:`MAX_JSON_DEPTH` levels of nesting: a deeper document is refused, before anything that
  recurses over it (protobuf's parser, ``repr``) could exhaust the stack.
- At most :data:`MAX_JSON_CONTAINERS` objects and arrays and :data:`MAX_JSON_VALUES` values in all: a 20 MB
  body of ``[{},{},...]`` decodes to gigabytes of Python objects (and protobuf messages), far more than the
  memory limiter, which counts bytes on the wire, holds for it. Real OTLP/JSON requests have a few tens of
  thousands (512 spans of 30 attributes: about 30,000 objects and 80,000 values).
- No ``NaN``, ``Infinity`` or ``-Infinity`` literals, which RFC 8259 (section 6) does not allow.
- A ``\\ud800``-style escape of a lone UTF-16 surrogate is valid JSON syntax but no character (RFC 8259,
  section 8.2, leaves its meaning open): it is read as U+FFFD, as Go's ``encoding/json`` reads it, so the
  call is kept and no string that cannot be encoded as UTF-8 reaches protobuf or Parquet.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

# An OTLP/JSON span attribute nested 30 deep (as deep as protobuf's own limit lets a binary request nest
# AnyValues) is about 130 levels of JSON: each AnyValue takes four (value, kvlistValue, values, the pair).
MAX_JSON_DEPTH: Final = 160

MAX_JSON_CONTAINERS: Final = 200_000
MAX_JSON_VALUES: Final = 1_000_000
# JSON strings, to count what is outside them (the unrolled form: no backtracking over long strings)
_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')

# Escapes are read left to right: an escaped backslash, a surrogate pair (one character), a lone surrogate.
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPES: Final = re.compile(
    r"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


class JSONTextError(ValueError):
    """Text that is not JSON by these rules; the message says why."""


def loads(data: bytes | str) -> Any:
    """JSON text (bytes are UTF-8) as Python values, or :class:`JSONTextError` saying why it is not JSON."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONTextError(f"not UTF-8: {exc}") from None
    if len(text) > 2 * MAX_JSON_CONTAINERS:  # a shorter text cannot hold more
        _check_count(text)
    if _SURROGATE_ESCAPE.search(text):
        text = _ESCAPES.sub(_lone_surrogate_replaced, text)
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise JSONTextError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except JSONTextError:
        raise
    except ValueError as exc:  # JSONDecodeError; an integer of more digits than Python converts
        raise JSONTextError(f"not JSON: {exc}") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth_over(doc, MAX_JSON_DEPTH):
        raise JSONTextError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    return doc


def _check_count(text: str) -> None:
    # brackets and commas in strings are not counted; one more value than commas in each container
    outside = _STRING.sub("", text) if text.count('"') else text
    containers = outside.count("{") + outside.count("[")
    if containers > MAX_JSON_CONTAINERS:
        raise JSONTextError(f"the JSON has more than {MAX_JSON_CONTAINERS} objects and arrays")
    if containers + outside.count(",") > MAX_JSON_VALUES:
        raise JSONTextError(f"the JSON has more than {MAX_JSON_VALUES} values")


def _lone_surrogate_replaced(escape: re.Match[str]) -> str:
    text = escape.group()
    return "\\ufffd" if len(text) == 6 else text


def _no_constant(name: str) -> Any:
    raise JSONTextError(f"not JSON: {name} is not a JSON number")


def _depth_over(doc: Any, limit: int) -> bool:
    # iterative: the document may be as deep as the parser's own recursion allowed
    if not isinstance(doc, (dict, list)):
        return False
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False
