"""The console's pages: a small web application the admin server mounts under ``/console``.

Each page is rendered on the server from :mod:`.queries` over a read-only connection (the views of the
files on disk now, as ``costspan sql`` opens them, kept while the files stay as they are:
:mod:`.connections`) and its URL's parameters (:mod:`.params`). The browser gets HTML, a little JSON for the
charts, and the vendored scripts under ``static/``.
"""

from __future__ import annotations

import calendar
import io
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import duckdb
import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from costspan.collector.answers._anomaly_series import ORG as ANOMALY_ORG
from costspan.collector.answers.forecast import ORGANISATION
from costspan.collector.sql import QueryRefused, cell_text, read_only_query, write_rows

from . import queries
from .auth import COOKIE, ConsoleAuth
from .connections import Connections
from .params import DRILL, RANGES, BadParameter, View, dimension_label, parse_view, utc_now

HERE = Path(__file__).parent
PREFIX = "/console"
# the SQL page: at most this many rows are shown, and a query is stopped after this long
SQL_MAX_ROWS = 1000
SQL_TIMEOUT_S = 30.0
CALLS_SHOWN = 200  # the raw calls page: the latest this many
SQL_EXAMPLE = (
    "SELECT team, feature, count(*) AS calls, sum(cost_usd) AS cost_usd\n"
    "FROM llm_calls\nGROUP BY ALL\nORDER BY cost_usd DESC\nLIMIT 20"
)
# Scripts and styles come from the console itself only (no inline script; the charts' data is JSON, not code),
# and no other site may frame it. Inline styles are allowed: htmx adds its indicator style, and a trace's
# rows are indented with one.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# the pages in the navigation, in order: (path below /console, title)
PAGES = (
    ("/", "Overview"),
    ("/explore", "Explore"),
    ("/traces", "Traces"),
    ("/models", "Models"),
    ("/budgets", "Budgets"),
    ("/sql", "SQL"),
)


