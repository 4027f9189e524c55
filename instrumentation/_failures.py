"""Failures inside costspan's own code: swallowed, so that the application's call goes on as if costspan were
not there, logged at debug level on the ``costspan.instrumentation`` logger, and counted, so that a reading
that stopped working shows on a dashboard (the ``costspan.instrumentation.failures`` counter, by stage, which
the GenAI client metrics' meter reports: see _metrics).

Only the failure path pays: a lock and a dictionary update.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("costspan.instrumentation")

FAILURES = "costspan.instrumentation.failures"
STAGE = "costspan.stage"  # what costspan was doing: the attribute of the counter

_counts: dict[str, int] = {}
_lock = threading.Lock()


def swallowed(stage: str) -> None:
    """Called in an ``except`` block: the exception being handled, while costspan was doing ``stage`` (a
    fixed phrase: "read a response"), is logged and counted."""
    logger.debug("costspan: could not %s", stage, exc_info=True)
    with _lock:
        _counts[stage] = _counts.get(stage, 0) + 1


def counts() -> dict[str, int]:
    """Failures so far, by stage, since the process started."""
    with _lock:
        return dict(_counts)
