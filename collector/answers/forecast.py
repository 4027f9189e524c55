"""Daily spend forecasts, with 80% and 95% prediction intervals, for the organisation and any dimension.

**The core** (:func:`forecast_series`) is a pure function over a daily series (``(date, Decimal)`` pairs, one
per UTC day, oldest first; a day missing between two given days spent nothing). Three methods
(:mod:`._forecast_models`):

- *run-rate*, the baseline: the mean of the last 7 days (one of each weekday), flat;
- *linear*: a least-squares line through the last 28 days;
- *seasonal*: exponential smoothing with a weekly season, ETS(A, Ad, A), over the last 84 days (at least 21),
  with statsmodels' ``ETSModel``. statsmodels (0.15), because it is the smallest well-kept library that has
  it: with scipy and patsy it adds about 180 MB to an environment that has numpy and pandas, as compiled
  wheels that run at once; a fit takes 10 to 20 ms on this machine (the heuristic start; estimating the
  initial states takes a second), importing it about 2 s of CPU once per process, and its state space form
  gives prediction intervals by simulating future paths. statsforecast (2.1) depends on statsmodels itself,
  and on fugue, triad, coreforecast and utilsforecast besides: more to install on every fresh CI machine,
  for the handful of fits a series takes.

The method is chosen for each series by a rolling-origin backtest on the series itself: at up to
:data:`ORIGINS` cut-off days, :data:`ORIGIN_STEP` days apart (so that they fall on different weekdays), each
method is fitted on the days before the cut-off and forecasts the next ``horizon`` days; its error is that of
the *cumulative* spend to the horizon (what a budget cares about), summed over the cut-offs:
``sum |forecast - actual| / sum actual``. The smallest error wins; a more elaborate method must beat a simpler
one by :data:`MARGIN` of its error, so noise is not mistaken for a pattern. Fewer than :data:`MIN_DAYS` days
of history fall back to run-rate, and the result says so; an empty series is "not enough data", with no
figures. When the history is shorter than the backtest needs, the horizon of the backtest is shortened (and
the note says so).

Money is ``Decimal`` at this module's boundary: the models run on floats, and every figure they give is
quantized to :data:`QUANTUM` (one millionth of a dollar, so that a feature spending a fraction of a cent a day
still has a forecast), never negative. Actual spend is exact, as stored.

**Series from stored calls** (:func:`daily_series`) come from :func:`.spend.daily_cost`: UTC days, each
series from its first day with calls to the last complete day. The current UTC day is never fitted (it is
partial): its forecast is what was spent so far plus the forecast of the rest of it, prorated by the hours
left (``forecast_period`` and ``forecast_scopes`` do this).

**For budgets**: :func:`forecast_period` forecasts any scope's spend over any period ``[start, end)``.

**Answer table** ``forecasts`` and the gauge ``costspan_forecast_period_spend_usd{scope, value, bound}`` are
kept by :func:`job`; ``costspan forecast`` prints the same figures.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from . import _forecast_models as models
from .spend import StoredCount, daily_cost, dimension_sql, hourly, naive_utc

Series = Sequence[tuple[date, Decimal]]

QUANTUM = Decimal("0.000001")
MIN_DAYS = 7  # fewer days of history: run-rate, with no comparison
MIN_TRAIN = 7  # the fewest days a method is fitted on in the backtest
ORIGINS = 5
ORIGIN_STEP = 3
MARGIN = 0.05
_ROUNDING = 1e-9
HISTORY_DAYS = 120  # the days of stored history a forecast reads (the seasonal model uses the last 84)
ORGANISATION = "organisation"
PERIODS = ("month", "week", "day")
TABLE = "forecasts"
GAUGE = "costspan_forecast_period_spend_usd"
JOB_INTERVAL_S = 900.0
JOB_DIMENSIONS = {"team": None, "feature": 20}  # dimension -> at most this many values, by spend (None: all)
BOUNDS = ("p50", "lo80", "hi80", "lo95", "hi95")
NOT_ENOUGH_DATA = "not enough data: no complete day of spend yet"


@dataclass(frozen=True, slots=True)
class Estimate:
    """A forecast amount in dollars: the point forecast and its 80% and 95% prediction intervals (``None``
    where the history cannot give a spread: a single day)."""

    p50: Decimal
    lo80: Decimal | None
    hi80: Decimal | None
    lo95: Decimal | None
    hi95: Decimal | None

    def plus(self, amount: Decimal) -> Estimate:
        """This estimate with a known ``amount`` added (what was already spent)."""
        return Estimate(*(None if v is None else v + amount for v in self.bounds()))  # type: ignore[arg-type]

    def bounds(self) -> tuple[Decimal | None, ...]:
        return (self.p50, self.lo80, self.hi80, self.lo95, self.hi95)


@dataclass(frozen=True)
class SeriesForecast:
    """The forecast of a daily series for the ``horizon`` days after its last day."""

    first_day: date | None  # the first day forecast: the day after the series' last
    horizon: int
    history_days: int
    method: str | None  # None: not enough data
    backtest_error: Decimal | None  # the method's error on the cumulative spend, in percent
    backtest: dict[str, Decimal | None] = field(default_factory=dict)  # each method compared, its error
    note: str | None = None
    fit: models.Fit | None = field(default=None, repr=False)

    def total(self, weights: Sequence[float]) -> Estimate | None:
        """The forecast of ``sum(weights[i] * day i)`` (day 0 is ``first_day``), or ``None`` with no data."""
        if len(weights) > self.horizon:
            raise ValueError(f"{len(weights)} days asked of a forecast of {self.horizon}")
        if self.fit is None:
            return None
        w = np.zeros(self.horizon)
        w[: len(weights)] = np.asarray(weights, dtype=float)
        return _estimate(self.fit.band(w))

    def day(self, index: int) -> Estimate | None:
        return self.total([0.0] * index + [1.0])


def forecast_series(series: Series, horizon: int, methods: Sequence[str] = models.METHODS) -> SeriesForecast:
    """Forecast the ``horizon`` days after ``series``, by the method its backtest picks among ``methods``.

    The same series and horizon give the same forecast, so the last :data:`CACHED` are kept: a daily series
    changes once a day, while its forecast is asked for every few minutes (budgets, the job, the command).
    """
    return _forecast_series(tuple(series), max(1, horizon), tuple(methods))


CACHED = 512


@functools.lru_cache(maxsize=CACHED)
def _forecast_series(
    series: tuple[tuple[date, Decimal], ...], horizon: int, methods: tuple[str, ...]
) -> SeriesForecast:
    if not series:
        return SeriesForecast(None, horizon, 0, None, None, note=NOT_ENOUGH_DATA)
    days = _filled(series)
    first = days[-1][0] + timedelta(days=1)
    y = np.array([float(v) for _, v in days])
    n = len(y)
    if n < MIN_DAYS:
        plural = "s" if n != 1 else ""
        note = f"{n} day{plural} of history, fewer than {MIN_DAYS}: run-rate, not compared with other methods"
        fitted = models.run_rate(y, horizon)
        return SeriesForecast(first, horizon, n, models.RUN_RATE, None, note=note, fit=fitted)
    errors, _, note = backtest(y, horizon, methods)
    ranked = _ranked(errors)
    for method in ranked:
        try:
            fitted = models.fit(method, y, horizon)
        except models.NoFit:
            continue
        return SeriesForecast(
            first,
            horizon,
            n,
            method,
            _percent(errors[method]),
            {m: _percent(e) for m, e in errors.items()},
            note,
            fitted,
        )
    note = "too little history to compare methods: run-rate"
    fitted = models.run_rate(y, horizon)
    return SeriesForecast(first, horizon, n, models.RUN_RATE, None, note=note, fit=fitted)


def backtest(
    y: np.ndarray, horizon: int, methods: Sequence[str] = models.METHODS
) -> tuple[dict[str, float], int, str | None]:
    """Each method's error on the cumulative spend over the backtest horizon (``sum |F - A| / sum A`` over
    the cut-offs; ``inf`` where the history spent nothing but the method forecast something), the horizon
    tested, and a note when it is shorter than ``horizon``."""
    n = len(y)
    tested = min(horizon, n - MIN_TRAIN)
    if tested < 1:
        return {}, 0, None
    cutoffs = [n - tested - j * ORIGIN_STEP for j in range(ORIGINS)]
    cutoffs = [c for c in cutoffs if c >= MIN_TRAIN]
    note = f"backtest over {tested} days, not {horizon}: {n} days of history" if tested < horizon else None
    # every method is judged on the same cut-offs: those the most demanding one that fits at all can use
    candidates = [m for m in methods if cutoffs and cutoffs[0] >= models.MIN_DAYS[m]]
    need = max((models.MIN_DAYS[m] for m in candidates), default=MIN_TRAIN)
    cutoffs = [c for c in cutoffs if c >= need]
    errors: dict[str, float] = {}
    for method in candidates:
        misses = 0.0
        try:
            for c in cutoffs:
                predicted = float(models.fit(method, y[:c], tested, intervals=False).mean.sum())
                misses += abs(predicted - float(y[c : c + tested].sum()))
        except models.NoFit:
            continue
        spent = float(sum(y[c : c + tested].sum() for c in cutoffs))
        errors[method] = misses / spent if spent > 0 else (0.0 if misses == 0 else math.inf)
    return errors, tested, note


def _ranked(errors: dict[str, float]) -> list[str]:
    """The methods best first; a more elaborate one goes ahead of a simpler one only when it is better by
    :data:`MARGIN` of the simpler one's error."""
    best: str | None = None
    for method in models.METHODS:
        if method not in errors:
            continue
        # (less a rounding's worth: on an exact series every method's error is 0 give or take 1e-15)
        if best is None or errors[method] < errors[best] * (1 - MARGIN) - _ROUNDING:
            best = method
    rest = sorted((m for m in errors if m != best), key=lambda m: (errors[m], models.METHODS.index(m)))
    return ([best] if best else []) + rest