def create_app(
    data_dir: Path,
    auth: ConsoleAuth,
    health: Callable[[], dict[str, float]] | None = None,
    secure_cookie: bool = False,
    pricing: Callable[[], Any] | None = None,
) -> FastAPI:
    """The console over ``data_dir``. ``health``: the collector's own figures (name -> value), when the
    console runs inside it; ``pricing``: makes the collector's pricing engine (default: the installed
    catalogs'), once, when the Models page is first shown."""
    engine = _Once(pricing or _default_engine)
    connections = Connections(data_dir)  # one connection while the files stay as they are
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = _templates()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        page = templates.get_template(name).render(
            request=request,
            pages=PAGES,
            prefix=PREFIX,
            path=request.url.path,
            login=auth.needs_login,
            **context,
        )
        return HTMLResponse(page, status_code=status)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        path = request.url.path
        if path.startswith(f"{PREFIX}/static/") or path == f"{PREFIX}/login":
            return await call_next(request)
        if auth.off:
            return render(request, "off.html", status=403)
        if auth.allowed(request.headers.get("authorization"), request.cookies.get(COOKIE)):
            return await call_next(request)
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            target = str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PREFIX}/login?next={_quote(target)}", status_code=303)
        return Response(
            "missing or wrong bearer token\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.middleware("http")  # added last, so outermost: on the guard's answers too
    async def headers(request: Request, call_next: Callable[[Request], Any]) -> Any:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        message = "no such page" if exc.status_code == 404 else str(exc.detail)
        return render(request, "error.html", status=exc.status_code, message=message)

    @app.exception_handler(BadParameter)
    async def bad_parameter(request: Request, exc: BadParameter) -> HTMLResponse:
        return render(request, "error.html", status=400, message=str(exc))

    @app.get("/login")
    def login_form(request: Request, next: str = f"{PREFIX}/") -> Response:
        if not auth.needs_login:
            return RedirectResponse(f"{PREFIX}/", status_code=303)
        return render(request, "login.html", next=_local(next), wrong=False)

    @app.post("/login")
    async def login(request: Request) -> Response:
        # a urlencoded form, read here: Starlette's form parser needs python-multipart, for two fields
        form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        token = (form.get("token") or [""])[-1]
        target = _local((form.get("next") or [f"{PREFIX}/"])[-1])
        cookie = auth.cookie_for(token) if token else None
        if cookie is None:
            return render(request, "login.html", status=401, next=target, wrong=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, cookie, httponly=True, samesite="strict", secure=secure_cookie, path=PREFIX
        )
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @app.get("/")
    def overview(request: Request) -> HTMLResponse:
        now = utc_now()
        with connections.cursor() as con:
            context = _overview(con, now)
        context["health"] = _health_rows(health() if health is not None else {})
        return render(request, "overview.html", **context)

    @app.get("/explore")
    def explore(request: Request) -> HTMLResponse:
        view = parse_view(_args(request), utc_now())
        with connections.cursor() as con:
            # one pass over the calls of the range and filters, cut three ways
            cuts = queries.day_cuts(view.since, view.until)
            cut = queries.cube(con, (view.by,) if view.by else (), view.since, view.until, view.where, cuts)
            chart = cut.series(view.measure, view.since, view.until, view.by)
            groups = cut.breakdown(view.by) if view.by else []
            total = cut.totals()
            tags = queries.tag_keys(con, view.since)
        return render(
            request,
            "explore.html",
            view=view,
            chart_data=_chart_json(chart, view.measure, grouped=view.by is not None),
            groups=groups,
            total=total,
            tag_keys=tags,
            dimensions=queries.DIMENSION_LABELS,
            drill=DRILL,
            ranges=RANGES,
        )

    @app.get("/explore.csv")
    def explore_csv(request: Request) -> Response:
        view = parse_view(_args(request), utc_now())
        by = view.by or "team"
        with connections.cursor() as con:
            groups = queries.breakdown(con, by, view.since, view.until, view.where)
        out = io.StringIO()
        write_rows(
            [by, "calls", "unpriced_calls", "input_tokens", "output_tokens", "cost_usd"],
            [
                (
                    g.value,
                    g.totals.calls,
                    g.totals.unpriced_calls,
                    g.totals.input_tokens,
                    g.totals.output_tokens,
                    g.totals.cost_usd,
                )
                for g in groups
            ],
            "csv",
            out,
        )
        name = f"costspan-{by}-{view.since:%Y%m%d}-{view.until:%Y%m%d}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @app.get("/traces")
    def traces(request: Request) -> HTMLResponse:
        view = parse_view(_args(request), utc_now(), default_by=None)
        with connections.cursor() as con:
            found = queries.costliest_traces(con, view.since, view.until, view.where, limit=50)
        return render(request, "traces.html", view=view, traces=found, ranges=RANGES)

    @app.get("/calls")
    def calls(request: Request, status: str = "") -> HTMLResponse:
        view = parse_view(_args(request), utc_now(), default_by=None)
        if status not in ("", "unpriced"):
            raise BadParameter(f"unknown status {status!r}: unpriced, or none for every call")
        with connections.cursor() as con:
            found = queries.latest_calls(
                con, view.since, view.until, view.where, CALLS_SHOWN, unpriced_only=status == "unpriced"
            )
        return render(
            request, "calls.html", view=view, calls=found, only=status, shown=CALLS_SHOWN, ranges=RANGES
        )

    @app.get("/traces/{trace_id}")
    def trace(request: Request, trace_id: str) -> HTMLResponse:
        with connections.cursor() as con:
            roots = queries.trace_tree(con, trace_id.lower())
        if not roots:
            return render(request, "error.html", status=404, message=f"no stored span of trace {trace_id}")
        nodes = queries.flatten(roots)
        total = sum((r.total_cost_usd for r in roots), Decimal(0))
        return render(request, "trace.html", trace_id=trace_id, nodes=nodes, total=total, roots=roots)

    @app.get("/models")
    def models(request: Request) -> HTMLResponse:
        view = parse_view(_args(request), utc_now(), default_by=None)
        with connections.cursor() as con:
            found = queries.models(con, view.since, view.until, view.where)
        pricing = engine()
        for row in found:
            row.price = queries.price_in_force(pricing, row.provider, row.model, view.until)
        return render(request, "models.html", view=view, models=found, ranges=RANGES)

    @app.get("/budgets")
    def budgets(request: Request) -> HTMLResponse:
        with connections.cursor() as con:
            context = {
                "budgets": queries.budgets(con),
                "periods": queries.budget_periods(con),
                "forecasts": queries.forecast_totals(con),
                "anomalies": queries.open_anomalies(con, limit=100),
                "organisation": (ORGANISATION, ANOMALY_ORG),  # how the tables name it
            }
        return render(request, "budgets.html", **context)

    @app.get("/sql")
    def sql(request: Request, q: str = "") -> HTMLResponse:
        context: dict[str, Any] = {
            "q": q or SQL_EXAMPLE,
            "ran": bool(q.strip()),
            "max_rows": SQL_MAX_ROWS,
            "error": None,
            "names": [],
            "rows": [],
            "more": False,
        }
        if q.strip():
            try:
                names, rows, more = read_only_query(data_dir, q, SQL_MAX_ROWS, SQL_TIMEOUT_S)
                context.update(names=names, rows=rows, more=more)
            except QueryRefused as exc:
                context["error"] = str(exc)
        return render(request, "sql.html", **context)

    return app


class _Once:
    """A value made on first use, then kept (the pricing engine: its catalogs take a moment to load)."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._value: Any = None

    def __call__(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value = self._make()
            return self._value


def _default_engine() -> Any:
    from costspan.pricing import load_engine

    return load_engine()


def _args(request: Request) -> dict[str, list[str]]:
    args: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        args.setdefault(key, []).append(value)
    return args


def _overview(con: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, Any]:
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    forecast = queries.month_forecast(con)
    period_total = next((r for r in forecast if r["kind"] == "period_total"), None)
    trend_since = min(month, today - timedelta(days=29))
    # one pass over the calls: every figure below is a cut of these hours by team and model
    movers_since, _, _ = queries.mover_windows(now, timedelta(days=7))
    # summed by day but where a card or mover cuts, and by hour today (the latest hour is shown)
    cuts = [week, month, *(m for d in (1, 7) for m in queries.mover_windows(now, timedelta(days=d))[:2])]
    cuts += [today + timedelta(hours=h) for h in range(now.hour + 1)]
    cut = queries.cube(con, ("team", "model"), min(trend_since, week, movers_since), now, cuts=cuts)
    daily = cut.daily_cost(trend_since, now)
    by_team = cut.breakdown("team", month, now)
    return {
        "now": now,
        "cards": [
            ("Today", today, cut.totals(today, now)),
            ("This week", week, cut.totals(week, now)),
            ("Month to date", month, cut.totals(month, now)),
        ],
        "month": month,
        "period_total": period_total,
        "forecast_method": period_total["method"] if period_total else None,
        "trend": _trend_json(daily, trend_since, today, forecast),
        "budgets": queries.budgets(con),
        "by_team": by_team,
        "movers": [
            ("team", "since yesterday", cut.movers("team", now, timedelta(days=1))),
            ("team", "since last week", cut.movers("team", now, timedelta(days=7))),
            ("model", "since last week", cut.movers("model", now, timedelta(days=7))),
        ],
        "unpriced": queries.unpriced(cut, month, now),
        "latest_hour": max((row.hour for row in cut.rows), default=None),
        "anomalies": queries.open_anomalies(con, limit=5),
        "month_query": View("mtd", month, now, by="team").query(),
    }


def _trend_json(
    daily: dict[Any, Decimal], since: datetime, today: datetime, forecast: list[dict[str, Any]]
) -> str:
    """The daily spend since ``since`` and the month's forecast from today on (point and 80% band)."""
    ahead = {r["day"]: r for r in forecast if r["kind"] == "forecast" and r["day"] >= today.date()}
    days = []
    day = since.date()
    last = max([today.date(), *ahead])
    while day <= last:
        days.append(day)
        day += timedelta(days=1)

    def number(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    return _script_json(
        {
            "x": [_unix(datetime(d.year, d.month, d.day)) for d in days],
            "series": [
                {
                    "label": "spent",
                    "values": [number(daily.get(d, Decimal(0))) if d <= today.date() else None for d in days],
                },
                {
                    "label": "forecast",
                    "values": [number(ahead[d]["p50"]) if d in ahead else None for d in days],
                },
                {
                    "label": "80% low",
                    "values": [number(ahead[d]["lo80"]) if d in ahead else None for d in days],
                },
                {
                    "label": "80% high",
                    "values": [number(ahead[d]["hi80"]) if d in ahead else None for d in days],
                },
            ],
            "kind": "trend",
            "unit": "usd",
        }
    )


def _script_json(value: Any) -> str:
    """JSON to place inside a ``<script type="application/json">`` element: ``<``, ``>`` and ``&`` escaped,
    so that no value (a team named ``</script><script>...``) can close the element and run."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _unix(moment: datetime) -> int:
    # naive datetimes are UTC here (datetime.timestamp() would take them for local time)
    return calendar.timegm(moment.timetuple())


def _chart_json(series: queries.Series, measure: str, grouped: bool) -> str:
    return _script_json(
        {
            "x": [_unix(b) for b in series.buckets],
            "series": [
                {
                    "label": g if g is not None else "(none)" if grouped else "all calls",
                    "values": [float(v) for v in values],
                }
                for g, values in zip(series.groups, series.values, strict=True)
            ],
            "kind": "lines",
            "unit": "usd" if measure == "cost_usd" else "count",
        }
    )


# the collector's own figures the overview shows: (metric, what it is, how it is shown)
HEALTH = (
    ("costspan_collector_spans_received_total", "spans received", "count"),
    ("costspan_collector_spans_written_total", "spans written", "count"),
    ("costspan_collector_wal_pending_bytes", "write-ahead log waiting", "bytes"),
    ("costspan_collector_data_dir_free_bytes", "free space for data", "bytes"),
    ("costspan_collector_pipeline_workers", "pipeline workers", "count"),
    ("costspan_collector_pipeline_worker_restarts_total", "worker restarts", "count"),
    ("costspan_collector_requests_refused_total", "requests refused", "count"),
)


def _health_rows(figures: dict[str, float]) -> list[tuple[str, str]]:
    rows = []
    for name, label, unit in HEALTH:
        if name in figures:
            value = figures[name]
            rows.append((label, _bytes(value) if unit == "bytes" else f"{int(value):,}"))
    return rows


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return str(value)


def registry_figures(registry: Any) -> Callable[[], dict[str, float]]:
    """The collector's figures from its Prometheus registry: each sample's value, summed over labels."""

    def read() -> dict[str, float]:
        figures: dict[str, float] = {}
        for family in registry.collect():
            for sample in family.samples:
                if sample.name.startswith("costspan_collector_"):
                    figures[sample.name] = figures.get(sample.name, 0.0) + sample.value
        return figures

    return read


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        exact=exact,
        cell=cell_text,
        count=lambda n: f"{int(n):,}",
        label=dimension_label,
        when=_when,
    )
    return env


def money(value: Decimal | None, places: int = 2) -> str:
    """Dollars with ``places`` decimals (cents; a page of small amounts, such as a trace's, shows four, all of
    them alike); a non-zero amount that would show as zero is "<$0.01" (the exact figure is in the element's
    ``data-exact``)."""
    if value is None:
        return "—"
    smallest = Decimal(1).scaleb(-places)
    if value != 0 and abs(value) < smallest:
        return f"<${smallest}" if value > 0 else f"-<${smallest}"
    return f"${value:,.{places}f}" if value >= 0 else f"-${-value:,.{places}f}"


def exact(value: Decimal | None) -> str:
    """The exact amount, as ``costspan sql`` prints it."""
    if value is None:
        return ""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _local(target: str) -> str:
    """Only a path of the console itself is a place to go after logging in (never another site)."""
    return target if target.startswith(f"{PREFIX}/") and not target.startswith("//") else f"{PREFIX}/"
