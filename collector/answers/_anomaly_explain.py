"""Why an anomaly happened: its change in dollars split into four effects, the dimension values that account
for it, and what appeared for the first time.

The split. A scope's cost is a product of four factors,

    cost = calls x (tokens / calls) x (uncached tokens / tokens) x (cost / uncached tokens)
           volume   tokens per call     cache (1 - cache-read share)   price (model mix, cost per token)

(tokens are input + output; input includes cache reads, as the canonical call counts them; uncached tokens
are the tokens that are not cache reads). The change from expected to observed is split with the
logarithmic mean Divisia index, LMDI-I (Ang, "The LMDI approach to decomposition analysis", Energy Policy
32, 2004): effect of factor X = L(observed, expected) x ln(X observed / X expected), with L(a, b) =
(a - b) / (ln a - ln b); it leaves no residual. Where a factor is zero on one side (no calls, no tokens, no
cost) the logarithm is undefined and the split is sequential instead, factor by factor in the order volume,
tokens per call, cache, price (all of a change from or to no calls is volume; with no token counts the
change per call is price). The four parts are rounded to micro-dollars and the remainder of the rounding
(under $0.00001) is put on the largest, so they add up exactly to observed - expected.

The contributors. Over the anomaly's first steps (its onset: up to 24 hours, or 7 days), every other
dimension's values within the scope are compared with the same baseline (the median of the same steps in
the weeks, or days, before), and ranked by their change; each is shown with its share of the scope's change
in that window. First-seen facts: a model or prompt version of the scope first seen at or after the
anomaly's start (within the lookback of the series).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import duckdb
import numpy as np

from . import spend
from ._anomaly_detect import COST_FAMILY, NOT_ENOUGH_DATA, UNPRICED_FAMILY, Episode
from ._anomaly_series import (
    BILLED,
    CACHE_READ,
    COST,
    CUT_SHORT,
    INPUT,
    ORG,
    OUTPUT,
    UNPRICED,
    dollars,
    hour_index,
    hour_start,
    picodollars,
)

MICRO = Decimal("0.000001")
ONSET_STEPS = {"hourly": 24, "daily": 7}
FIRST_SEEN_DIMENSIONS = ("model", "prompt_version")
NOTABLE_RATIO = 1.3  # a per-call ratio worth naming
TOP = 10  # contributors kept
SHOWN = 3  # contributors in the one-line text


@dataclass(frozen=True)
class Parts:
    """The change observed - expected, split; the four add up exactly to it."""

    volume: Decimal
    tokens_per_call: Decimal
    cache: Decimal
    price: Decimal
    method: str  # "lmdi" or "sequential"

    @property
    def total(self) -> Decimal:
        return self.volume + self.tokens_per_call + self.cache + self.price


@dataclass(frozen=True)
class Contributor:
    dimension: str
    value: str | None
    change: Decimal  # dollars (cost anomalies) or calls (unpriced, cut short)
    share: float  # of the scope's change over the onset


@dataclass(frozen=True)
class FirstSeen:
    dimension: str
    value: str
    at: datetime


@dataclass(frozen=True)
class Explanation:
    parts: Parts | None  # None for the anomalies of calls (unpriced, cut short)
    contributors: tuple[Contributor, ...]
    first_seen: tuple[FirstSeen, ...]
    ratios: tuple[tuple[str, float], ...]  # ("input tokens per call", 2.1) ...
    text: str


def change_usd(observed: np.ndarray, expected: np.ndarray) -> Decimal:
    """Observed - expected cost of totals (measure vectors), exactly as stored: to 1e-12 USD."""
    return dollars(int(observed[COST])) - dollars(float(expected[COST]))


def decompose(observed: np.ndarray, expected: np.ndarray) -> Parts:
    """Split the cost change between two totals (measure vectors); see the module's docstring."""
    target = change_usd(observed, expected)
    v1, v0 = float(observed[BILLED]), float(expected[BILLED])
    t1, t0 = float(observed[INPUT] + observed[OUTPUT]), float(expected[INPUT] + expected[OUTPUT])
    u1, u0 = t1 - float(observed[CACHE_READ]), t0 - float(expected[CACHE_READ])
    c1, c0 = float(observed[COST]), float(expected[COST])
    if v1 <= 0 or v0 <= 0:
        raw, method = [c1 - c0, 0.0, 0.0, 0.0], "sequential"
    elif min(t1, t0, u1, u0) <= 0:
        volume = (v1 - v0) * c0 / v0
        raw, method = [volume, 0.0, 0.0, c1 - c0 - volume], "sequential"
    else:
        new = (v1, t1 / v1, u1 / t1, c1 / u1)
        old = (v0, t0 / v0, u0 / t0, c0 / u0)
        if c1 <= 0 or c0 <= 0:
            raw, current = [], list(old)
            for k in range(4):
                before = math.prod(current)
                current[k] = new[k]
                raw.append(math.prod(current) - before)
            method = "sequential"
        else:
            weight = c1 if c1 == c0 else (c1 - c0) / (math.log(c1) - math.log(c0))
            raw = [weight * math.log(a / b) for a, b in zip(new, old, strict=True)]
            method = "lmdi"
    parts = [(Decimal(repr(x)) * Decimal("1E-12")).quantize(MICRO) for x in raw]
    largest = max(range(4), key=lambda k: abs(parts[k]))
    parts[largest] += target - sum(parts, Decimal(0))
    return Parts(*parts, method=method)


