"""Accuracy of the spend forecasts: the month-end error of each method and of the automatic choice, against
run-rate, on generated daily histories whose shape is known; the coverage of their prediction intervals; and
the time a series takes.

    python benchmarks/answers/forecast_accuracy.py [--seeds 3] [--days 180] [--first-cutoff 56] [--step 5]
    (or: make bench-forecast)

What is generated. For each shape and seed (numpy's generator, seeded), ``--days`` days of spend from
2026-01-01, around $100 a day:

- flat: a constant level, 5% noise;
- growing: +1% of the starting level a day, 5% noise;
- seasonal: a weekly pattern (weekdays x1.2 to x1.0, Saturday x0.6, Sunday x0.5), 5% noise;
- growing_seasonal: both;
- shifted: flat, then a level shift (x0.5 to x2, at a random day of the history);
- noisy: flat, 30% noise.

Noise is normal and proportional to the day's level; a day's spend is never below 0.

What is measured. From every ``--step``-th day after ``--first-cutoff`` (the cut-off: the history up to the
day before is known, the day itself has spent nothing yet), the month's total is forecast as its spend so
far plus the forecast of its remaining days, by each method alone (``_forecast_models.fit``) and by the
automatic choice (``forecast.forecast_series``, the backtest included), and compared with the generated
month's true total. Printed per shape: the MAPE of the month total (mean of |forecast - actual| / actual,
in percent), its ratio to run-rate's (below 1: better than run-rate), the share of true totals inside the
80% and the 95% intervals, and the CPU time per series (a method's fit with its intervals; the automatic
choice with its backtest); and how often the automatic choice took each method.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

import numpy as np

from costspan.collector.answers import _forecast_models as models
from costspan.collector.answers.forecast import forecast_series

START = date(2026, 1, 1)
SHAPES = ("flat", "growing", "seasonal", "growing_seasonal", "shifted", "noisy")
WEEKLY = np.array([1.2, 1.15, 1.1, 1.05, 1.0, 0.6, 0.5])  # Monday .. Sunday
COLUMNS = ("run_rate", "linear", "seasonal", "auto")


def history(shape: str, days: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(days, dtype=float)
    level = np.full(days, 100.0)
    noise = 0.30 if shape == "noisy" else 0.05
    if shape in ("growing", "growing_seasonal"):
        level = level + 1.0 * t
    if shape in ("seasonal", "growing_seasonal"):
        weekday = np.array([(START + timedelta(days=int(d))).weekday() for d in t])
        level = level * WEEKLY[weekday]
    if shape == "shifted":
        at = int(rng.integers(20, days - 10))
        level[at:] *= float(rng.choice([0.5, 0.7, 1.5, 2.0]))
    return np.clip(level * (1 + noise * rng.standard_normal(days)), 0.0, None)


def month_bounds(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def run(seeds: int, days: int, first_cutoff: int, step: int) -> None:
    errors: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    inside80: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    inside95: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    seconds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    chosen: dict[str, Counter[str]] = defaultdict(Counter)
    for shape in SHAPES:
        for seed in range(seeds):
            y = history(shape, days, np.random.default_rng(seed))
            for cutoff in range(first_cutoff, days, step):
                today = START + timedelta(days=cutoff)
                first, end = month_bounds(today)
                end_index = min(days, cutoff + (end - today).days)
                if end_index - cutoff < (end - today).days:
                    continue  # the month runs past the generated history
                start_index = cutoff - (today - first).days
                so_far = float(y[start_index:cutoff].sum())
                truth = so_far + float(y[cutoff:end_index].sum())
                horizon = end_index - cutoff
                weights = np.ones(horizon)
                known = y[:cutoff]
                for method in models.METHODS:
                    began = time.process_time()
                    band = models.fit(method, known, horizon).band(weights)
                    seconds[shape][method].append(time.process_time() - began)
                    _score(shape, method, so_far, truth, band, errors, inside80, inside95)
                series = [(START + timedelta(days=i), Decimal(repr(float(v)))) for i, v in enumerate(known)]
                began = time.process_time()
                auto = forecast_series(series, horizon)
                total = auto.total(weights)
                seconds[shape]["auto"].append(time.process_time() - began)
                assert total is not None and auto.method is not None
                chosen[shape][auto.method] += 1
                band = models.Band(*(None if v is None else float(v) for v in total.bounds()))  # type: ignore[arg-type]
                _score(shape, "auto", so_far, truth, band, errors, inside80, inside95)
    _print(errors, inside80, inside95, seconds, chosen, seeds, days, first_cutoff, step)


def _score(shape, method, so_far, truth, band, errors, inside80, inside95) -> None:
    forecast = so_far + band.p50
    errors[shape][method].append(abs(forecast - truth) / truth * 100)
    inside80[shape][method].append(so_far + band.lo80 <= truth <= so_far + band.hi80)
    inside95[shape][method].append(so_far + band.lo95 <= truth <= so_far + band.hi95)


def _print(errors, inside80, inside95, seconds, chosen, seeds, days, first_cutoff, step) -> None:
    cases = len(errors[SHAPES[0]]["auto"])
    print(
        f"month-end forecasts: {len(SHAPES)} shapes x {seeds} seeds, {days} days each, a cut-off every "
        f"{step} days from day {first_cutoff}: {cases} cut-offs per shape"
    )
    header = ("shape", "method", "MAPE %", "vs run-rate", "in 80%", "in 95%", "ms/series", "chosen")
    _line(header)
    overall: dict[str, list[float]] = defaultdict(list)
    for shape in SHAPES:
        base = statistics.mean(errors[shape]["run_rate"])
        for method in COLUMNS:
            mape = statistics.mean(errors[shape][method])
            overall[method] += errors[shape][method]
            share = chosen[shape][method] / cases if method != "auto" else 1.0
            cells = (
                shape,
                method,
                f"{mape:.2f}",
                f"{mape / base:.2f}",
                f"{100 * statistics.mean(inside80[shape][method]):.0f}%",
                f"{100 * statistics.mean(inside95[shape][method]):.0f}%",
                f"{1000 * statistics.mean(seconds[shape][method]):.1f}",
                f"{100 * share:.0f}%",
            )
            _line(cells)
    base = statistics.mean(overall["run_rate"])
    print("all shapes: " + ", ".join(f"{m} {statistics.mean(overall[m]):.2f}%" for m in COLUMNS), end="")
    print(f" (auto / run-rate: {statistics.mean(overall['auto']) / base:.2f})")


WIDTHS = (17, 9, 7, 11, 7, 7, 9, 7)


def _line(cells: tuple[str, ...]) -> None:
    """Names to the left, figures to the right."""
    print(
        "  ".join(
            c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--days", type=int, default=180, help="days of generated history per series")
    parser.add_argument("--first-cutoff", type=int, default=56, help="the first cut-off day")
    parser.add_argument("--step", type=int, default=5, help="days between cut-offs")
    args = parser.parse_args()
    run(args.seeds, args.days, args.first_cutoff, args.step)


if __name__ == "__main__":
    main()
