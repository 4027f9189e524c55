"""The forecasting models behind :mod:`.forecast`: each fits a daily spend series (floats, oldest first) and
gives, for the ``horizon`` days after it, a point forecast per day and prediction intervals for any weighted
sum of those days (one day, the days to a period's end, a part of today).

- run-rate: the mean of the last :data:`RUN_RATE_DAYS` days, flat;
- linear: a least-squares line through the last :data:`LINEAR_DAYS` days, extended;
- seasonal: exponential smoothing (ETS: additive errors, additive damped trend, additive weekly seasonality)
  with statsmodels' ``ETSModel``, over the last :data:`SEASONAL_DAYS` days.

Run-rate and linear are least-squares fits, so their intervals are the textbook ones of a regression
prediction: the residuals' spread for the days' own noise plus the uncertainty of the fitted coefficients,
with Student's t quantiles (``sigma^2 * (w.w + a' (X'X)^-1 a)`` for the weighted sum ``w``, ``a = D'w``, ``D``
the future days' design rows). The seasonal model's intervals are statsmodels' own: its simulation of
future paths from the fitted state space model, summed with the weights, and their quantiles.

Spend is never negative: every path and point forecast is clipped at 0 before it is summed, and so is every
interval bound.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np

RUN_RATE = "run_rate"
LINEAR = "linear"
SEASONAL = "seasonal"
METHODS = (RUN_RATE, LINEAR, SEASONAL)  # simplest first: a tie goes to the simpler

# One full week: the mean then holds every weekday once, so a weekly pattern does not tilt it.
RUN_RATE_DAYS = 7
# Four full weeks: long enough to see a trend through the weekly swing, short enough to follow a change.
LINEAR_DAYS = 28
# Twelve weeks: enough cycles to estimate the weekly pattern, few enough to fit in tens of milliseconds.
SEASONAL_DAYS = 84
WEEK = 7
# The fewest days each model is fitted on. The seasonal one: three weeks (statsmodels' heuristic start needs
# 16 days, and a weekly pattern seen twice is mostly noise); its start is the heuristic one, which takes a
# hundredth of the time of estimating the initial states (about 10 ms against 1 s a fit here).
MIN_DAYS = {RUN_RATE: 1, LINEAR: 3, SEASONAL: 3 * WEEK}
LEVELS = (0.80, 0.95)
_PATHS = 1000  # simulated paths for the seasonal model's intervals


@dataclass(frozen=True, slots=True)
class Band:
    """A forecast of one quantity: the point forecast and the 80% and 95% prediction intervals; the
    bounds are ``None`` where the fit cannot say (a single day of history has no spread)."""

    p50: float
    lo80: float | None
    hi80: float | None
    lo95: float | None
    hi95: float | None


class Fit(Protocol):
    method: str
    mean: np.ndarray  # the point forecast of each day of the horizon, clipped at 0

    def band(self, weights: np.ndarray) -> Band:
        """The forecast of ``sum(weights * days)`` over the horizon's days."""
        ...


class _LeastSquaresFit:
    """A fitted ``y = X beta + e`` (``e`` independent, normal, spread ``sigma``) and its future rows ``D``."""

    def __init__(
        self, method: str, future: np.ndarray, beta: np.ndarray, xtx_inv: np.ndarray, sigma: float, df: int
    ) -> None:
        self.method = method
        self.mean = np.clip(future @ beta, 0.0, None)
        self._future = future
        self._xtx_inv = xtx_inv
        self._sigma = sigma
        self._df = df

    def band(self, weights: np.ndarray) -> Band:
        p50 = float(weights @ self.mean)
        if self._df <= 0 or not math.isfinite(self._sigma):
            return Band(p50, None, None, None, None)
        from scipy import stats  # here: a collector whose stored calls have no history yet never loads it

        a = self._future.T @ weights
        spread = self._sigma * math.sqrt(float(weights @ weights) + float(a @ self._xtx_inv @ a))
        bounds: list[float] = []
        for level in LEVELS:
            half = float(stats.t.ppf(0.5 + level / 2, self._df)) * spread
            bounds += [max(0.0, p50 - half), p50 + half]
        return Band(p50, *bounds)