def explain(
    con: duckdb.DuckDBPyConnection | None,
    episode: Episode,
    dimensions: tuple[str, ...],
    history_start_hour: int,
    weeks: int,
) -> Explanation:
    """The explanation of ``episode``; ``con`` None leaves out what needs the calls (contributors, first
    seen)."""
    observed = episode.observed.sum(axis=1)
    expected = episode.expected.sum(axis=1)
    parts = decompose(observed, expected) if episode.family == COST_FAMILY else None
    contributors: list[Contributor] = []
    first: list[FirstSeen] = []
    if con is not None:
        contributors, absent = _contributors(con, episode, dimensions, history_start_hour, weeks)
        first = _first_seen(con, episode, history_start_hour, absent)
    ratios = _ratios(observed, expected)
    found = Explanation(parts, tuple(contributors), tuple(first), tuple(ratios), "")
    return replace(found, text=render(episode, found))


def render(episode: Episode, explanation: Explanation) -> str:
    """The one-line text: leading contributors, first-seen facts, per-call ratios, the split."""
    pieces: list[str] = []
    observed = episode.observed.sum(axis=1)
    expected = episode.expected.sum(axis=1)
    if episode.family != COST_FAMILY:
        measure = UNPRICED if episode.family == UNPRICED_FAMILY else CUT_SHORT
        what = "unpriced calls" if episode.family == UNPRICED_FAMILY else "billed calls cut short"
        pieces.append(f"{what} {int(observed[measure])} (expected {expected[measure]:g})")
    shown: set[str] = set()
    for c in explanation.contributors:
        if len(shown) == SHOWN or c.dimension in shown or c.change <= 0:
            continue
        shown.add(c.dimension)
        amount = money(c.change) if episode.family == COST_FAMILY else f"+{c.change} calls"
        pieces.append(f"{c.dimension}={_name(c.value)} {amount} ({c.share:.0%})")
    for f in explanation.first_seen:
        when = (
            f.at.strftime("%H:%M")
            if f.at.date() == hour_start(episode.start * episode.grain.hours).date()
            else f"{f.at:%Y-%m-%d %H:%M}"
        )
        pieces.append(f"{f.dimension} {f.value}, first seen {when}")
    for name, ratio in explanation.ratios:
        pieces.append(f"{name} x{ratio:.1f}")
    if explanation.parts is not None:
        p = explanation.parts
        pieces.append(
            f"volume {money(p.volume)}, tokens per call {money(p.tokens_per_call)}, "
            f"cache {money(p.cache)}, price {money(p.price)}"
        )
    if episode.basis == NOT_ENOUGH_DATA:  # pragma: no cover - an episode always has a baseline
        pieces.append(NOT_ENOUGH_DATA)
    return "; ".join(pieces)


def money(amount: Decimal) -> str:
    sign = "-" if amount < 0 else "+"
    return f"{sign}${abs(amount):,.2f}"


def _name(value: str | None) -> str:
    return "(none)" if value is None else value


def _ratios(observed: np.ndarray, expected: np.ndarray) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    if observed[BILLED] <= 0 or expected[BILLED] <= 0:
        return out
    for name, measure in (("input tokens per call", INPUT), ("output tokens per call", OUTPUT)):
        now = observed[measure] / observed[BILLED]
        before = expected[measure] / expected[BILLED]
        if before > 0 and now > 0 and not 1 / NOTABLE_RATIO < now / before < NOTABLE_RATIO:
            out.append((name, float(now / before)))
    return out


def _scope_filter(episode: Episode) -> dict[str, str] | None:
    dimension, value = episode.scope
    return None if dimension == ORG else {dimension: value}


def onset(episode: Episode) -> tuple[int, int]:
    """The first and the last hour (exclusive) of the episode's onset."""
    steps = min(episode.steps, ONSET_STEPS[episode.grain.name])
    hours = episode.grain.hours
    return episode.start * hours, (episode.start + steps) * hours


