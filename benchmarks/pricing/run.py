"""Pricing throughput: costspan's engine against pydantic's genai-prices on the same 100,000 LLM calls.

    python benchmarks/pricing/run.py        (or: make bench-pricing)

What is measured. A deterministic workload (``random.Random(42)``) of 100,000 calls over ~50 models that
real applications use, weighted like real traffic (a few models dominate), is built before any timing:
log-normal input (200..200k tokens, some above 200k on long-context models such as gemini-2.5-pro, whose
price tiers then apply), output 20..4,000, cache reads on ~40% of calls to models with a cache-read
price, cache writes (some with a one-hour lifetime) on models with cache-write prices, reasoning tokens
on reasoning models, a service tier (batch / flex / priority) on ~10% of calls to models that have that
variant, and timestamps spread over 2025-01-01..2026-11-01 so dated prices (o3's 2025-06-10 cut,
DeepSeek's off-peak hours, the 2026-10 tier prices) are exercised. Every model is checked at start-up:
one genai-prices cannot price is dropped and listed.

Both engines price the same list, one call at a time, through their public API: ``PricingEngine.price``
and ``genai_prices.calc_price``, with usage objects built in advance. Each first warms up on a slice;
then costspan prices the whole list 3 times and the best run counts; genai-prices likewise, unless one
run already takes more than ~15 s, in which case that single run counts. Times are wall-clock
(``time.perf_counter``) in this one process, so the ratio matters more than absolute figures. Each timed
loop keeps only the Decimal cost of every call, as a collector exporting the figure would.

costspan caches model resolutions and compiled price plans (per model, price period and tier, where a
period is the span between two dated price changes, or a daily window for time-of-day prices). The first
run fills them; later runs show the steady state of a long-running collector. The per-run figures are
printed beside the best.

How to read the output. ``calls/s`` and ``us/call`` are throughput and mean latency per call; ``ratio``
is costspan calls/s divided by genai-prices calls/s (the project's goal is at least 20x). ``total`` is
each engine's exact Decimal sum over the compared calls, printed as plain digits; ``totals identical``
compares them and counts the calls whose costs differ. Calls that fall under a deliberate difference
(costspan applies the provider's documented 50% batch factor where the catalog has no batch price;
costspan charges one-hour cache writes of Claude models lacking that price at 2x input) are excluded and
counted on their own line. ``peak RSS`` is the process's maximum resident memory: both engines with
their price data, the 100,000 prepared calls and the costs kept for comparison.

Exit status: 1 when a compared call's cost differs between the engines (the first 5 are printed),
0 otherwise. Speed is reported, never asserted.
"""

from __future__ import annotations

import gc
import math
import random
import resource
import sys
import time as clock
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, Inexact, localcontext
from typing import TypeVar

import genai_prices
from genai_prices import Usage as GUsage
from genai_prices import calc_price

from costspan.pricing import PRICED, PriceResult, PricingEngine, Usage, decimal_str, embedded_catalog

SEED = 42
CALLS = 100_000
WARMUP_CALLS = 2_000
COSTSPAN_RUNS = 3
GENAI_RUNS = 3
GENAI_SINGLE_RUN_SECONDS = 15.0  # one genai-prices run longer than this is the only one
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)

SERVICE_TIER_SHARE = 0.10  # of all calls
CACHE_READ_SHARE = 0.40  # of calls to models with a cache-read price
CACHE_WRITE_SHARE = 0.30  # of calls to models with a cache-write price
CACHE_WRITE_1H_SHARE = 0.30  # of cache-writing calls to models with a one-hour cache-write price
LONG_CONTEXT_SHARE = 0.06  # of calls to long-context models: input above 200k tokens

T = TypeVar("T")

# Tier name as a response reports it -> genai-prices price context; the catalog variant it selects.
TIERS: dict[str, dict[str, str]] = {
    "batch": {"processing": "batch"},
    "flex": {"service_tier": "flex"},
    "priority": {"service_tier": "priority"},
}

