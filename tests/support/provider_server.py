"""The local OpenAI / Anthropic stand-in the tests run against: :mod:`costspan.collector.demo.provider`,
which ``costspan demo`` runs too."""

from costspan.collector.demo.provider import (
    CACHED_PREFIX_TOKENS,
    CREATED,
    HOST,
    REASONING_TOKENS,
    REPLY_TEXT,
    ProviderServer,
    RecordedRequest,
    count_tokens,
)

__all__ = [
    "CACHED_PREFIX_TOKENS",
    "CREATED",
    "HOST",
    "REASONING_TOKENS",
    "REPLY_TEXT",
    "ProviderServer",
    "RecordedRequest",
    "count_tokens",
]
