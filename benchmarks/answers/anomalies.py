"""Anomaly detection measured: precision, recall and delay per kind on generated histories; the scan's CPU.

    python benchmarks/answers/anomalies.py [--seeds 3] [--weeks 4] [--eval-days 6] [--calls-per-hour 600]
                                           [--cpu-calls 1000000] [--skip-accuracy] [--skip-cpu]
    (or: make bench-anomalies)

Accuracy. For each seed, ``--weeks`` weeks of hourly calls and then ``--eval-days`` days in which anomalies
are injected, generated column by column (numpy draws; ids, money and strings with the helpers of
benchmarks/query/run.py) and written through the collector's own writer (``write_partitioned``), then
compacted as a running collector leaves past days. The calls have a daily rhythm (a daytime peak, quiet
nights), a weekly one (weekends at 60%), Poisson counts and lognormal token counts; 4 teams, 8 features (each
of one team, with its own mix of 5 models), 60 customers (a few large), a prompt key per feature. Injected,
in a random order, 18 hours apart from a random hour of the first day, each in a random feature or team:

- spike: a feature's calls x5 for 2 hours;
- level_shift: a feature's new prompt version with 2.2 times the input tokens, from then on;
- cost_per_call: a feature's calls moved to a dearer model for 3 hours (gpt-4o-mini and gemini flash to
  gpt-4o, haiku and gpt-4o to sonnet), the same number of calls;
- new_model: half of a feature's calls on a model never seen before, from then on;
- new_customer: a customer never seen before, 200 calls an hour in a feature, from then on;
- unpriced_surge: 60 calls an hour of an unknown model in a feature for 3 hours (not priced);
- billed_failures: 35% of a team's calls cut short (billed, with an error) for 3 hours.

A control run of each seed has none. The scan runs as the collector runs it, every simulated hour (5 minutes
past) over the evaluation days, with the series it keeps between runs; the anomalies table is merged after
each run as the job merges it, so an anomaly's detection time is the first run that found it.

Scoring (hourly anomalies; daily ones are counted apart). A found anomaly is a true positive when its scope
holds injected calls (the scope injected into, or the organisation, team, feature, model or customer that the
injected calls belong to) and it overlaps the injection in time (a persistent injection: from its start on);
every other is a false positive. Precision per kind is over the anomalies found with that kind. Recall per
injected kind, two ways: "exact" - an anomaly of that kind on the injected scope; "any" - any anomaly on a
scope holding the injected calls. Delay: hours from the injection's start to the first run that found it
(exact, else any). The scan's first hour of data is complete 5 minutes after the hour: a delay of 1 h is the
earliest possible.

CPU. ``--cpu-calls`` calls over 45 days from benchmarks/query/run.py's generator (uniform over hours: no
seasonality), compacted; then one cold scan (the series read from the files, as after a start or every two
days) and warm scans as the job runs them every 5 minutes (the last hours read again, the rest from the
series kept), process CPU seconds each (the median of the warm ones).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: benchmarks.query.run

from benchmarks.query.run import MODELS, hex_ids, money, strings
from benchmarks.query.run import generate as generate_uniform
from costspan.collector.answers._anomaly_detect import AnomalySettings
from costspan.collector.answers.anomalies import KINDS, Anomaly, merge, new_cache, scan
from costspan.exporters.compaction import compact
from costspan.exporters.duckdb_views import connect
from costspan.exporters.parquet import SCHEMA, TABLE, write_partitioned

PRICES = {m[1]: (int(float(m[3]) * 10**6), int(float(m[4]) * 10**6), m[0]) for m in MODELS}  # 1e-12 USD/token
PRICES["gpt-5-preview"] = (5 * 10**6, 20 * 10**6, "openai")  # the new model: never in the history
MODEL_NAMES = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-flash"]
ALL_MODELS = [*MODEL_NAMES, "gpt-5-preview", "acme-9"]
TEAMS = ["search", "support", "growth", "platform"]
FEATURES = [  # name, team, share of calls, model weights (MODEL_NAMES)
    ("summaries", "search", 0.20, [6, 2, 0, 1, 1]),
    ("ranking", "search", 0.10, [8, 0, 0, 0, 2]),
    ("chat", "support", 0.20, [2, 3, 3, 2, 0]),
    ("triage", "support", 0.10, [5, 0, 0, 5, 0]),
    ("emails", "growth", 0.12, [6, 2, 0, 0, 2]),
    ("ads-copy", "growth", 0.08, [3, 3, 2, 0, 2]),
    ("codegen", "platform", 0.12, [0, 4, 4, 2, 0]),
    ("docs-qa", "platform", 0.08, [4, 0, 0, 4, 2]),
]
CUSTOMERS = 60
INJECTED = (
    "spike",
    "level_shift",
    "cost_per_call",
    "new_model",
    "new_customer",
    "unpriced_surge",
    "billed_failures",
)


@dataclass
class Calls:
    """Calls as parallel numpy columns (indexes into the name lists above)."""

    start: np.ndarray  # microseconds since 1970 (UTC)
    feature: np.ndarray
    model: np.ndarray  # index into ALL_MODELS
    customer: np.ndarray  # 0..CUSTOMERS-1, CUSTOMERS for the new customer
    version: np.ndarray  # 0: v1, 1: v2
    inp: np.ndarray
    out: np.ndarray
    cache: np.ndarray
    unpriced: np.ndarray  # bool
    cut_short: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.start)

    def extend(self, other: Calls) -> Calls:
        return Calls(
            **{k: np.concatenate([getattr(self, k), getattr(other, k)]) for k in self.__dataclass_fields__}
        )


@dataclass
class Injection:
    kind: str
    scope: tuple[str, str]
    start: datetime
    end: datetime | None  # None: from then on
    related: set[tuple[str, str]] = field(default_factory=set)


def hour_rate(hours: np.ndarray) -> np.ndarray:
    """Calls per hour relative to the mean: a daytime peak and quiet weekends."""
    hour_of_day = hours % 24
    weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday
    daily = 0.35 + 1.3 * np.exp(-(((hour_of_day - 14) / 4.5) ** 2))
    return daily * np.where(weekday >= 5, 0.6, 1.0)


def draw_feature(
    rng: np.random.Generator,
    feature: int,
    first_hour: int,
    hours: int,
    per_hour: float,
    seasonal: bool = True,
) -> Calls:
    """One feature's calls, ``per_hour`` on average (times the hour's rhythm when ``seasonal``)."""
    hour_index = np.arange(first_hour, first_hour + hours)
    counts = rng.poisson(per_hour * (hour_rate(hour_index) if seasonal else np.ones(hours)))
    n = int(counts.sum())
    weights = np.array(FEATURES[feature][3], float)
    customer_weights = 1 / np.arange(1, CUSTOMERS + 1) ** 1.1
    inp = np.round(rng.lognormal(math.log(6000), 0.5, n)).astype(np.int64) + 1
    return Calls(
        start=np.repeat(hour_index, counts) * 3_600_000_000 + rng.integers(0, 3_600_000_000, n),
        feature=np.full(n, feature),
        model=rng.choice(len(MODEL_NAMES), n, p=weights / weights.sum()),
        customer=rng.choice(CUSTOMERS, n, p=customer_weights / customer_weights.sum()),
        version=np.zeros(n, int),
        inp=inp,
        out=np.round(rng.lognormal(math.log(800), 0.5, n)).astype(np.int64),
        cache=(inp * rng.uniform(0, 0.5, n)).astype(np.int64),
        unpriced=np.zeros(n, bool),
        cut_short=np.zeros(n, bool),
    )


def draw_calls(rng: np.random.Generator, first_hour: int, hours: int, per_hour: float) -> Calls:
    calls = [
        draw_feature(rng, f, first_hour, hours, per_hour * share)
        for f, (_, _, share, _) in enumerate(FEATURES)
    ]
    out = calls[0]
    for more in calls[1:]:
        out = out.extend(more)
    return out


def micros(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp()) * 1_000_000


def related(calls_mask: np.ndarray, calls: Calls) -> set[tuple[str, str]]:
    """The scopes that hold the calls of ``calls_mask``."""
    scopes: set[tuple[str, str]] = {("org", "")}
    for f in np.unique(calls.feature[calls_mask]):
        scopes |= {("feature", FEATURES[f][0]), ("team", FEATURES[f][1]), ("prompt_key", FEATURES[f][0])}
    for m in np.unique(calls.model[calls_mask]):
        scopes |= {("model", ALL_MODELS[m]), ("provider", PRICES.get(ALL_MODELS[m], (0, 0, "acme"))[2])}
    for c in np.unique(calls.customer[calls_mask]):
        scopes.add(("customer_id", customer_name(int(c))))
    return scopes


def customer_name(index: int) -> str:
    return "cus_new" if index == CUSTOMERS else f"cus_{index:03d}"


def inject(
    rng: np.random.Generator, calls: Calls, eval_start: datetime, eval_days: int, args_per_hour: float
) -> tuple[Calls, list[Injection]]:
    """The injections, in a random order, 18 h apart from a random hour of the first evaluation day (the last
    12 h before the evaluation's end)."""
    offset = int(rng.integers(0, 18))  # the first injection's hour: each seed's times differ
    slots = np.arange(6 + offset, eval_days * 24 - 12, 18)[: len(INJECTED)]
    if len(slots) < len(INJECTED):
        raise SystemExit("--eval-days too short for the injections")
    injections = []
    for kind, slot in zip((str(k) for k in rng.permutation(INJECTED)), (int(s) for s in slots), strict=True):
        start = eval_start + timedelta(hours=slot)
        t0 = micros(start)
        f = int(rng.integers(len(FEATURES)))
        feature = FEATURES[f][0]
        in_feature = calls.feature == f
        later = calls.start >= t0
        if kind == "spike":
            hours = 2
            extra = draw_feature(rng, f, t0 // 3_600_000_000, hours, 4 * args_per_hour * FEATURES[f][2])
            calls, mask = _added(calls, extra)
            injections.append(Injection(kind, ("feature", feature), start, start + timedelta(hours=hours)))
        elif kind == "level_shift":
            mask = in_feature & later
            calls.version[mask] = 1
            calls.inp[mask] = (calls.inp[mask] * 2.2).astype(np.int64)
            injections.append(Injection(kind, ("feature", feature), start, None))
        elif kind == "cost_per_call":
            mask = in_feature & later & (calls.start < t0 + 3 * 3_600_000_000)
            # to a dearer model: mini -> gpt-4o, haiku -> sonnet, flash -> gpt-4o, gpt-4o -> sonnet
            dear = {0: 1, 3: 2, 4: 1, 1: 2, 2: 2}
            calls.model[mask] = np.vectorize(dear.get)(calls.model[mask])
            injections.append(Injection(kind, ("feature", feature), start, start + timedelta(hours=3)))
        elif kind == "new_model":
            mask = in_feature & later & (rng.random(len(calls)) < 0.5)
            calls.model[mask] = ALL_MODELS.index("gpt-5-preview")
            injections.append(Injection(kind, ("model", "gpt-5-preview"), start, None))
        elif kind == "new_customer":
            end_hour = micros(eval_start + timedelta(days=eval_days)) // 3_600_000_000
            extra = draw_feature(rng, f, t0 // 3_600_000_000, end_hour - t0 // 3_600_000_000, 200)
            extra.customer[:] = CUSTOMERS
            calls, mask = _added(calls, extra)
            injections.append(Injection(kind, ("customer_id", "cus_new"), start, None))
        elif kind == "unpriced_surge":
            extra = draw_feature(rng, f, t0 // 3_600_000_000, 3, 60, seasonal=False)
            extra.model[:] = ALL_MODELS.index("acme-9")
            extra.unpriced[:] = True
            calls, mask = _added(calls, extra)
            injections.append(Injection(kind, ("feature", feature), start, start + timedelta(hours=3)))
        else:  # billed_failures
            team = FEATURES[f][1]
            in_team = np.isin(calls.feature, [i for i, x in enumerate(FEATURES) if x[1] == team])
            mask = in_team & later & (calls.start < t0 + 3 * 3_600_000_000) & (rng.random(len(calls)) < 0.35)
            calls.cut_short[mask] = True
            injections.append(Injection(kind, ("team", team), start, start + timedelta(hours=3)))
        injections[-1].related = related(mask, calls)
    return calls, injections


def _added(calls: Calls, extra: Calls) -> tuple[Calls, np.ndarray]:
    """``calls`` with ``extra`` after them, and the mask of the extra ones."""
    mask = np.zeros(len(calls) + len(extra), bool)
    mask[len(calls) :] = True
    return calls.extend(extra), mask


def to_table(calls: Calls) -> pa.Table:
    n = len(calls)
    inp, out, cache = calls.inp, calls.out, calls.cache
    in_price = np.array([PRICES.get(m, (0, 0, ""))[0] for m in ALL_MODELS])[calls.model]
    out_price = np.array([PRICES.get(m, (0, 0, ""))[1] for m in ALL_MODELS])[calls.model]
    cost = inp * in_price + out * out_price
    provider = [PRICES.get(m, (0, 0, "acme"))[2] for m in ALL_MODELS]
    feature_names = [f[0] for f in FEATURES]
    team_of = np.array([TEAMS.index(f[1]) for f in FEATURES])[calls.feature]
    cost_array = money(pa.array(cost, pa.int64()))
    columns = {
        "start_time": pa.array(calls.start, pa.int64()).cast(pa.timestamp("us")),
        "duration_s": pa.array(np.full(n, 1.0)),
        "trace_id": hex_ids(n, 16),
        "span_id": hex_ids(n, 8),
        "service_name": pa.array(["app"] * n),
        "provider": strings(provider, pa.array(calls.model, pa.int32())),
        "operation": pa.array(["chat"] * n),
        "request_model": strings(ALL_MODELS, pa.array(calls.model, pa.int32())),
        "response_model": strings(ALL_MODELS, pa.array(calls.model, pa.int32())),
        "input_tokens": pa.array(inp, pa.int64()),
        "output_tokens": pa.array(out, pa.int64()),
        "cache_read_tokens": pa.array(cache, pa.int64()),
        "cost_usd": pa.array(
            [None if u else c for u, c in zip(calls.unpriced.tolist(), cost_array.to_pylist(), strict=True)],
            cost_array.type,
        )
        if calls.unpriced.any()
        else cost_array,
        "cost_source": pa.array(["local"] * n),
        "pricing_status": pa.array(np.where(calls.unpriced, "unknown_model", "priced").tolist()),
        "customer_id": pa.array([customer_name(int(c)) for c in calls.customer]),
        "feature": strings(feature_names, pa.array(calls.feature, pa.int32())),
        "team": strings(TEAMS, pa.array(team_of, pa.int32())),
        "prompt_key": strings(feature_names, pa.array(calls.feature, pa.int32())),
        "prompt_version": strings(["v1", "v2"], pa.array(calls.version, pa.int32())),
        "error_type": pa.array(np.where(calls.cut_short, "timeout", None).tolist(), pa.string()),
        "environment": pa.array(["production"] * n),
    }
    arrays = [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in SCHEMA]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def write(data_dir: Path, calls: Calls, now: datetime) -> None:
    order = np.argsort(calls.start, kind="stable")
    calls = Calls(**{k: getattr(calls, k)[order] for k in Calls.__dataclass_fields__})
    days = calls.start // 86_400_000_000
    for day in np.unique(days):
        picked = days == day
        part = Calls(**{k: getattr(calls, k)[picked] for k in Calls.__dataclass_fields__})
        write_partitioned(data_dir, TABLE, to_table(part))
    compact(data_dir, now=now + timedelta(days=1))


def simulate(
    data_dir: Path, eval_start: datetime, eval_days: int, settings: AnomalySettings
) -> list[Anomaly]:
    """The scan every simulated hour (5 past) over the evaluation days; the table's rows at the end."""
    con = connect(data_dir)
    cache = new_cache(settings, settings.baseline_weeks * 168 + 8 * 24)
    rows: list[Anomaly] = []
    for hour in range(1, eval_days * 24 + 1):
        now = eval_start + timedelta(hours=hour, minutes=5)
        result = scan(con, now.replace(tzinfo=UTC), settings, cache, explain_calls=False)
        rows, _ = merge(rows, result.anomalies, now)
    con.close()
    return rows


def score(rows: list[Anomaly], injections: list[Injection], tally: dict) -> None:
    for grain in ("hourly", "daily"):
        for a in (r for r in rows if r.grain == grain):
            scope = (a.dimension, a.value)
            hit = any(
                scope in inj.related
                and a.last_seen > inj.start
                and (inj.end is None or a.start < inj.end + timedelta(hours=2 if grain == "hourly" else 24))
                for inj in injections
            )
            tally[grain]["found"][a.kind] = tally[grain]["found"].get(a.kind, 0) + 1
            tally[grain]["true"][a.kind] = tally[grain]["true"].get(a.kind, 0) + (1 if hit else 0)
    for inj in injections:
        # found for it: begun from the hour before it on (an anomaly open since earlier is another's)
        hourly = [r for r in rows if r.grain == "hourly" and r.start >= inj.start - timedelta(hours=1)]
        exact = [r for r in hourly if (r.dimension, r.value) == inj.scope and r.kind == inj.kind]
        anywhere = [
            r
            for r in hourly
            if (r.dimension, r.value) in inj.related
            and (inj.end is None or r.start < inj.end + timedelta(hours=2))
        ]
        entry = tally["recall"].setdefault(inj.kind, {"n": 0, "exact": 0, "any": 0, "delays": []})
        entry["n"] += 1
        entry["exact"] += bool(exact)
        entry["any"] += bool(anywhere)
        first = exact or anywhere
        if first:
            detected = min(r.detected_at for r in first if r.detected_at is not None)
            entry["delays"].append((detected - inj.start) / timedelta(hours=1))


def accuracy(args: argparse.Namespace, settings: AnomalySettings) -> None:
    tally = {g: {"found": {}, "true": {}} for g in ("hourly", "daily")}
    tally["recall"] = {}
    control = {"hourly": {}, "daily": {}}
    start_hour = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp()) // 3600
    hours = (args.weeks * 7 + args.eval_days) * 24
    eval_start = datetime(2026, 1, 5) + timedelta(weeks=args.weeks)
    end = eval_start + timedelta(days=args.eval_days)
    for seed in range(args.seeds):
        for injected in (True, False):
            rng = np.random.default_rng(seed)
            t = time.perf_counter()
            calls = draw_calls(rng, start_hour, hours, args.calls_per_hour)
            injections: list[Injection] = []
            if injected:
                calls, injections = inject(rng, calls, eval_start, args.eval_days, args.calls_per_hour)
            data_dir = Path(tempfile.mkdtemp(prefix="costspan-bench-anomalies-"))
            try:
                write(data_dir, calls, end)
                written = time.perf_counter() - t
                t = time.perf_counter()
                rows = simulate(data_dir, eval_start, args.eval_days, settings)
                scanned = time.perf_counter() - t
            finally:
                shutil.rmtree(data_dir, ignore_errors=True)
            label = "injected" if injected else "control"
            print(
                f"seed {seed} {label}: {len(calls):,} calls (written in {written:.0f} s), "
                f"{args.eval_days * 24} hourly scans in {scanned:.0f} s, {len(rows)} anomalies",
                flush=True,
            )
            if injected:
                score(rows, injections, tally)
                for inj in injections:
                    print(
                        f"    injected {inj.kind:15s} {inj.scope[0]}={inj.scope[1]} at {inj.start:%a %H:%M}"
                    )
            else:
                for r in rows:
                    control[r.grain][r.kind] = control[r.grain].get(r.kind, 0) + 1
                    print(f"    control: {r.grain} {r.kind} {r.scope} {r.start} impact {r.impact_usd:.2f}")
    print()
    print(f"{args.seeds} seeds; hourly anomalies (daily in brackets)")
    print(
        f"{'kind':16s} {'injected':>8s} {'recall exact':>12s} {'recall any':>10s} "
        f"{'delay h (median, max)':>22s} "
        f"{'found':>9s} {'precision':>10s} {'control found':>14s}"
    )
    for kind in KINDS:
        r = tally["recall"].get(kind, {"n": 0, "exact": 0, "any": 0, "delays": []})
        found = tally["hourly"]["found"].get(kind, 0)
        true = tally["hourly"]["true"].get(kind, 0)
        found_d = tally["daily"]["found"].get(kind, 0)
        true_d = tally["daily"]["true"].get(kind, 0)
        precision = f"{true / found:.2f}" if found else "-"
        precision_d = f"{true_d / found_d:.2f}" if found_d else "-"
        delays = r["delays"]
        delay = f"{statistics.median(delays):.1f}, {max(delays):.1f}" if delays else "-"
        recall = f"{r['exact']}/{r['n']}" if r["n"] else "-"
        recall_any = f"{r['any']}/{r['n']}" if r["n"] else "-"
        controls = f"{control['hourly'].get(kind, 0)} ({control['daily'].get(kind, 0)})"
        print(
            f"{kind:16s} {r['n']:>8d} {recall:>12s} {recall_any:>10s} {delay:>22s} "
            f"{found:>4d} ({found_d}) {precision:>5s} ({precision_d}) {controls:>14s}"
        )


def cpu(args: argparse.Namespace, settings: AnomalySettings) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="costspan-bench-anomalies-cpu-"))
    try:
        t = time.perf_counter()
        generate_uniform(data_dir, args.cpu_calls, 45)
        compact(data_dir)
        took = time.perf_counter() - t
        print(f"\nCPU: {args.cpu_calls:,} calls over 45 days written and compacted in {took:.0f} s")
        now = datetime.now(UTC).replace(minute=5, second=0, microsecond=0)
        con = connect(data_dir)
        cache = new_cache(settings, settings.baseline_weeks * 168 + 8 * 24)
        explanations: dict = {}
        t = time.process_time()
        cold = scan(con, now, settings, cache, explanations=explanations)
        cold_s = time.process_time() - t
        warm = []
        for k in range(1, 7):
            t = time.process_time()
            scan(con, now + timedelta(minutes=5 * k), settings, cache, explanations=explanations)
            warm.append(time.process_time() - t)
        con.close()
        warm_s = statistics.median(warm)
        per_minute = warm_s / 5 + cold_s / (48 * 60)
        print(
            f"cold scan (series read from the files): {cold_s:.2f} s CPU, {len(cold.anomalies)} anomalies, "
            f"{len(cache.series)} scopes kept"
        )
        print(
            f"warm scan every 5 minutes: {warm_s:.3f} s CPU (median of {len(warm)}: "
            f"{', '.join(f'{w:.3f}' for w in warm)})"
        )
        print(f"CPU per minute of wall time (warm every 5 min, cold every 48 h): {per_minute:.3f} s")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--weeks", type=int, default=4, help="weeks of history before the evaluation days")
    parser.add_argument("--eval-days", type=int, default=6)
    parser.add_argument("--calls-per-hour", type=float, default=600)
    parser.add_argument("--cpu-calls", type=int, default=1_000_000)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    settings = AnomalySettings()
    print(f"settings: {settings}")
    if not args.skip_accuracy:
        accuracy(args, settings)
    if not args.skip_cpu:
        cpu(args, replace(settings))


if __name__ == "__main__":
    main()
