"""Process settings of a long-running collector."""

from __future__ import annotations

import gc

# Young-generation collections every 50,000 allocations instead of Python's 700: a batch of spans
# allocates thousands of short-lived containers, and the default triggers a collection every few spans.
GC_THRESHOLDS = (50_000, 20, 20)


def configure_gc() -> None:
    """Freeze what start-up loaded (price catalogs, caches) out of the collector's view, and collect the
    young generation less often. Called once, after start-up and before the first batch."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