def _offsets(episode: Episode, first: int, history_start_hour: int, weeks: int) -> list[int]:
    """Hours back to each baseline sample of the onset (as the episode's baseline took them)."""
    if episode.basis == episode.grain.weekly_basis:
        offsets = [168 * k for k in range(1, weeks + 1)]
    else:
        offsets = [24 * k for k in range(1, 8)]
    return [o for o in offsets if first - o >= history_start_hour]


def _contributors(
    con: duckdb.DuckDBPyConnection,
    episode: Episode,
    dimensions: tuple[str, ...],
    history_start_hour: int,
    weeks: int,
) -> tuple[list[Contributor], dict[str, list[str]]]:
    """The ranked contributors, and the values of the first-seen dimensions that the onset has and its
    baseline samples do not."""
    first, end = onset(episode)
    step_hours = episode.grain.hours
    offsets = _offsets(episode, first, history_start_hour, weeks)
    shifts = [0, *offsets]
    measure = {COST_FAMILY: COST, UNPRICED_FAMILY: UNPRICED}.get(episode.family, CUT_SHORT)
    n_steps = (end - first) // step_hours
    scope_change = float(
        episode.observed[measure, :n_steps].sum() - episode.expected[measure, :n_steps].sum()
    )
    where = _scope_filter(episode)
    periods = [(hour_start(first - o), hour_start(end - o)) for o in shifts]
    found: list[Contributor] = []
    absent: dict[str, list[str]] = {}
    children = [d for d in dict.fromkeys((*dimensions, *FIRST_SEEN_DIMENSIONS)) if d != episode.scope[0]]
    rows_of = spend.hourly_each(con, children, where=where, periods=periods)
    for child in children:
        # per value: the measure per onset step (column 0) and at each baseline sample (columns 1 ...)
        cells: dict[str | None, np.ndarray] = {}
        for row in rows_of[child]:
            hour = hour_index(row.hour)
            table = cells.setdefault(row.values[0], np.zeros((n_steps, len(shifts))))
            for k, shift in enumerate(shifts):  # a row may fall in several windows (days a day apart)
                if first - shift <= hour < end - shift:
                    table[(hour + shift - first) // step_hours, k] += _measure(row, measure)
        if len(cells) == 1 and not absent_in(cells):
            continue  # one value throughout (the scope's only model, say): it explains nothing
        for value, table in cells.items():
            seen = table[:, 0].sum()
            usual = np.median(table[:, 1:], axis=1).sum() if offsets else 0.0
            if child in FIRST_SEEN_DIMENSIONS and value is not None and seen > 0 and not table[:, 1:].any():
                absent.setdefault(child, []).append(value)
            delta = seen - usual
            if delta == 0:
                continue
            share = delta / scope_change if scope_change else 0.0
            change = dollars(round(delta)).quantize(MICRO) if measure == COST else Decimal(round(delta))
            found.append(Contributor(child, value, change, share))
    # the largest change first; among equals, a named value before calls without one
    sign = 1 if scope_change >= 0 else -1
    found.sort(key=lambda c: (sign * c.change, c.value is not None), reverse=True)
    return found[:TOP], absent


def absent_in(cells: dict[str | None, np.ndarray]) -> bool:
    """Whether a value is in the onset and in none of the baseline samples."""
    return any(table[:, 0].any() and not table[:, 1:].any() for table in cells.values())


def _measure(row: spend.HourlySpend, measure: int) -> float:
    if measure == COST:
        return float(picodollars(row.cost_usd))
    return float(row.unpriced_calls if measure == UNPRICED else row.cut_short_calls)


def _first_seen(
    con: duckdb.DuckDBPyConnection, episode: Episode, history_start_hour: int, absent: dict[str, list[str]]
) -> list[FirstSeen]:
    """Of the values the onset has and its baseline does not, those first seen at or after the step before
    the episode (over the whole history read, from ``history_start_hour``; a value there from its first
    day is not new: there is nothing before it to compare)."""
    first, end = onset(episode)
    since = hour_start(first - episode.grain.hours)
    floor = hour_start(history_start_hour + 24)
    out: list[FirstSeen] = []
    for dimension, values in absent.items():
        where = {**(_scope_filter(episode) or {}), dimension: values}
        seen = spend.first_seen(
            con, dimension, since=hour_start(history_start_hour), until=hour_start(end), where=where
        )
        out.extend(
            FirstSeen(dimension, value, at)
            for value, at in sorted(seen.items(), key=lambda kv: kv[1])
            if value is not None and at >= since and at >= floor
        )
    return out