# Deliberate differences: a costspan rule (substring of PriceResult.rules) -> why the costs differ.
DELIBERATE = {
    "batch x": "batch factor applied where the catalog has no batch price (genai-prices: standard price)",
    "1h cache write": "1h cache write of a Claude model at 2x input (genai-prices: the 5-minute rate)",
}


@dataclass(frozen=True)
class ModelSpec:
    provider: str  # genai-prices provider id
    model: str  # the model reference an application sends
    weight: float  # share of traffic, relative
    kind: str = "chat"  # "chat", "reasoning" (output includes reasoning tokens) or "embedding"
    long_context: bool = False  # some calls above 200k input tokens
    since: date | None = None  # release date: no calls before it


def _d(text: str) -> date:
    return date.fromisoformat(text)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


MODELS: tuple[ModelSpec, ...] = (
    # OpenAI
    ModelSpec("openai", "gpt-4o-mini", 14),
    ModelSpec("openai", "gpt-4o", 10),
    ModelSpec("openai", "gpt-4.1", 5, long_context=True, since=_d("2025-04-14")),
    ModelSpec("openai", "gpt-4.1-mini", 7, since=_d("2025-04-14")),
    ModelSpec("openai", "gpt-4.1-nano", 2, since=_d("2025-04-14")),
    ModelSpec("openai", "o3", 2, "reasoning", since=_d("2025-04-16")),
    ModelSpec("openai", "o4-mini", 3, "reasoning", since=_d("2025-04-16")),
    ModelSpec("openai", "o3-mini", 1, "reasoning", since=_d("2025-01-31")),
    ModelSpec("openai", "o1", 0.5, "reasoning"),
    ModelSpec("openai", "gpt-5", 5, "reasoning", since=_d("2025-08-07")),
    ModelSpec("openai", "gpt-5-mini", 6, "reasoning", since=_d("2025-08-07")),
    ModelSpec("openai", "gpt-5-nano", 2, "reasoning", since=_d("2025-08-07")),
    ModelSpec("openai", "text-embedding-3-small", 7, "embedding"),
    ModelSpec("openai", "text-embedding-3-large", 2, "embedding"),
    # Anthropic
    ModelSpec("anthropic", "claude-sonnet-4-5", 7, long_context=True, since=_d("2025-09-29")),
    ModelSpec("anthropic", "claude-sonnet-4-20250514", 2, since=_d("2025-05-22")),
    ModelSpec("anthropic", "claude-3-7-sonnet-latest", 2, "reasoning"),
    ModelSpec("anthropic", "claude-opus-4-1", 1, "reasoning", since=_d("2025-08-05")),
    ModelSpec("anthropic", "claude-haiku-4-5", 3, since=_d("2025-10-15")),
    ModelSpec("anthropic", "claude-3-5-haiku-latest", 2),
    # Google (Gemini API / Vertex AI)
    ModelSpec("google", "gemini-2.5-flash", 6, "reasoning", long_context=True, since=_d("2025-06-17")),
    ModelSpec("google", "gemini-2.5-pro", 3, "reasoning", long_context=True, since=_d("2025-06-17")),
    ModelSpec("google", "gemini-2.0-flash", 3),
    ModelSpec("google", "gemini-2.5-flash-lite", 2, since=_d("2025-07-22")),
    ModelSpec("google", "gemini-embedding-001", 1, "embedding", since=_d("2025-07-14")),
    ModelSpec("google", "claude-sonnet-4-5", 0.5, since=_d("2025-09-29")),
    # Amazon Bedrock
    ModelSpec("aws", "us.anthropic.claude-sonnet-4-20250514-v1:0", 2, since=_d("2025-05-22")),
    ModelSpec("aws", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", 1.5, since=_d("2025-09-29")),
    ModelSpec("aws", "us.anthropic.claude-3-7-sonnet-20250219-v1:0", 1),
    ModelSpec("aws", "us.anthropic.claude-haiku-4-5-20251001-v1:0", 0.7, since=_d("2025-10-15")),
    ModelSpec("aws", "amazon.nova-pro-v1:0", 0.7),
    ModelSpec("aws", "amazon.nova-lite-v1:0", 0.7),
    ModelSpec("aws", "meta.llama3-3-70b-instruct-v1:0", 0.4),
    ModelSpec("aws", "amazon.titan-embed-text-v2:0", 0.5, "embedding"),
    # Azure OpenAI
    ModelSpec("azure", "gpt-4o", 3),
    ModelSpec("azure", "gpt-4o-mini", 3),
    ModelSpec("azure", "o4-mini", 0.5, "reasoning", since=_d("2025-04-16")),
    # Mistral
    ModelSpec("mistral", "mistral-small-latest", 1),
    ModelSpec("mistral", "mistral-large-latest", 0.7),
    ModelSpec("mistral", "codestral-latest", 0.5),
    # Groq
    ModelSpec("groq", "llama-3.3-70b-versatile", 1),
    ModelSpec("groq", "llama-3.1-8b-instant", 1),
    ModelSpec("groq", "openai/gpt-oss-120b", 0.5, "reasoning", since=_d("2025-08-05")),
    # DeepSeek (off-peak prices by time of day)
    ModelSpec("deepseek", "deepseek-chat", 1.5),
    ModelSpec("deepseek", "deepseek-reasoner", 0.7, "reasoning"),
    # xAI
    ModelSpec("x-ai", "grok-4-0709", 0.7, "reasoning", since=_d("2025-07-09")),
    ModelSpec("x-ai", "grok-3", 0.5),
    ModelSpec("x-ai", "grok-3-mini", 0.5, "reasoning"),
    # Together, Fireworks
    ModelSpec("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", 0.6),
    ModelSpec(
        "fireworks", "accounts/fireworks/models/deepseek-r1-0528", 0.3, "reasoning", since=_d("2025-05-28")
    ),
    ModelSpec("fireworks", "accounts/fireworks/models/llama4-maverick-instruct-basic", 0.3),
    # OpenRouter
    ModelSpec("openrouter", "anthropic/claude-sonnet-4.5", 1, since=_d("2025-09-29")),
    ModelSpec("openrouter", "openai/gpt-4o-mini", 0.7),
    ModelSpec("openrouter", "google/gemini-2.5-flash", 0.7, since=_d("2025-06-17")),
    ModelSpec("openrouter", "meta-llama/llama-3.3-70b-instruct", 0.4),
    # Cohere
    ModelSpec("cohere", "command-r-plus", 0.4),
    ModelSpec("cohere", "command-a", 0.4, since=_d("2025-03-13")),
    ModelSpec("cohere", "embed-v4.0", 0.3, "embedding", since=_d("2025-04-15")),
)


@dataclass(frozen=True)
class Usable:
    """A model both engines price, with what its catalog entry offers."""

    spec: ModelSpec
    tiers: tuple[tuple[str, datetime], ...]  # (tier, first moment its variant is in force)


@dataclass(frozen=True)
class Call:
    provider: str
    model: str
    timestamp: datetime
    tier: str | None
    usage: Usage
    gusage: GUsage


# -- workload -------------------------------------------------------------------------------------------


def usable_models(engine: PricingEngine) -> tuple[list[Usable], list[str]]:
    """The models both engines can price, and why any others were dropped."""
    usable: list[Usable] = []
    dropped: list[str] = []
    probe_at = datetime(2025, 9, 1, tzinfo=UTC)
    for spec in MODELS:
        try:
            calc_price(
                GUsage(input_tokens=1000, output_tokens=100),
                spec.model,
                provider_id=spec.provider,
                genai_request_timestamp=probe_at,
            )
        except LookupError as exc:
            dropped.append(f"{spec.provider}/{spec.model}: genai-prices: {exc}")
            continue
        resolution = engine.resolve(spec.model, spec.provider)
        if resolution is None:
            reason = engine.unresolved_reason(spec.model, spec.provider)
            dropped.append(f"{spec.provider}/{spec.model}: costspan: {reason}")
            continue
        tiers: list[tuple[str, datetime]] = []
        if not resolution.via_fallback:  # a fallback provider's calls are priced at standard rates
            for tier, context in TIERS.items():
                starts = [
                    START if v.when is None else max(START, _midnight(v.when.start_date))
                    for v in resolution.model.variants
                    if dict(v.context) == context and (v.when is None or v.when.start_date is not None)
                ]
                if starts and min(starts) < END:
                    tiers.append((tier, min(starts)))
        usable.append(Usable(spec, tuple(tiers)))
    return usable, dropped


def _log_normal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, int(math.exp(rng.gauss(math.log(median), sigma)))))


