"""A page's state from its URL: the time range, the filters, the grouping and the measure.

Everything a page shows is decided by its query string, so a URL is a view that can be shared and reloaded.
Filters are ``f.<dimension>=<value>`` (repeated for several values of one dimension: any of them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from costspan.collector.answers.spend import UnknownDimension, dimension_sql

from .queries import DIMENSION_LABELS, MEASURES

RANGES: dict[str, str] = {
    "24h": "last 24 hours",
    "7d": "last 7 days",
    "30d": "last 30 days",
    "90d": "last 90 days",
    "mtd": "month to date",
}
DEFAULT_RANGE = "30d"
FILTER_PREFIX = "f."
# where a click on a group leads: the next dimension to group by ("traces": its costliest traces)
DRILL = {"team": "feature", "feature": "traces"}


class BadParameter(ValueError):
    pass


def utc_now() -> datetime:
    """Now, naive UTC (as ``start_time`` is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class View:
    range: str  # a key of RANGES, or "custom"
    since: datetime
    until: datetime
    filters: dict[str, list[str]] = field(default_factory=dict)
    by: str | None = None
    measure: str = "cost_usd"
    start: str = ""  # the custom range's days as given (YYYY-MM-DD), for the form
    end: str = ""

    def query(self, **changes: object) -> str:
        """This view's query string, with ``changes`` (``by``, ``measure``, ``range`` ...; ``filters`` a dict
        replacing them); parameters set to None are left out."""
        params: dict[str, object] = {"range": self.range, "by": self.by, "measure": self.measure}
        if self.range == "custom":
            params.update({"from": self.start, "to": self.end})
        filters = self.filters
        for key, value in changes.items():
            if key == "filters":
                filters = value  # type: ignore[assignment]
            else:
                params[key] = value
        pairs = [(k, str(v)) for k, v in params.items() if v not in (None, "")]
        pairs += [(FILTER_PREFIX + d, v) for d, values in filters.items() for v in values]
        return urlencode(pairs)

    def with_filter(self, dimension: str, value: str) -> dict[str, list[str]]:
        return {**self.filters, dimension: [value]}

    def without_filter(self, dimension: str, value: str) -> dict[str, list[str]]:
        kept = {d: [v for v in vs if not (d == dimension and v == value)] for d, vs in self.filters.items()}
        return {d: vs for d, vs in kept.items() if vs}

    @property
    def where(self) -> dict[str, list[str]]:
        return self.filters


def parse_view(args: Mapping[str, list[str]], now: datetime, default_by: str | None = "team") -> View:
    """The view a query string asks for (``args``: each parameter's values); :class:`BadParameter` names
    what is wrong."""

    def one(name: str) -> str:
        values = args.get(name) or [""]
        return values[-1].strip()

    range_name = one("range") or DEFAULT_RANGE
    start, end = one("from"), one("to")
    if start or end:
        range_name = "custom"
        since = _day(start, "from") if start else now - timedelta(days=30)
        until = _day(end, "to") + timedelta(days=1) if end else now
        if until <= since:
            raise BadParameter("the range's end is before its start")
    elif range_name in RANGES:
        since, until = range_bounds(range_name, now)
    else:
        raise BadParameter(f"unknown range {range_name!r}: one of {', '.join(RANGES)}, or from/to days")
    filters: dict[str, list[str]] = {}
    for name, values in args.items():
        if name.startswith(FILTER_PREFIX):
            dimension = name[len(FILTER_PREFIX) :]
            check_dimension(dimension)
            filters[dimension] = [v for v in values if v != ""]
    by = one("by") if "by" in args else (default_by or "")
    if by:
        check_dimension(by)
    measure = one("measure") or "cost_usd"
    if measure not in MEASURES:
        raise BadParameter(f"unknown measure {measure!r}: one of {', '.join(MEASURES)}")
    return View(
        range_name, since, until, {d: v for d, v in filters.items() if v}, by or None, measure, start, end
    )


def range_bounds(name: str, now: datetime) -> tuple[datetime, datetime]:
    if name == "mtd":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now
    amount, unit = int(name[:-1]), name[-1]
    return now - (timedelta(hours=amount) if unit == "h" else timedelta(days=amount)), now


def check_dimension(name: str) -> None:
    try:
        dimension_sql(name)
    except UnknownDimension as exc:
        raise BadParameter(str(exc)) from None


def dimension_label(name: str | None) -> str:
    if name is None:
        return ""
    return DIMENSION_LABELS.get(name, name)


def _day(text: str, name: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise BadParameter(f"{name}: a day as YYYY-MM-DD, not {text!r}") from None
