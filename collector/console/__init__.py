"""The web console: spend, trends, traces and SQL in a browser, served by ``costspan serve`` under
``/console/`` on the admin server (docs/console.md).

Pages are rendered on the server (jinja2) from :mod:`.queries`; the browser runs two small vendored
libraries (htmx, uPlot) served from the package itself, so the console works offline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .app import PREFIX, create_app, registry_figures
from .auth import ConsoleAuth, is_loopback

__all__ = ["PREFIX", "ConsoleAuth", "create_app", "mount"]


def mount(
    admin: Any,
    data_dir: Path,
    endpoint: str,
    tokens: tuple[str, ...],
    tls: bool,
    registry: Any,
    pricing: Callable[[], Any] | None = None,
) -> None:
    """Serve the console on the admin application ``admin`` (listening on ``endpoint``, guarded by the admin
    ``tokens``), over ``data_dir``, with the collector's figures from ``registry`` and its prices from the
    engine ``pricing`` makes."""
    auth = ConsoleAuth(tokens, loopback=is_loopback(endpoint))
    app = create_app(data_dir, auth, health=registry_figures(registry), secure_cookie=tls, pricing=pricing)
    admin.mount(PREFIX, app)

    @admin.get("/", include_in_schema=False)
    def home() -> Any:
        from fastapi.responses import RedirectResponse

        return RedirectResponse(f"{PREFIX}/", status_code=307)