def _timestamp(rng: random.Random, start: datetime) -> datetime:
    seconds = (END - start).total_seconds()
    return start + timedelta(seconds=int(rng.random() * seconds))


def build_calls(engine: PricingEngine, models: list[Usable], n: int) -> list[Call]:
    rng = random.Random(SEED)
    weights = [m.spec.weight for m in models]
    tiered_share = sum(m.spec.weight for m in models if m.tiers) / sum(weights)
    tier_chance = min(0.5, SERVICE_TIER_SHARE / tiered_share) if tiered_share else 0.0
    resolutions = {id(m): engine.resolve(m.spec.model, m.spec.provider) for m in models}
    calls: list[Call] = []
    for usable in rng.choices(models, weights=weights, k=n):
        spec = usable.spec
        since = START
        if spec.since is not None:
            since = max(START, _midnight(spec.since))
        tier: str | None = None
        if usable.tiers and rng.random() < tier_chance:
            tier, tier_start = rng.choice(usable.tiers)
            since = max(since, tier_start)
        at = _timestamp(rng, since)
        resolution = resolutions[id(usable)]
        assert resolution is not None
        prices = engine.price_set_at(resolution, at).prices

        cache_read = cache_write = cache_write_1h = reasoning = 0
        if spec.kind == "embedding":
            input_tokens = _log_normal(rng, 600, 1.1, 200, 8_000)
            output_tokens = 0
        else:
            if spec.long_context and rng.random() < LONG_CONTEXT_SHARE:
                input_tokens = int(math.exp(rng.uniform(math.log(200_001), math.log(900_000))))
            else:
                input_tokens = _log_normal(rng, 3_000, 1.3, 200, 200_000)
            median_output = 900 if spec.kind == "reasoning" else 350
            output_tokens = _log_normal(rng, median_output, 1.0, 20, 4_000)
            if spec.kind == "reasoning" and rng.random() < 0.85:
                reasoning = int(output_tokens * rng.uniform(0.2, 0.9))
            if "cache_read_mtok" in prices and rng.random() < CACHE_READ_SHARE:
                cache_read = int(input_tokens * rng.uniform(0.1, 0.95))
            if "cache_write_mtok" in prices and rng.random() < CACHE_WRITE_SHARE:
                cache_write = int((input_tokens - cache_read) * rng.uniform(0.2, 1.0))
                if cache_write and "cache_write_1h_mtok" in prices and rng.random() < CACHE_WRITE_1H_SHARE:
                    cache_write_1h = rng.choice((cache_write, int(cache_write * rng.uniform(0.3, 1.0))))

        counts = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": cache_read,
            "cache_write_tokens": cache_write,
            "cache_write_1h_tokens": cache_write_1h,
        }
        reported = {k: v for k, v in counts.items() if v}
        usage = Usage(**reported, reasoning_tokens=reasoning or None)
        if reasoning:
            reported["output_reasoning_tokens"] = reasoning
        calls.append(Call(spec.provider, spec.model, at, tier, usage, GUsage(**reported)))
    return calls


