"""The bearer token check, one rule for the gRPC and HTTP receivers and the admin server.

Several tokens may be accepted at once, so that clients can move to a new token before the old one is
withdrawn. A configured value holds one token or several separated by commas: a bearer token has no comma
(RFC 6750, section 2.1: ``b64token`` is letters, digits and ``-._~+/`` with trailing ``=``).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence


def parse_tokens(value: str) -> tuple[str, ...]:
    """The tokens in a configured value (``"old,new"``); blanks around and between them are dropped.
    ValueError for a token with a space or a character outside printable ASCII, which no header carries
    intact."""
    tokens = tuple(token.strip() for token in value.split(",") if token.strip())
    for index, token in enumerate(tokens):
        if not all("!" <= char <= "~" for char in token):
            raise ValueError(
                f"token {index + 1} of {len(tokens)} has a space or a character outside printable ASCII"
            )
    return tokens


def authorized(header: str | None, tokens: Sequence[str]) -> bool:
    """Whether an ``Authorization`` header carries one of ``tokens``. Every token is compared, each in
    constant time, so that the time a refusal takes tells nothing about how much of a guess was right, nor
    which token it came close to."""
    if isinstance(tokens, str):  # a str is a sequence too: of one-character "tokens"
        raise TypeError("tokens: a sequence of tokens, not one str")
    if header is None or not tokens:
        return False
    given = header.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, f"Bearer {token}".encode())
    return matched
