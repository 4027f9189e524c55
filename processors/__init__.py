"""costspan.processors: the collector's processor chain, one module per processor.

    from costspan.processors import SpanBatch, build_chain

    chain = build_chain()          # normalize, dedupe, price, attribute, redact with defaults
    batch = chain(SpanBatch.from_spans(spans))
    batch.llm_calls()              # canonical, priced, attributed records; duplicates marked

Each processor is a function over a :class:`SpanBatch` built from its YAML mapping by :func:`build`;
``Chain.counts()`` reports what each one did.
"""

from ._base import (
    DEFAULT_CHAIN,
    Chain,
    ConfigError,
    PermanentError,
    Processor,
    ProcessorError,
    RetryableError,
    build,
    build_chain,
    chain_from_config,
    known_processors,
)
from ._batch import Span, SpanBatch

__all__ = [
    "DEFAULT_CHAIN",
    "Chain",
    "ConfigError",
    "PermanentError",
    "Processor",
    "ProcessorError",
    "RetryableError",
    "Span",
    "SpanBatch",
    "build",
    "build_chain",
    "chain_from_config",
    "known_processors",
]