# -- timing ---------------------------------------------------------------------------------------------
# Each timed loop keeps only the Decimal cost of every call, as a collector would (it exports the figure and
# drops the result object). Keeping 100,000 result objects alive would mostly time the garbage collector
# walking them (costspan's results hold a dict and a list each), not the pricing.


def time_costspan(engine: PricingEngine, calls: list[Call]) -> tuple[float, list[Decimal | None]]:
    args = [(c.model, c.usage, c.provider, c.timestamp, c.tier) for c in calls]
    price = engine.price
    gc.collect()
    started = clock.perf_counter()
    costs = [
        price(model, usage, provider=provider, timestamp=at, service_tier=tier).cost_usd
        for model, usage, provider, at, tier in args
    ]
    return clock.perf_counter() - started, costs


def time_genai(calls: list[Call]) -> tuple[float, list[Decimal]]:
    args = [(c.gusage, c.model, c.provider, c.timestamp, TIERS[c.tier] if c.tier else None) for c in calls]
    gc.collect()
    started = clock.perf_counter()
    costs = [
        calc_price(
            usage, model, provider_id=provider, genai_request_timestamp=at, price_context=ctx
        ).total_price
        for usage, model, provider, at, ctx in args
    ]
    return clock.perf_counter() - started, costs


def repeat(
    timer: Callable[[], tuple[float, list[T]]], runs: int, single_run_seconds: float
) -> tuple[list[float], list[T]]:
    """Run ``timer`` up to ``runs`` times (once when the first run is longer than ``single_run_seconds``)."""
    times: list[float] = []
    costs: list[T] = []
    for _ in range(runs):
        costs = []  # let the previous run's costs go first
        elapsed, costs = timer()
        times.append(elapsed)
        if elapsed > single_run_seconds:
            break
    return times, costs