def _least_squares(method: str, y: np.ndarray, design: np.ndarray, future: np.ndarray) -> _LeastSquaresFit:
    xtx_inv = np.linalg.pinv(design.T @ design)
    beta = xtx_inv @ design.T @ y
    df = len(y) - design.shape[1]
    residuals = y - design @ beta
    sigma = math.sqrt(float(residuals @ residuals) / df) if df > 0 else math.nan
    return _LeastSquaresFit(method, future, beta, xtx_inv, sigma, df)


def run_rate(y: np.ndarray, horizon: int) -> Fit:
    """The mean of the last :data:`RUN_RATE_DAYS` days, every day of the horizon."""
    window = y[-RUN_RATE_DAYS:]
    return _least_squares(RUN_RATE, window, np.ones((len(window), 1)), np.ones((horizon, 1)))


def linear(y: np.ndarray, horizon: int) -> Fit:
    """The least-squares line through the last :data:`LINEAR_DAYS` days, extended over the horizon."""
    window = y[-LINEAR_DAYS:]
    n = len(window)
    days = np.arange(n + horizon, dtype=float)
    rows = np.column_stack([np.ones(n + horizon), days])
    return _least_squares(LINEAR, window, rows[:n], rows[n:])


class _SeasonalFit:
    def __init__(self, mean: np.ndarray, paths: np.ndarray) -> None:
        self.method = SEASONAL
        self.mean = np.clip(mean, 0.0, None)
        self._paths = np.clip(paths, 0.0, None)  # (horizon, paths)

    def band(self, weights: np.ndarray) -> Band:
        sums = weights @ self._paths
        lo95, lo80, hi80, hi95 = np.quantile(sums, [0.025, 0.10, 0.90, 0.975])
        return Band(float(weights @ self.mean), float(lo80), float(hi80), float(lo95), float(hi95))


class NoFit(ValueError):
    """The model could not be fitted to this series (too short, or the optimiser found nothing finite)."""


def seasonal(y: np.ndarray, horizon: int, intervals: bool = True, seed: int = 0) -> Fit:
    """ETS(A, Ad, A) with a weekly season over the last :data:`SEASONAL_DAYS` days; raises :class:`NoFit`."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    window = y[-SEASONAL_DAYS:]
    if len(window) < MIN_DAYS[SEASONAL]:
        raise NoFit(f"the seasonal model needs {MIN_DAYS[SEASONAL]} days")
    if float(np.ptp(window)) == 0.0:
        # a constant series: the likelihood is flat and the optimiser wanders; its forecast is the constant
        paths = np.full((horizon, 1), float(window[0]))
        return _SeasonalFit(paths[:, 0], paths)
    with warnings.catch_warnings():
        # the optimiser's "did not converge" on a short or noisy week is expected; the backtest judges the fit
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        model = ETSModel(
            window,
            error="add",
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=WEEK,
            initialization_method="heuristic",
        )
        try:
            result = model.fit(disp=False)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise NoFit(f"the seasonal model cannot be fitted: {exc}") from None
        mean = np.asarray(result.forecast(horizon), dtype=float)
        # the backtest needs only the point forecast: the simulation is for the intervals
        paths = mean.reshape(horizon, 1)
        if intervals:
            paths = np.asarray(
                result.simulate(horizon, anchor="end", repetitions=_PATHS, rng=np.random.default_rng(seed)),
                dtype=float,
            ).reshape(horizon, _PATHS)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(paths))):
        raise NoFit("the seasonal model's fit is not finite")
    return _SeasonalFit(mean, paths)


def fit(method: str, y: np.ndarray, horizon: int, intervals: bool = True) -> Fit:
    """Fit ``method`` (one of :data:`METHODS`) to ``y`` for ``horizon`` days (``intervals=False``: only
    the point forecast is wanted); raises :class:`NoFit`."""
    if len(y) < MIN_DAYS[method]:
        raise NoFit(f"{method} needs {MIN_DAYS[method]} days")
    if method == RUN_RATE:
        return run_rate(y, horizon)
    if method == LINEAR:
        return linear(y, horizon)
    return seasonal(y, horizon, intervals)
