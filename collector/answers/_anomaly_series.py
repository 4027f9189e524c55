"""The series the anomaly scan reads: each scope's hourly measures over the lookback, kept between runs.

A scope is the organisation (dimension ``""``) or one value of a dimension (``team=search``). Past complete
hours seldom change, so a running collector reads them once: each run reads only the last few hours of every
dimension (:func:`costspan.collector.answers.spend.hourly_each`), picks the scopes worth a look from them
(those that spent a part of the smallest anomaly, or had unpriced or cut-short calls), and reads the history
of a scope only when it is first picked. Past hours whose number of stored calls changed since they were read
(calls stored late: a backfill, a replay) are read again, from the first of them on. The cache starts again
from the files when it runs past its length (every two days) or when the settings change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import numpy as np

from . import spend

# the measures kept per step, in this order; COST in 1e-12 USD (DECIMAL(38,12)'s unit), exact as an integer
CALLS, BILLED, UNPRICED, CUT_SHORT, INPUT, OUTPUT, CACHE_READ, COST = range(8)
MEASURES = 8
PICO = Decimal("1E-12")
EPOCH = datetime(1970, 1, 1)
ORG = "org"  # the organisation's scope dimension (every call); its value is ""

Scope = tuple[str, str]  # (dimension, value); the organisation is (ORG, "")


def hour_index(moment: datetime) -> int:
    """Hours since 1970 of a naive UTC time (its hour)."""
    return int((moment - EPOCH) // timedelta(hours=1))


def hour_start(index: int) -> datetime:
    return EPOCH + timedelta(hours=index)


def picodollars(amount: Decimal) -> int:
    return int(amount.scaleb(12))


def dollars(pico: int | float) -> Decimal:
    """USD of an amount in 1e-12 USD; a fraction (a median between two amounts) is rounded to the unit."""
    return (Decimal(pico if isinstance(pico, int) else round(pico)) * PICO).quantize(PICO)


class Series:
    """One scope's measures per step from ``origin`` (an hour or a day index): an int64 array of
    ``MEASURES`` rows and a column per step; a step outside it reads as zero. Cost is in 1e-12 USD, so one
    scope's step holds up to $9.2 million."""

    __slots__ = ("data", "origin")

    def __init__(self, origin: int, length: int, data: np.ndarray | None = None) -> None:
        self.origin = origin
        self.data = np.zeros((MEASURES, length), dtype=np.int64) if data is None else data

    @property
    def length(self) -> int:
        return int(self.data.shape[1])

    def at(self, steps: np.ndarray) -> np.ndarray:
        """The measures at ``steps`` (any shape): an array of shape (MEASURES, *steps.shape)."""
        i = steps - self.origin
        inside = (i >= 0) & (i < self.length)
        return np.where(inside, self.data[:, np.clip(i, 0, self.length - 1)], 0)

    def put(self, row: spend.HourlySpend, step: int) -> None:
        i = step - self.origin
        if 0 <= i < self.length:
            self.data[:, i] += (
                row.calls,
                row.billed_calls,
                row.unpriced_calls,
                row.cut_short_calls,
                row.input_tokens,
                row.output_tokens,
                row.cache_read_tokens,
                picodollars(row.cost_usd),
            )

    def clear(self, first: int, last: int) -> None:
        """Forget steps ``first`` to ``last`` (exclusive): they are read again."""
        self.data[:, max(0, first - self.origin) : max(0, last - self.origin)] = 0

    def daily(self) -> Series:
        """The same measures per UTC day (steps are hours)."""
        first_day = self.origin // 24
        days = (self.origin + self.length - 1) // 24 - first_day + 1
        padded = np.zeros((MEASURES, days * 24), dtype=np.int64)
        offset = self.origin - first_day * 24
        padded[:, offset : offset + self.length] = self.data
        return Series(first_day, days, padded.reshape(MEASURES, days, 24).sum(axis=2))

    def first_active(self) -> int | None:
        """The first step with a call."""
        active = np.flatnonzero(self.data[CALLS])
        return self.origin + int(active[0]) if active.size else None