# -- comparison -----------------------------------------------------------------------------------------


@dataclass
class Comparison:
    costspan_total: Decimal = Decimal(0)
    genai_total: Decimal = Decimal(0)
    compared: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    differing: list[tuple[Call, PriceResult, Decimal | None, Decimal]] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.differing and self.costspan_total == self.genai_total


def compare(
    engine: PricingEngine, calls: list[Call], costspan_costs: list[Decimal | None], genai_costs: list[Decimal]
) -> Comparison:
    """Call-by-call equality of the timed costs, leaving out the documented deliberate differences.

    Each call is priced once more, untimed, for the rules that decided its price (which tell a deliberate
    difference) and its status. Sums run in a context that traps any rounding, so the totals are exact."""
    out = Comparison()
    costspan_compared: list[Decimal] = []
    genai_compared: list[Decimal] = []
    for call, cost, expected in zip(calls, costspan_costs, genai_costs, strict=True):
        result = engine.price(
            call.model, call.usage, provider=call.provider, timestamp=call.timestamp, service_tier=call.tier
        )
        reason = deliberate_reason(result)
        if reason is not None:
            out.excluded[reason] += 1
            continue
        if result.status != PRICED or cost != expected or result.cost_usd != cost:
            out.differing.append((call, result, cost, expected))
        costspan_compared.append(cost or Decimal(0))
        genai_compared.append(expected)
    out.compared = len(genai_compared)
    with localcontext() as exact:
        exact.prec = 1000
        exact.traps[Inexact] = True
        out.costspan_total = sum(costspan_compared, Decimal(0))
        out.genai_total = sum(genai_compared, Decimal(0))
    return out


def deliberate_reason(result: PriceResult) -> str | None:
    for marker in DELIBERATE:
        if any(marker in rule for rule in result.rules):
            return marker
    return None


# -- report ---------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def plain(value: Decimal | None) -> str:
    """Exact, as plain digits (no exponent), trailing zeros dropped."""
    return decimal_str(value) or "none"


def describe_call(call: Call) -> str:
    usage = ", ".join(f"{k}={v}" for k, v in call.usage.to_dict().items())
    tier = f", service_tier={call.tier}" if call.tier else ""
    return f"{call.provider} {call.model!r} at {call.timestamp.isoformat()}{tier}: {usage}"


