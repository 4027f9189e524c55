"""The receivers' bearer token check, one rule for gRPC and HTTP."""

from __future__ import annotations

import hmac


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``. Compared in constant time, so that the time a
    refusal takes tells nothing about how much of a guess was right."""
    if header is None:
        return False
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
