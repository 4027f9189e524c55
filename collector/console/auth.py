"""Who may open the console.

The console shows every stored call and runs SQL over them, so it is never open to the network by default:

- the admin server on a loopback address and no admin token: open (as ``costspan sql`` is to whoever is on
  the machine);
- an admin token configured (``admin.bearer_token_env``): every page asks for it, as ``Authorization:
  Bearer <token>`` (scripts) or through the login form, which sets a cookie (browsers). The cookie holds an
  HMAC of the token under a key made when the collector starts, never the token itself: it is worthless
  after a restart or once the token is withdrawn;
- the admin server beyond loopback without a token: the console is off (each page says why), since anyone
  who reaches the port would read the data.

The vendored scripts and styles under ``static/`` are served to everyone: the login page needs them, and they
are public release files.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence

from costspan.collector.receivers._auth import authorized

COOKIE = "costspan_console"


def is_loopback(endpoint: str) -> bool:
    """Whether ``host:port`` listens on a loopback address only."""
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


class ConsoleAuth:
    def __init__(self, tokens: Sequence[str], loopback: bool) -> None:
        self.tokens = tuple(tokens)
        self.loopback = loopback
        self._key = secrets.token_bytes(32)

    @property
    def off(self) -> bool:
        """Beyond loopback without a token: no page is served."""
        return not self.tokens and not self.loopback

    @property
    def needs_login(self) -> bool:
        return bool(self.tokens)

    def cookie_for(self, token: str) -> str | None:
        """The cookie value that stands for ``token``, or None when it is no configured token."""
        if not authorized(f"Bearer {token}", self.tokens):
            return None
        return self._seal(token)

    def allowed(self, header: str | None, cookie: str | None) -> bool:
        if not self.tokens:
            return self.loopback
        if authorized(header, self.tokens):
            return True
        if not cookie:
            return False
        matched = False
        for token in self.tokens:  # each compared, in constant time (as the bearer check does)
            matched |= hmac.compare_digest(cookie.encode(), self._seal(token).encode())
        return matched

    def _seal(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