@dataclass
class SeriesCache:
    """The hourly series of the scopes worth a look, over ``lookback_hours`` before now; see the module's
    docstring for what is read when."""

    dimensions: Sequence[str]
    lookback_hours: int
    min_cost_usd: Decimal  # a scope is picked once it spent this much in the hours read
    min_calls: int  # ... or had this many unpriced or cut-short calls
    max_scopes_per_dimension: int = 200
    reread_hours: int = 3  # late calls of the last hours are read again each run
    slack_hours: int = 48  # how far the cache runs before it starts again
    series: dict[Scope, Series] = field(default_factory=dict)
    origin: int | None = None
    read_until: int | None = None  # hour index: every hour before it is in the cache
    reads: int = 0  # queries of llm_calls in the last refresh (for the benchmark's account)

    def refresh(self, con: duckdb.DuckDBPyConnection, now_hour: int, scan_hours: int) -> dict[Scope, Series]:
        """Bring the series up to ``now_hour`` (exclusive; its calls are read too, for late data next run) and
        return every picked scope's series. ``scan_hours``: how far back a scope may have been worth a look
        on a first run."""
        self.reads = 0
        if self.origin is None or now_hour + 1 > self.origin + self.lookback_hours + self.slack_hours:
            self.series.clear()
            self.origin = now_hour - self.lookback_hours
            self.read_until = None
        length = self.lookback_hours + self.slack_hours
        recent_from = (
            now_hour - scan_hours
            if self.read_until is None
            else self._first_changed(con, max(self.origin, self.read_until - self.reread_hours))
        )
        since = hour_start(recent_from)
        until = hour_start(now_hour + 1)
        # calls stamped later than now (a clock ahead) wait for their hour
        read = {ORG: spend.hourly(con, [], since=since, until=until)}
        read.update(spend.hourly_each(con, self.dimensions, since=since, until=until))
        self.reads += 2 if self.dimensions else 1
        for dimension in (ORG, *self.dimensions):
            rows = read[dimension]
            recent: dict[str | None, list[spend.HourlySpend]] = {}
            for row in rows:
                recent.setdefault(row.values[0] if row.values else "", []).append(row)
            for (dim, _), series in self.series.items():
                if dim == dimension:
                    series.clear(recent_from, now_hour + 1)
            picked = self._pick(dimension, recent)
            missing = [v for v in picked if (dimension, v) not in self.series]
            for value in missing:
                self.series[(dimension, value)] = Series(self.origin, length)
            if missing and recent_from > self.origin:
                history = spend.hourly(
                    con,
                    [] if dimension == ORG else [dimension],
                    since=hour_start(self.origin),
                    until=since,
                    where=None if dimension == ORG else {dimension: missing},
                )
                self.reads += 1
                self._fill(dimension, history)
            self._fill(dimension, rows)
        self.read_until = now_hour + 1
        return self.series

    def _first_changed(self, con: duckdb.DuckDBPyConnection, before: int) -> int:
        """The first hour before ``before`` whose number of stored calls is not what the cache holds, else
        ``before``: calls stored late (a backfill, an exporter's held batch, a replay after a crash) are read
        from there on. One count per hour of the lookback, however many scopes."""
        assert self.origin is not None
        if before <= self.origin:
            return before
        stored = spend.calls_per_hour(con, hour_start(self.origin), hour_start(before))
        self.reads += 1
        counts = np.zeros(before - self.origin, dtype=np.int64)
        for hour, calls in stored.items():
            counts[hour_index(hour) - self.origin] = calls
        org = self.series.get((ORG, ""))
        held = org.data[CALLS, : before - self.origin] if org is not None else np.zeros_like(counts)
        differ = np.flatnonzero(counts != held)
        return self.origin + int(differ[0]) if differ.size else before

    def _pick(self, dimension: str, recent: dict[str | None, list[spend.HourlySpend]]) -> list[str]:
        if dimension == ORG:
            return [""]
        floor = picodollars(self.min_cost_usd)
        ranked: list[tuple[int, str]] = []
        for value, rows in recent.items():
            if value is None:  # calls without the dimension: the organisation's series holds them
                continue
            cost = sum(picodollars(r.cost_usd) for r in rows)
            counts = max(sum(r.unpriced_calls for r in rows), sum(r.cut_short_calls for r in rows))
            if cost >= floor or counts >= self.min_calls or (dimension, value) in self.series:
                ranked.append((cost, value))
        ranked.sort(reverse=True)
        return [value for _, value in ranked[: self.max_scopes_per_dimension]]

    def _fill(self, dimension: str, rows: Iterable[spend.HourlySpend]) -> None:
        for row in rows:
            value = row.values[0] if row.values else ""
            series = self.series.get((dimension, value))  # type: ignore[arg-type]
            if series is not None:
                series.put(row, hour_index(row.hour))