def workload_summary(calls: list[Call]) -> str:
    n = len(calls)
    share = Counter[str]()
    for c in calls:
        u = c.usage
        share["cache reads"] += bool(u.cache_read_tokens)
        share["cache writes"] += bool(u.cache_write_tokens)
        share["1h writes"] += bool(u.cache_write_1h_tokens)
        share["reasoning"] += bool(u.reasoning_tokens)
        share[">200k input"] += (u.input_tokens or 0) > 200_000
        if c.tier:
            share["service tier"] += 1
            share[c.tier] += 1

    def pct(key: str) -> str:
        return f"{100 * share[key] / n:.1f}%"

    tiers = ", ".join(f"{t} {pct(t)}" for t in TIERS)
    return (
        f"cache reads {pct('cache reads')}, cache writes {pct('cache writes')} (1h {pct('1h writes')}), "
        f"reasoning {pct('reasoning')}, >200k input {pct('>200k input')},\n"
        f"{'':21}service tier {pct('service tier')} ({tiers}), timestamps {START.date()}..{END.date()}"
    )


def runs_note(n: int, times: list[float]) -> str:
    if len(times) == 1:
        return "(1 run)"
    return f"(best of {len(times)}: " + " / ".join(f"{n / t:,.0f}" for t in times) + ")"


def main() -> int:
    engine = PricingEngine([embedded_catalog()])
    models, dropped = usable_models(engine)
    calls = build_calls(engine, models, CALLS)
    n = len(calls)
    providers = {m.spec.provider for m in models}

    # Warm-up: first-call imports, lookups and caches, on a slice of the same workload.
    time_costspan(engine, calls[:WARMUP_CALLS])
    time_genai(calls[:WARMUP_CALLS])
    costspan_times, costspan_costs = repeat(lambda: time_costspan(engine, calls), COSTSPAN_RUNS, math.inf)
    genai_times, genai_costs = repeat(lambda: time_genai(calls), GENAI_RUNS, GENAI_SINGLE_RUN_SECONDS)
    comparison = compare(engine, calls, costspan_costs, genai_costs)

    costspan_rate = n / min(costspan_times)
    genai_rate = n / min(genai_times)
    genai_label = f"genai-prices {genai_prices.__version__}"
    differing = comparison.differing
    print(f"{'calls':<20}{n:>10,}  ({len(models)} models, {len(providers)} providers, seed {SEED})")
    print(f"{'workload':<20} {workload_summary(calls)}")
    print(f"{'catalog':<20} costspan {engine.version}")
    print()
    print(f"{'':<20}{'calls/s':>10}{'us/call':>10}   total (USD)")
    for label, rate, total, times in (
        (genai_label, genai_rate, comparison.genai_total, genai_times),
        ("costspan", costspan_rate, comparison.costspan_total, costspan_times),
    ):
        print(f"{label:<20}{rate:>10,.0f}{1e6 / rate:>10.2f}   ${plain(total)}  {runs_note(n, times)}")
    identical = "yes" if comparison.identical else "NO"
    print(
        f"{'ratio':<20}{costspan_rate / genai_rate:>9.1f}x{'':>10}   totals identical: {identical} "
        f"({len(differing):,} of {comparison.compared:,} calls differ)"
    )
    print(f"{'excluded':<20}{sum(comparison.excluded.values()):>10,}  calls under deliberate differences")
    for marker, count in comparison.excluded.most_common():
        print(f"{'':<22}{count:,}: {DELIBERATE[marker]}")
    print(f"{'peak RSS':<20}{peak_rss_mb():>10,.0f}  MB")
    if dropped:
        print(f"\ndropped {len(dropped)} models:")
        for line in dropped:
            print(f"  {line}")
    if differing:
        print(f"\nfirst {min(5, len(differing))} of {len(differing):,} differing calls:")
        for call, priced, cost, expected in differing[:5]:
            status = "" if priced.status == PRICED else f" ({priced.status}: {priced.detail})"
            print(f"  {describe_call(call)}")
            print(f"      genai-prices {plain(expected)}   costspan {plain(cost)}{status}")
            print(f"      costspan rules {list(priced.rules)}")
    return 0 if comparison.identical else 1


if __name__ == "__main__":
    sys.exit(main())
