"""The budgets' spend, kept between evaluations: what an evaluation every minute reads is the last hour or
two, not the month.

The first evaluation loads the spend of every scope since the earliest instant the figures need (one
query, as :meth:`SpendIndex.load`). The hours that have passed (all but the current one and the one before)
are kept, per UTC hour, and the hours in which a window begins between hours are kept per minute. Each later
evaluation asks for the calls since the hours kept (by minute for the current and the last hour), and for
the minutes of any hour a window has moved into: a small query. Calls that reach the store late (a
backfill, a batch held by an exporter, a replay after a crash) are found by a count of the calls per hour
kept, and those hours are read again. Once an hour the whole span is loaded again (a call whose record was
replaced by a better one changes its cost, not the count); and whenever the budgets or the span they need
change (a new period reaching back further, to close the last one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb

from .budget_status import Series, SpendIndex, scope_key
from .spend import HourlySpend, calls_per_hour, hourly_by_scope

RELOAD_EVERY = timedelta(hours=1)
_HOUR = timedelta(hours=1)

Key = tuple[tuple[str, str], ...]


@dataclass
class SpendCache:
    keys: list[Key] = field(default_factory=list)
    since: datetime | None = None  # aware UTC: the first hour kept
    settled: datetime | None = None  # the hours before this one are kept
    loaded_at: datetime | None = None
    hours: dict[Key, dict[datetime, HourlySpend]] = field(default_factory=dict)  # key -> hour -> spend
    minutes: dict[datetime, dict[Key, list[HourlySpend]]] = field(default_factory=dict)  # hour -> key -> ...
    loads: int = 0  # whole loads, for the record
    _extended: int = 0  # additions to what is kept
    _sorted: dict[Key, list[HourlySpend]] = field(default_factory=dict, repr=False)
    _sorted_for: tuple[object, ...] = ()

    def index(
        self,
        con: duckdb.DuckDBPyConnection,
        scopes: Iterable[Mapping[str, str]],
        now: datetime,
        boundaries: Iterable[datetime],
    ) -> SpendIndex:
        """As :meth:`SpendIndex.load`, from what is kept and the calls since."""
        now = now.astimezone(UTC)
        keys = list(dict.fromkeys([(), *(scope_key(s) for s in scopes)]))
        marks = [b.astimezone(UTC) for b in boundaries]
        since = _hour(min([*marks, now]))
        settled = _hour(now) - _HOUR
        between = {_hour(b) for b in marks if b != _hour(b) and _hour(b) < settled}
        whole = (
            keys != self.keys
            or self.since is None
            or self.settled is None
            or self.loaded_at is None
            or since < self.since
            or settled < self.settled
            or now - self.loaded_at >= RELOAD_EVERY
        )
        if whole:
            self._load(con, keys, since, settled, between, now)
        else:
            assert self.settled is not None
            self._extend(con, keys, settled, between)
        fresh = hourly_by_scope(con, [dict(k) for k in keys], settled, minutes_since=settled)
        # what is no longer needed goes
        self.since = since
        for key in keys:
            self.hours[key] = {h: s for h, s in self.hours[key].items() if h >= since}
        self.minutes = {h: m for h, m in self.minutes.items() if h in between}
        if self._sorted_for != (since, self.settled, frozenset(between), self.loads, self._extended):
            # the hours kept, in order, with the minutes of the hours where windows begin: rebuilt when they
            # change (at an hour's turn), not at every evaluation
            self._sorted = {}
            for key in keys:
                rows = [s for h, s in self.hours[key].items() if h not in between]
                for hour in between:
                    rows += self.minutes[hour].get(key, [])
                rows.sort(key=lambda s: s.hour)
                self._sorted[key] = rows
            self._sorted_for = (since, self.settled, frozenset(between), self.loads, self._extended)
        series = {key: Series([*self._sorted[key], *recent]) for key, recent in zip(keys, fresh, strict=True)}
        return SpendIndex(series, since, series[()].first)

    def _load(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: Sequence[Key],
        since: datetime,
        settled: datetime,
        between: set[datetime],
        now: datetime,
    ) -> None:
        rows = hourly_by_scope(con, [dict(k) for k in keys], since, until=settled, minute_hours=between)
        self.keys, self.loaded_at, self.settled = list(keys), now, settled
        self.hours = {k: {} for k in keys}
        self.minutes = {h: {} for h in between}
        self._keep(keys, rows, between)
        self.loads += 1

    def _extend(
        self, con: duckdb.DuckDBPyConnection, keys: Sequence[Key], settled: datetime, between: set[datetime]
    ) -> None:
        assert self.settled is not None
        scopes = [dict(k) for k in keys]
        if settled > self.settled:  # hours that have passed since the last evaluation
            hours = {h for h in between if h >= self.settled}
            rows = hourly_by_scope(con, scopes, self.settled, until=settled, minute_hours=hours)
            for h in hours:
                self.minutes.setdefault(h, {})
            self._keep(keys, rows, hours)
            self.settled = settled
            self._extended += 1
        self._late(con, keys, between)
        older = {h for h in between if h not in self.minutes}
        if older:  # a window moved into an hour kept whole: its minutes
            rows = hourly_by_scope(
                con, scopes, min(older), until=max(older) + _HOUR, minute_hours=older, only_hours=older
            )
            self._extended += 1
            for h in older:
                self.minutes[h] = {}
            for key, found in zip(keys, rows, strict=True):
                for s in found:
                    self.minutes[_hour_of(s)].setdefault(key, []).append(s)

    def _late(self, con: duckdb.DuckDBPyConnection, keys: Sequence[Key], between: set[datetime]) -> None:
        """Read again the hours kept whose number of calls changed: calls stored late (a backfill, an
        exporter's held batch, a replay after a crash)."""
        assert self.since is not None and self.settled is not None
        stored = {h.replace(tzinfo=UTC): n for h, n in calls_per_hour(con, self.since, self.settled).items()}
        kept = {h: s.calls for h, s in self.hours[()].items() if h >= self.since}
        changed = {h for h in stored.keys() | kept.keys() if stored.get(h, 0) != kept.get(h, 0)}
        if not changed:
            return
        edges = changed & between
        rows = hourly_by_scope(
            con,
            [dict(k) for k in keys],
            min(changed),
            until=max(changed) + _HOUR,
            minute_hours=edges,
            only_hours=changed,
        )
        for key in keys:
            for h in changed:
                self.hours[key].pop(h, None)
        for h in changed & self.minutes.keys():
            del self.minutes[h]
        for h in edges:
            self.minutes[h] = {}
        self._keep(keys, rows, edges)
        self._extended += 1

    def _keep(
        self, keys: Sequence[Key], rows: Sequence[Sequence[HourlySpend]], between: set[datetime]
    ) -> None:
        for key, found in zip(keys, rows, strict=True):
            hours = self.hours[key]
            for s in found:
                hour = _hour_of(s)
                if hour in between:
                    self.minutes[hour].setdefault(key, []).append(s)
                hours[hour] = _add(hours[hour], s, hour) if hour in hours else _at(s, hour)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_of(spend: HourlySpend) -> datetime:
    return spend.hour.replace(minute=0, second=0, microsecond=0, tzinfo=UTC)


def _at(spend: HourlySpend, hour: datetime) -> HourlySpend:
    return _add(None, spend, hour)


def _add(total: HourlySpend | None, spend: HourlySpend, hour: datetime) -> HourlySpend:
    """``total`` and ``spend`` as one hour's spend (the minutes of an hour kept whole too)."""
    naive = hour.replace(tzinfo=None)
    if total is None:
        return HourlySpend(naive, (), *_measures(spend))
    summed = [a + b for a, b in zip(_measures(total), _measures(spend), strict=True)]
    return HourlySpend(naive, (), *summed)  # type: ignore[arg-type]


def _measures(s: HourlySpend) -> tuple[int | Decimal, ...]:
    return (
        s.calls,
        s.billed_calls,
        s.unpriced_calls,
        s.failed_calls,
        s.cut_short_calls,
        s.input_tokens,
        s.output_tokens,
        s.cache_read_tokens,
        s.cache_write_tokens,
        s.cost_usd,
    )
