"""Anomaly detection over a scope's series: a seasonal robust baseline, and the episodes that depart from it.

Baseline of a step (an hour, or a day): the same hour of the week (day of the week) in the past
``baseline_weeks`` weeks, when at least two of them are in the history; else the same hour of the day over the
past 7 days (the past 7 days), when at least three are; else none, and the step is "not enough data". Over
those samples: the median, and the spread as 1.4826 x the median absolute deviation (MAD; the factor makes
it the standard deviation of normal noise), floored at 10% of the median and at a quarter of the smallest
anomaly worth reporting, so that a flat history does not turn every cent into a large score.

Score of a step: its excess over the median, in spreads (a robust z-score). An episode opens on

- a point: a score of at least ``z_open`` with an excess of at least ``min_impact_usd`` over ``min_calls``
  billed calls or more; or
- a step change: ``shift`` steps in a row each at least ``z_keep`` spreads and ``ratio`` times the median
  above it, with at least half of ``min_impact_usd`` each, adding up to ``min_impact_usd`` (a median
  before/after test: a level that moved by less than a point outlier, and stayed);

and stays open while its steps stay elevated (``z_keep``, ``ratio``, half the impact), closing after ``gap``
steps in a row that are not. Unpriced and cut-short calls are counted the same way, in calls (with
``min_calls`` as the smallest excess), and cut-short calls also by what they were billed.

The kind of a cost episode, most specific first: ``new_model`` / ``new_customer`` / ``new_value`` (a scope
whose first call in the lookback came at most a day before it), ``level_shift`` (elevated for ``persist``
steps or more), ``cost_per_call`` (calls within 25% of expected while cost or tokens per call rose by
``ratio``), ``spike``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ._anomaly_series import BILLED, COST, CUT_SHORT, INPUT, MEASURES, OUTPUT, UNPRICED, Scope, Series

MAD_TO_SIGMA = 1.4826
FLAT_VOLUME = 1.25  # calls within this factor of expected count as flat
DEFAULT_DIMENSIONS = ("team", "feature", "model", "provider", "customer_id", "prompt_key")
COST_FAMILY = "cost"
UNPRICED_FAMILY = "unpriced"
CUT_SHORT_FAMILY = "cut_short"
KINDS = (
    "spike",
    "level_shift",
    "cost_per_call",
    "new_model",
    "new_customer",
    "new_value",
    "unpriced_surge",
    "billed_failures",
)


@dataclass(frozen=True)
class AnomalySettings:
    """What the anomaly scan looks at and what it reports (the collector's ``anomalies:`` section)."""

    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS
    baseline_weeks: int = 4
    min_impact_usd: Decimal = Decimal("1")
    min_calls: int = 20
    z_open: float = 5.0
    z_keep: float = 2.0
    ratio: float = 1.3
    interval_s: float = 300.0
    max_scopes_per_dimension: int = 200
    enabled: bool = True


@dataclass(frozen=True)
class Grain:
    name: str
    hours: int  # a step's length
    season: int  # steps in a week
    fallback: int  # steps in a day (hourly), or 1 (daily)
    persist: int  # steps elevated that make a level shift
    shift: int  # steps in a row that open a step change
    gap: int  # quiet steps that close an episode
    scan: int  # steps a collector's run looks back over
    weekly_basis: str
    fallback_basis: str


HOURLY = Grain("hourly", 1, 168, 24, 6, 3, 2, 168, "same hour of week", "same hour of day")
DAILY = Grain("daily", 24, 7, 1, 2, 2, 1, 7, "same day of week", "previous days")
GRAINS = (HOURLY, DAILY)
NOT_ENOUGH_DATA = "not enough data"


@dataclass
class Baseline:
    """Per scanned step: the median of each measure, the spread of the scored measures, and the basis."""

    steps: np.ndarray  # step indexes
    median: np.ndarray  # (MEASURES, n)
    spread: np.ndarray  # (MEASURES, n): 1.4826 x MAD
    basis: list[str]  # per step: weekly_basis, fallback_basis or NOT_ENOUGH_DATA


def baseline(series: Series, steps: np.ndarray, grain: Grain, history_start: int, weeks: int) -> Baseline:
    weekly = steps[:, None] - grain.season * np.arange(1, weeks + 1)[None, :]
    daily = steps[:, None] - grain.fallback * np.arange(1, 8)[None, :]
    use_weekly = (weekly >= history_start).sum(axis=1) >= 2
    use_daily = ~use_weekly & ((daily >= history_start).sum(axis=1) >= 3)
    median = np.zeros((MEASURES, len(steps)))
    spread = np.zeros((MEASURES, len(steps)))
    for chosen, samples in ((use_weekly, weekly), (use_daily, daily)):
        if not chosen.any():
            continue
        picked = samples[chosen]
        values = series.at(picked).astype(float)
        valid = picked >= history_start  # before the history began: no sample, not a zero
        values[:, ~valid] = np.nan
        med = _median(values, valid)
        median[:, chosen] = med
        spread[:, chosen] = MAD_TO_SIGMA * _median(np.abs(values - med[:, :, None]), valid)
    basis = [
        grain.weekly_basis if w else grain.fallback_basis if d else NOT_ENOUGH_DATA
        for w, d in zip(use_weekly, use_daily, strict=True)
    ]
    return Baseline(steps, median, spread, basis)


def _median(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The median over the last axis of the valid samples (NaN elsewhere; every row has one at least):
    sorting puts the NaNs last, and the middle of each row's valid ones is taken (np.nanmedian, without its
    masked arrays, which cost more than the rest of a scan)."""
    ordered = np.sort(values, axis=-1)
    count = valid.sum(axis=-1)
    low = np.broadcast_to(((count - 1) // 2)[None, :, None], (*values.shape[:2], 1))
    high = np.broadcast_to((count // 2)[None, :, None], (*values.shape[:2], 1))
    return (np.take_along_axis(ordered, low, -1) + np.take_along_axis(ordered, high, -1))[..., 0] / 2


@dataclass
class Episode:
    """A run of anomalous steps of one scope: ``start`` to ``last`` (step indexes, inclusive)."""

    scope: Scope
    grain: Grain
    family: str
    kind: str
    start: int
    last: int
    open: bool  # still elevated (or within ``gap``) at the last step scanned
    observed: np.ndarray  # (MEASURES, steps): what each step held
    expected: np.ndarray  # (MEASURES, steps): the baseline median of each measure
    score: float
    basis: str

    @property
    def steps(self) -> int:
        return self.last - self.start + 1


def detect(
    scope: Scope,
    series: Series,
    grain: Grain,
    last_step: int,
    history_start: int,
    settings: AnomalySettings,
) -> tuple[list[Episode], bool]:
    """The episodes of ``scope`` in the ``grain.scan`` steps up to ``last_step``, and whether any of those
    steps had a baseline (False: "not enough data")."""
    steps = np.arange(last_step - grain.scan + 1, last_step + 1)
    # a scope too small for any anomaly is not looked at further: an episode needs at least the smallest
    # impact in one step or over a step change's steps, or that many unpriced or cut-short calls
    window = min(grain.shift, len(steps))
    totals = _rolling(series.at(steps)[[COST, UNPRICED, CUT_SHORT]], window).sum(axis=-1).max(axis=-1)
    if totals[0] < settings.min_impact_usd.scaleb(12) and max(totals[1], totals[2]) < settings.min_calls:
        weekly = last_step - 2 * grain.season >= history_start
        return [], weekly or last_step - 3 * grain.fallback >= history_start
    base = baseline(series, steps, grain, history_start, settings.baseline_weeks)
    has_base = np.array([b != NOT_ENOUGH_DATA for b in base.basis])
    if not has_base.any():
        return [], False
    observed = series.at(steps).astype(float)
    impact = float(settings.min_impact_usd.scaleb(12))
    episodes: list[Episode] = []
    billed = observed[BILLED]
    cost_per_call = np.divide(observed[COST], billed, out=np.zeros_like(billed), where=billed > 0)
    families = (
        (COST_FAMILY, COST, impact, 0.25 * impact, billed),
        (UNPRICED_FAMILY, UNPRICED, float(settings.min_calls), 1.0, None),
        (CUT_SHORT_FAMILY, CUT_SHORT, float(settings.min_calls), 1.0, None),
    )
    for family, measure, guard, floor, calls in families:
        x = observed[measure]
        m = base.median[measure]
        floors = [base.spread[measure], 0.1 * m, np.full_like(m, floor)]
        if family != COST_FAMILY:  # counts: at least the noise of a Poisson count
            floors.append(np.sqrt(np.maximum(m, 1.0)))
        sigma = np.maximum.reduce(floors)
        excess = x - m
        z = excess / sigma
        above = has_base & (excess > 0)
        point = above & (z >= settings.z_open) & (excess >= guard)
        if family == COST_FAMILY:
            point &= calls >= settings.min_calls
        billed_excess = excess * cost_per_call  # cut-short calls: the dollars they were billed count too
        if family == CUT_SHORT_FAMILY:
            point &= billed_excess >= impact
        # the step-change test, over each window of ``shift`` steps ending at a step: the median score at
        # least z_keep, the window's total at least ``ratio`` times its expected, every step above expected
        w = grain.shift
        level = np.zeros_like(point)
        shifted = np.zeros_like(point)
        if len(x) >= w:
            windows = slice(w - 1, None)
            level[windows] = (
                (np.median(_rolling(z, w), axis=1) >= settings.z_keep)
                & (_rolling(x, w).sum(axis=1) >= settings.ratio * _rolling(m, w).sum(axis=1))
                & _rolling(above, w).all(axis=1)
            )
            enough = _rolling(excess, w).sum(axis=1) >= guard
            if calls is not None:
                enough &= _rolling(calls, w).sum(axis=1) >= settings.min_calls
            if family == CUT_SHORT_FAMILY:
                enough &= _rolling(billed_excess, w).sum(axis=1) >= impact
            shifted[windows] = level[windows] & enough
        # a step keeps an episode open when it is itself well above expected, or its window is
        elevated = above & (((z >= settings.z_keep) & (x >= settings.ratio * m)) | level)
        if not (point.any() or shifted.any()):
            continue
        for first, last, still_open in _runs(point, shifted, elevated, grain):
            kind = _kind(family, scope, series, steps[first], observed, base, first, last, grain, settings)
            if kind is None:
                continue
            episodes.append(
                Episode(
                    scope=scope,
                    grain=grain,
                    family=family,
                    kind=kind,
                    start=int(steps[first]),
                    last=int(steps[last]),
                    open=still_open,
                    observed=observed[:, first : last + 1],
                    expected=base.median[:, first : last + 1],
                    score=float(np.max(z[first : last + 1])),
                    basis=base.basis[first],
                )
            )
    return episodes, True


def _rolling(values: np.ndarray, width: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(values, width, axis=-1)


def _runs(
    point: np.ndarray, shifted: np.ndarray, elevated: np.ndarray, grain: Grain
) -> list[tuple[int, int, bool]]:
    """(first, last, still open) index ranges of the episodes: opened by a point or by a step change (its
    window's first step is the start), kept while elevated, closed after ``grain.gap`` quiet steps."""
    runs: list[tuple[int, int, bool]] = []
    first: int | None = None
    last = 0
    for t in range(len(point)):
        if first is None:
            if point[t]:
                first = last = t
                # the steps just before, already elevated, are its onset (a ramp before the outlier)
                floor = runs[-1][1] + 1 if runs else 0
                while first > max(floor, t + 1 - grain.shift) and elevated[first - 1]:
                    first -= 1
            elif shifted[t]:
                first, last = t + 1 - grain.shift, t
                if runs and first <= runs[-1][1]:  # the window reaches back into the episode just closed
                    first, _, _ = runs.pop()
        elif point[t] or elevated[t] or shifted[t]:
            last = t
        elif t - last >= grain.gap:
            runs.append((first, last, False))
            first = None
    if first is not None:
        runs.append((first, last, True))
    return runs


def _kind(
    family: str,
    scope: Scope,
    series: Series,
    start: int,
    observed: np.ndarray,
    base: Baseline,
    first: int,
    last: int,
    grain: Grain,
    settings: AnomalySettings,
) -> str | None:
    if family == UNPRICED_FAMILY:
        return "unpriced_surge"
    if family == CUT_SHORT_FAMILY:
        return "billed_failures"
    seen = series.first_active()
    # new: no call before the day before its anomaly (a newcomer's first quiet hours are not its history)
    if seen is not None and seen >= start - grain.fallback:
        return {"model": "new_model", "customer_id": "new_customer"}.get(scope[0], "new_value")
    if last - first + 1 >= grain.persist:
        return "level_shift"
    window = slice(first, last + 1)
    o = observed[:, window].sum(axis=1)
    e = base.median[:, window].sum(axis=1)
    if e[BILLED] > 0 and o[BILLED] > 0 and 1 / FLAT_VOLUME <= o[BILLED] / e[BILLED] <= FLAT_VOLUME:
        per_call = (o[COST] / o[BILLED]) / max(e[COST] / e[BILLED], 1e-9)
        tokens = (o[INPUT] + o[OUTPUT]) / o[BILLED]
        tokens_expected = (e[INPUT] + e[OUTPUT]) / e[BILLED]
        if per_call >= settings.ratio or (tokens_expected > 0 and tokens / tokens_expected >= settings.ratio):
            return "cost_per_call"
    return "spike"