def _filled(series: Series) -> list[tuple[date, Decimal]]:
    given = dict(series)
    day, last = min(given), max(given)
    days: list[tuple[date, Decimal]] = []
    while day <= last:
        days.append((day, given.get(day, Decimal(0))))
        day += timedelta(days=1)
    return days


def _money(value: float | None) -> Decimal | None:
    if value is None or not math.isfinite(value):
        return None
    return max(Decimal(0), Decimal(value).quantize(QUANTUM, ROUND_HALF_EVEN))


def _estimate(band: models.Band) -> Estimate:
    p50 = _money(band.p50)
    bounds = (_money(v) for v in (band.lo80, band.hi80, band.lo95, band.hi95))
    return Estimate(p50 if p50 is not None else Decimal(0), *bounds)


def _percent(error: float | None) -> Decimal | None:
    if error is None or not math.isfinite(error):
        return None
    return Decimal(error * 100).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


# --- series from stored calls, and forecasts of periods ---------------------------------------------------


def utc_day_start(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day, naive (as stored times are)."""
    moment = naive_utc(moment)
    return datetime(moment.year, moment.month, moment.day)


def daily_series(
    con: duckdb.DuckDBPyConnection,
    by: str | None = None,
    where: dict[str, str] | None = None,
    until: date | None = None,
    history_days: int = HISTORY_DAYS,
) -> dict[str | None, list[tuple[date, Decimal]]]:
    """The daily spend series of each value of dimension ``by`` (one series, keyed ``None``, without it) over
    the ``history_days`` UTC days before ``until`` (not included): from the value's first day with calls
    there to the day before ``until``, a day without calls as 0. A value without calls there has no series."""
    end = datetime.combine(until or datetime.now(UTC).date(), datetime.min.time())
    since = end - timedelta(days=history_days)
    found = daily_cost(con, [by] if by else [], since=since, until=end, where=where)
    last = end.date() - timedelta(days=1)
    return {values[0] if by else None: filled(days, last) for values, days in found.items()}


def filled(days: dict[date, Decimal], last: date) -> list[tuple[date, Decimal]]:
    """A daily series from the first of ``days`` to ``last``, a day missing between them as 0."""
    if not days:
        return []
    day = min(days)
    rows: list[tuple[date, Decimal]] = []
    while day <= last:
        rows.append((day, days.get(day, Decimal(0))))
        day += timedelta(days=1)
    return rows


def _spent(
    con: duckdb.DuckDBPyConnection,
    by: str | None,
    since: datetime,
    until: datetime,
    where: dict[str, str] | None = None,
) -> dict[str | None, Decimal]:
    spent: dict[str | None, Decimal] = {}
    for row in hourly(con, [by] if by else [], since=since, until=until, where=where):
        key = row.values[0] if by else None
        spent[key] = spent.get(key, Decimal(0)) + row.cost_usd
    return spent


def day_weights(now: datetime, start: datetime, end: datetime) -> list[float]:
    """For each UTC day from ``now``'s on, the share of it inside ``[max(now, start), end)``."""
    today = utc_day_start(now)
    begin = max(now, start)
    weights: list[float] = []
    day = today
    while day < end:
        overlap = min(end, day + timedelta(days=1)) - max(begin, day)
        weights.append(max(0.0, overlap / timedelta(days=1)))
        day += timedelta(days=1)
    return weights


@dataclass(frozen=True)
class PeriodForecast:
    """Spend over ``[start, end)``: what was spent up to ``now`` (exact), and the forecast of the rest and of
    the period's total (``None`` when there is not enough data)."""

    start: datetime
    end: datetime
    actual: Decimal
    remainder: Estimate | None
    total: Estimate | None
    forecast: SeriesForecast


def forecast_period(
    con: duckdb.DuckDBPyConnection,
    where: dict[str, str] | None,
    start: datetime,
    end: datetime,
    now: datetime,
    history_days: int = HISTORY_DAYS,
) -> PeriodForecast:
    """Forecast the spend of the calls matching ``where`` (dimension -> value, as :func:`.spend.hourly`; empty
    or ``None`` for the organisation) over ``[start, end)``, as seen at ``now``.

    Times are UTC (aware, or naive UTC). The spend in ``[start, now)`` is read exactly; the rest is forecast
    from the scope's daily series up to the start of ``now``'s UTC day: the rest of today prorated by its
    hours left, then whole days, then the share of the last day before ``end``. The method is the one the
    backtest picks for a horizon reaching ``end``. A budget calls this with its own scope and period."""
    start, end, now = naive_utc(start), naive_utc(end), naive_utc(now)
    actual = Decimal(0)
    if now > start:
        actual = _spent(con, None, start, min(now, end), where).get(None, Decimal(0))
    weights = day_weights(now, start, end)
    series = daily_series(con, None, where, utc_day_start(now).date(), history_days).get(None, [])
    forecast = forecast_series(series, max(1, len(weights)))
    remainder = forecast.total(weights) if weights else _zero(forecast)
    total = None if remainder is None else remainder.plus(actual)
    return PeriodForecast(start, end, actual, remainder, total, forecast)


def _zero(forecast: SeriesForecast) -> Estimate | None:
    return None if forecast.fit is None else Estimate(*(Decimal(0),) * 5)


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The UTC ``period`` (``month``, ``week``: ISO, from Monday 00:00, or ``day``) that holds ``now``."""
    today = utc_day_start(now)
    if period == "day":
        return today, today + timedelta(days=1)
    if period == "week":
        monday = today - timedelta(days=today.weekday())
        return monday, monday + timedelta(days=7)
    if period == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following
    raise ValueError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")


@dataclass(frozen=True)
class ScopeForecast:
    """One series' forecast as ``costspan forecast`` and the ``forecasts`` table give it."""

    scope: str  # "organisation", or the dimension
    value: str | None
    period: str
    period_start: datetime
    period_end: datetime
    today: date
    spent_in_period: Decimal  # exact, up to now
    spent_today: Decimal
    actual_days: list[tuple[date, Decimal]]  # the period's complete days
    period_total: Estimate | None
    next_days: int
    next_total: Estimate | None  # the ``next_days`` UTC days after today
    forecast: SeriesForecast
    today_rest: float  # the share of today still to come


def forecast_scopes(
    con: duckdb.DuckDBPyConnection,
    by: str | None,
    period: str,
    days: int,
    now: datetime,
    top: int | None = None,
    history_days: int = HISTORY_DAYS,
    kept: dict[tuple[str | None, date, int], dict[str | None, list[tuple[date, Decimal]]]] | None = None,
) -> tuple[list[ScopeForecast], int]:
    """The forecast of the organisation (``by`` None) or of each value of ``by`` (the ``top`` by spend over
    the history, all when None) for the ``period`` holding ``now`` and the ``days`` after today; and how
    many values were left out by ``top``. ``kept``: daily series read earlier the same UTC day, by
    ``(by, day, history_days)`` (complete days do not change; calls stored late into them count from the
    next day's read), and where this call leaves the ones it reads."""
    now = naive_utc(now)
    today = utc_day_start(now)
    start, end = period_bounds(period, now)
    scope = by or ORGANISATION
    if by:
        dimension_sql(by)  # an unknown dimension is an error before any query
    key = (by, today.date(), history_days)
    series = kept.get(key) if kept is not None else None
    if series is None:
        series = daily_series(con, by, None, today.date(), history_days)
        if kept is not None:
            kept[key] = series
    spent_today = _spent(con, by, today, now)
    keys = set(series) | set(spent_today)
    if not by:
        keys = {None}
    spent = {k: sum((v for _, v in series.get(k, [])), spent_today.get(k, Decimal(0))) for k in keys}
    ranked = sorted(keys, key=lambda k: (-spent[k], str(k)))
    chosen = ranked if top is None else ranked[:top]
    period_weights = day_weights(now, start, end)
    today_rest = (today + timedelta(days=1) - now) / timedelta(days=1)
    horizon = max(len(period_weights), days + 1)
    next_weights = [0.0] + [1.0] * days
    results: list[ScopeForecast] = []
    for key in chosen:
        history = series.get(key, [])
        forecast = forecast_series(history, horizon)
        in_period = [(d, v) for d, v in history if d >= start.date()]
        so_far = sum((v for _, v in in_period), Decimal(0)) + spent_today.get(key, Decimal(0))
        rest = forecast.total(period_weights)
        results.append(
            ScopeForecast(
                scope,
                key,
                period,
                start,
                end,
                today.date(),
                so_far,
                spent_today.get(key, Decimal(0)),
                in_period,
                None if rest is None else rest.plus(so_far),
                days,
                forecast.total(next_weights) if days > 0 else None,
                forecast,
                today_rest,
            )
        )
    return results, len(ranked) - len(chosen)


# --- the answer table and the gauges -------------------------------------------------------------------

TABLE_COLUMNS = (
    "scope",
    "value",
    "period",
    "period_start",
    "period_end",
    "day",
    "kind",
    "actual_usd",
    *BOUNDS,
    "method",
    "backtest_error_pct",
    "history_days",
    "note",
    "generated_at",
)


def table_rows(forecasts: Iterable[ScopeForecast], generated_at: datetime) -> list[tuple[Any, ...]]:
    """The rows of the ``forecasts`` table: per scope, each complete day of the period so far (``actual``),
    today and each day ahead to the period's end or the next days, whichever is later (``forecast``; today's
    is what was spent so far plus the rest of the day forecast), and the period's total (``period_total``,
    dated the period's last day)."""
    generated = naive_utc(generated_at)
    rows: list[tuple[Any, ...]] = []
    for f in forecasts:
        sf = f.forecast
        head = (f.scope, f.value, f.period, f.period_start, f.period_end)
        tail = (sf.method, sf.backtest_error, sf.history_days, sf.note, generated)
        for day, spent in f.actual_days:
            rows.append((*head, day, "actual", spent, *(spent,) * 5, *tail))
        if sf.fit is not None:
            last = max((f.period_end - timedelta(days=1)).date(), f.today + timedelta(days=f.next_days))
            for i in range((last - f.today).days + 1):
                if i == 0:
                    estimate = sf.total([f.today_rest])
                    assert estimate is not None
                    estimate, spent = estimate.plus(f.spent_today), f.spent_today
                else:
                    estimate, spent = sf.day(i), None
                assert estimate is not None
                day = f.today + timedelta(days=i)
                rows.append((*head, day, "forecast", spent, *estimate.bounds(), *tail))
        total = f.period_total.bounds() if f.period_total else (None,) * 5
        last_day = (f.period_end - timedelta(days=1)).date()
        rows.append((*head, last_day, "period_total", f.spent_in_period, *total, *tail))
    return rows


def write_table(data_dir: str | Path, forecasts: Iterable[ScopeForecast], generated_at: datetime) -> None:
    import pyarrow as pa

    from costspan.exporters import answer_tables

    schema = answer_tables.SCHEMAS[TABLE]
    rows = [dict(zip(TABLE_COLUMNS, row, strict=True)) for row in table_rows(forecasts, generated_at)]
    answer_tables.write(data_dir, TABLE, pa.Table.from_pylist(rows, schema=schema))


class ForecastJob:
    """The collector's forecast job: every :data:`JOB_INTERVAL_S`, the month's forecast of the organisation
    and of each value of :data:`JOB_DIMENSIONS` into the ``forecasts`` table, and the month-end gauges. The
    daily series are read once a UTC day, and again when the number of calls stored in their days changed
    (calls stored late: a backfill, a replay; one count per run); the runs in between read today's spend."""

    def __init__(self, data_dir: str | Path, days: int = 7) -> None:
        self.data_dir = Path(data_dir)
        self.days = days
        self._lock = threading.Lock()
        self._levels: list[tuple[str, str, str, float]] = []
        self._series: dict[tuple[str | None, date, int], dict[str | None, list[tuple[date, Decimal]]]] = {}
        self._stored = StoredCount()  # the calls in the days the series were read from

    def run(self, con: duckdb.DuckDBPyConnection, now: datetime) -> None:
        today = utc_day_start(now)
        if self._stored.changed(con, today - timedelta(days=HISTORY_DAYS), today):
            self._series = {}  # history stored late: read again
        self._series = {k: v for k, v in self._series.items() if k[1] == today.date()}  # a new day: again
        found, _ = forecast_scopes(con, None, "month", self.days, now, kept=self._series)
        for dimension, top in JOB_DIMENSIONS.items():
            found += forecast_scopes(con, dimension, "month", self.days, now, top=top, kept=self._series)[0]
        write_table(self.data_dir, found, now)
        levels = [
            (f.scope, f.value or "", bound, float(v))
            for f in found
            if f.period_total is not None
            for bound, v in zip(BOUNDS, f.period_total.bounds(), strict=True)
            if v is not None
        ]
        with self._lock:
            self._levels = levels

    def metrics(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(
            GAUGE,
            "Forecast spend of the current UTC month, actual so far plus the forecast rest (bound: p50, "
            "lo80, hi80, lo95, hi95)",
            labels=["scope", "value", "bound"],
        )
        with self._lock:
            for scope, value, bound, level in self._levels:
                gauge.add_metric([scope, value, bound], level)
        yield gauge


def job(data_dir: str | Path, interval_s: float = JOB_INTERVAL_S) -> Any:
    """The runner's :class:`.runner.Job` keeping the ``forecasts`` table and gauges current."""
    from .runner import Job

    forecasts = ForecastJob(data_dir)
    return Job("forecasts", interval_s, forecasts.run, forecasts.metrics)


# --- costspan forecast -----------------------------------------------------------------------------------

OUTPUT_COLUMNS = (
    "scope",
    "value",
    "period",
    "period_start",
    "period_end",
    "spent_to_date",
    "period_p50",
    "period_lo80",
    "period_hi80",
    "period_lo95",
    "period_hi95",
    "next_days",
    "next_p50",
    "next_lo80",
    "next_hi80",
    "next_lo95",
    "next_hi95",
    "method",
    "backtest_error_pct",
    "history_days",
    "note",
)


def output_rows(forecasts: Iterable[ScopeForecast]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for f in forecasts:
        period = f.period_total.bounds() if f.period_total else (None,) * 5
        following = f.next_total.bounds() if f.next_total else (None,) * 5
        sf = f.forecast
        rows.append(
            (
                f.scope,
                f.value,
                f.period,
                f.period_start.date(),
                f.period_end.date(),
                f.spent_in_period,
                *period,
                f.next_days,
                *following,
                sf.method,
                sf.backtest_error,
                sf.history_days,
                sf.note,
            )
        )
    return rows


_DESCRIPTION = """\
Forecast daily spend from the stored calls, for the organisation or each value of a dimension: the spend of
the current period (UTC month, ISO week or day) so far plus the forecast of its rest, and of the next N days,
with 80% and 95% prediction intervals. Days are UTC days; today is partial, so it is not fitted: its rest is
forecast. The method (run_rate, linear, seasonal) is chosen per series by a backtest on its own history;
backtest_error_pct is its error on the cumulative spend over the horizon. Fewer than 7 days of history fall
back to run_rate (the note says so); a series without a complete day is "not enough data".
The collector keeps the same figures, per day, in the SQL table `forecasts`.
"""


def register(subparsers: Any) -> None:
    command = subparsers.add_parser(
        "forecast",
        help="forecast spend to the period's end and for the next days, with prediction intervals",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--by", help="one series per value of this dimension (team, feature, tag.<key> ...)")
    command.add_argument("--period", choices=PERIODS, default="month", help="UTC period (default: month)")
    command.add_argument("--days", type=_non_negative, default=7, help="forecast the next N days (default 7)")
    command.add_argument(
        "--top", type=_positive, default=20, help="with --by, the N values that spent most (default 20)"
    )
    command.add_argument("--data-dir", help="data directory (default: $COSTSPAN_DATA_DIR or ./costspan-data)")
    command.add_argument("--format", choices=("table", "csv", "json"), default="table")
    command.set_defaults(handler=run)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def run(args: argparse.Namespace, now: datetime | None = None) -> int:
    from costspan.exporters.duckdb_views import read_views
    from costspan.pricing import data_dir

    from ..sql import print_rows
    from .spend import UnknownDimension

    directory = data_dir(args.data_dir)
    if not directory.is_dir():
        print(f"costspan forecast: no data directory at {directory.resolve()} (--data-dir)", file=sys.stderr)
        return 2
    moment = now or datetime.now(UTC)
    top = args.top if args.by else None
    try:
        found, left_out = read_views(
            directory, lambda con: forecast_scopes(con, args.by, args.period, args.days, moment, top=top)
        )
    except UnknownDimension as exc:
        print(f"costspan forecast: {exc}", file=sys.stderr)
        return 2
    print_rows(list(OUTPUT_COLUMNS), output_rows(found), args.format)
    if left_out:
        print(f"costspan forecast: {left_out} more values of {args.by} left out (--top)", file=sys.stderr)
    return 0
