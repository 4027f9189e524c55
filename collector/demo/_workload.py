"""The demo's company: who calls which models for what, and how much, as data.

Four services of four teams, each with its features, models and prompt sizes; a support agent whose
planner, retriever and executor steps are traced as an agent span tree; a RAG answer with its embedding
and retrieval stages; customers whose usage follows a long tail. :func:`day_volume` gives weekday
seasonality and slow growth, so the backfilled history looks like a real product's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Feature:
    service: str
    team: str
    feature: str
    provider: str
    model: str
    input_tokens: int  # median prompt size
    output_tokens: int  # median completion size
    cached_share: float  # part of calls that read a cached prompt prefix
    calls_per_day: int  # on an ordinary weekday
    prompt_key: str
    prompt_version: str
    streaming: bool = False


# One row per feature: its median prompt and completion sizes, the part of its calls that read a cached
# prompt prefix, and its calls on an ordinary weekday.
_FEATURE_TABLE = """
service         team     feature         provider   model              in  out cached calls prompt  ver stream
checkout-api    payments fraud-explain   openai     gpt-4o           1800  220   0.0     30 fraud   v3  no
checkout-api    payments receipt-summary openai     gpt-4o-mini       900  120   0.0     90 receipt v5  no
search-api      search   query-rewrite   openai     gpt-4.1-mini      350   40   0.0    170 rewrite v2  no
search-api      search   rag-answer      anthropic  claude-haiku-4-5 3200  350   0.55   100 rag     v9  yes
support-bot     support  ticket-triage   gcp.gemini gemini-2.5-flash 1400   60   0.0     70 triage  v4  no
recommendations growth   product-blurbs  openai     gpt-4o-mini       600  180   0.0    120 blurb   v1  no
"""


def _features(table: str) -> tuple[Feature, ...]:
    rows = [line.split() for line in table.strip().splitlines()[1:]]
    return tuple(
        Feature(svc, team, feat, prov, model, int(i), int(o), float(c), int(n), key, ver, stream == "yes")
        for svc, team, feat, prov, model, i, o, c, n, key, ver, stream in rows
    )


FEATURES = _features(_FEATURE_TABLE)
# The support agent: one conversation turn is planned, grounded and answered in three steps.
AGENT = "support-agent"
AGENT_SERVICE, AGENT_TEAM, AGENT_FEATURE = "support-bot", "support", "reply-draft"
AGENT_TURNS_PER_DAY = 50
AGENT_STEPS = (
    # step, provider, model, input tokens, output tokens, cached share
    ("planner", "openai", "o4-mini", 2200, 700, 0.0),
    ("retriever", "openai", "text-embedding-3-small", 180, 0, 0.0),
    ("executor", "anthropic", "claude-sonnet-4-5", 5200, 480, 0.7),
)
CUSTOMERS = tuple(f"cust-{i:03d}" for i in range(1, 201))
_CUSTOMER_WEIGHTS = tuple(1 / (i**1.1) for i in range(1, len(CUSTOMERS) + 1))  # a long tail
WEEKDAY_FACTOR = (1.0, 1.05, 1.08, 1.02, 0.92, 0.42, 0.33)  # Monday .. Sunday
GROWTH_PER_DAY = 0.008
# One incident to find: a prompt change (v4) that pasted each transaction's history into the fraud
# explanation's prompt for two days, eight times its input. Large enough to stand out on a weekend day too,
# when the feature has a third of its calls.
INCIDENT_DAYS_AGO = (6, 5)
INCIDENT_FEATURE, INCIDENT_VERSION, INCIDENT_INPUT_SCALE = "fraud-explain", "v4", 8.0


def day_volume(base: int, day: date, days_ago: int) -> int:
    """Calls on ``day``: the weekday's factor on a slowly growing base."""
    return max(1, round(base * WEEKDAY_FACTOR[day.weekday()] * math.exp(-GROWTH_PER_DAY * days_ago)))


def customer(rng: random.Random) -> str:
    return rng.choices(CUSTOMERS, weights=_CUSTOMER_WEIGHTS)[0]


def tokens(rng: random.Random, median: int) -> int:
    """A prompt or completion size around its median, with the long right tail real traffic has."""
    return 0 if median == 0 else max(1, int(median * rng.lognormvariate(0, 0.45)))
