"""Anomalies of stored spend: each kind found on a small constructed history, none on a quiet one, each
explained (a split that adds up exactly, ranked contributors, first-seen facts), the small-dollar guard,
"not enough data", stable ids in the table across runs, the gauges, the command and the SQL view."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from costspan.collector.answers._anomaly_explain import decompose
from costspan.collector.answers._anomaly_series import BILLED, CACHE_READ, COST, INPUT, MEASURES, OUTPUT
from costspan.collector.answers.anomalies import Anomaly, AnomalyEvent, AnomalyJob, anomaly_id, merge, scan
from costspan.collector.answers.runner import AnswerRunner, Job
from costspan.collector.cli import main
from costspan.exporters.duckdb_views import connect
from tests.answers.history import DAYS, SETTINGS, at, aware, write_history, write_hours
from tests.support.stored_calls import call

EVENT = at(DAYS, 10)  # 10:00 on the day after two weeks of history


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Two weeks of usual calls up to EVENT, written once for the module."""
    data_dir = tmp_path_factory.mktemp("history")
    write_history(data_dir, EVENT)
    return data_dir


@pytest.fixture
def tmp_path(tmp_path, history):
    """A data directory holding the history up to EVENT; a test writes what follows it."""
    shutil.copytree(history, tmp_path, dirs_exist_ok=True)
    return tmp_path


def write_after(data_dir, until, extra=lambda hour: (), replace=lambda hour, row: row):
    write_hours(data_dir, EVENT, until, extra, replace)


def found(data_dir, now, settings=SETTINGS, **kwargs):
    con = connect(data_dir)
    try:
        return scan(con, aware(now), settings, **kwargs)
    finally:
        con.close()


def only(result, kind, scope):
    matches = [a for a in result.anomalies if a.kind == kind and a.scope == scope and a.grain == "hourly"]
    assert len(matches) == 1, [(a.kind, a.scope, a.grain, a.start) for a in result.anomalies]
    return matches[0]


def test_a_quiet_history_has_no_anomaly(tmp_path):
    write_after(tmp_path, EVENT + timedelta(hours=12))
    result = found(tmp_path, EVENT + timedelta(hours=12))
    assert result.enough_data
    assert result.anomalies == []


def test_a_spike_is_found_closed_and_explained_by_volume(tmp_path):
    write_after(tmp_path, EVENT + timedelta(hours=6), extra=search_chat_burst)
    result = found(tmp_path, EVENT + timedelta(hours=6))
    spike = only(result, "spike", "team=search")
    assert (spike.start, spike.end, spike.status) == (EVENT, EVENT + timedelta(hours=1), "closed")
    assert spike.observed_usd - spike.expected_usd == spike.impact_usd > Decimal("3.5")
    parts = (spike.volume_usd, spike.tokens_per_call_usd, spike.cache_usd, spike.price_usd)
    assert sum(parts) == spike.impact_usd  # exactly
    assert spike.volume_usd == max(parts)
    top = spike.contributors[0]
    assert (top["dimension"], top["value"]) == ("feature", "chat") and top["share"] > 0.9
    assert spike.explanation.startswith("feature=chat +$4.")
    assert "volume +$" in spike.explanation


def test_a_prompt_change_that_stays_is_a_level_shift_with_its_prompt_version_first_seen(tmp_path):
    change = EVENT + timedelta(minutes=2)

    def new_prompt(hour, row):
        if row["team"] == "ads" and row["start_time"] >= change:
            return {**row, "prompt_version": "v7", "input_tokens": 2100, "cost_usd": Decimal("0.21")}
        return row

    write_after(tmp_path, EVENT + timedelta(hours=9), replace=new_prompt)
    result = found(tmp_path, EVENT + timedelta(hours=9))
    shift = only(result, "level_shift", "team=ads")
    assert shift.start == EVENT and shift.status == "open" and shift.end is None
    assert shift.tokens_per_call_usd == max(
        shift.volume_usd, shift.tokens_per_call_usd, shift.cache_usd, shift.price_usd
    )
    assert shift.first_seen[0]["dimension"] == "prompt_version" and shift.first_seen[0]["value"] == "v7"
    assert "prompt_version v7, first seen 10:03" in shift.explanation
    assert "input tokens per call x2.1" in shift.explanation
    contributors = {(c["dimension"], c["value"]): c for c in shift.contributors}
    assert contributors[("prompt_version", "v7")]["share"] > 1  # v6 went away: it explains more than all
    assert contributors[("prompt_version", "v6")]["change"] < 0


def test_cost_per_call_jumping_with_flat_calls_and_a_new_model(tmp_path):
    window = (EVENT, EVENT + timedelta(hours=3))

    def pricier(hour, row):
        if row["team"] == "search" and window[0] <= hour < window[1]:
            return {**row, "request_model": "gpt-4o", "response_model": "gpt-4o", "cost_usd": Decimal("0.40")}
        return row

    write_after(tmp_path, EVENT + timedelta(hours=8), replace=pricier)
    result = found(tmp_path, EVENT + timedelta(hours=8))
    jump = only(result, "cost_per_call", "team=search")
    assert (jump.start, jump.end) == window
    assert jump.price_usd == max(jump.volume_usd, jump.tokens_per_call_usd, jump.cache_usd, jump.price_usd)
    assert "model gpt-4o, first seen 10:01" in jump.explanation
    assert jump.explanation.split(";")[0].startswith("model=gpt-4o +$")
    new = only(result, "new_model", "model=gpt-4o")
    assert new.start == EVENT and new.expected_usd == 0


def test_a_new_expensive_customer(tmp_path):
    def newcomer(hour):
        if hour >= EVENT:
            return [
                call(hour + timedelta(minutes=i), "0.30", team="ads", customer_id="cus_big") for i in range(6)
            ]
        return []

    write_after(tmp_path, EVENT + timedelta(hours=4), extra=newcomer)
    result = found(tmp_path, EVENT + timedelta(hours=4))
    new = only(result, "new_customer", "customer_id=cus_big")
    assert new.start == EVENT and new.status == "open" and new.expected_usd == 0
    assert new.volume_usd == new.impact_usd  # from no calls: all of it is volume


def test_a_surge_of_unpriced_calls(tmp_path):
    def unpriced(hour):
        if EVENT <= hour < EVENT + timedelta(hours=2):
            return [
                call(
                    hour + timedelta(minutes=i),
                    None,
                    team="search",
                    request_model="acme-9",
                    response_model="acme-9",
                    pricing_status="unknown_model",
                )
                for i in range(30)
            ]
        return []

    write_after(tmp_path, EVENT + timedelta(hours=6), extra=unpriced)
    result = found(tmp_path, EVENT + timedelta(hours=6))
    surge = only(result, "unpriced_surge", "team=search")
    assert (surge.observed_calls, surge.expected_calls, surge.status) == (60, 0, "closed")
    assert surge.explanation.startswith("unpriced calls 60 (expected 0); model=acme-9 +60 calls (100%)")
    assert surge.volume_usd is None  # no dollars to split: they could not be priced
    assert not [a for a in result.anomalies if a.family == "cost" and a.dimension == "team"]


def test_a_rise_of_billed_calls_cut_short(tmp_path):
    def cut_short(hour, row):
        if row["team"] == "search" and EVENT <= hour < EVENT + timedelta(hours=3):
            return {**row, "error_type": "timeout"}
        return row

    write_after(tmp_path, EVENT + timedelta(hours=6), replace=cut_short)
    result = found(tmp_path, EVENT + timedelta(hours=6))
    failures = only(result, "billed_failures", "team=search")
    assert failures.start == EVENT and failures.observed_calls == 24
    assert failures.impact_usd == Decimal("2.4")  # 24 calls at the $0.10 each was billed
    assert not [a for a in result.anomalies if a.family == "cost"]  # the same spend: no cost anomaly


def test_small_dollar_blips_are_not_reported(tmp_path):
    def blip(hour):
        if hour == EVENT:  # 5 times the usual calls, at a hundredth of a cent each
            return [call(hour, "0.0001", team="search", feature="pennies") for _ in range(40)]
        return []

    write_after(tmp_path, EVENT + timedelta(hours=3), extra=blip)
    assert found(tmp_path, EVENT + timedelta(hours=3)).anomalies == []
    sensitive = replace(SETTINGS, min_impact_usd=Decimal("0.001"))
    result = found(tmp_path, EVENT + timedelta(hours=3), settings=sensitive)
    assert any(a.scope == "feature=pennies" for a in result.anomalies)


def test_an_empty_or_short_history_is_not_enough_data(tmp_path_factory, capsys):
    empty = tmp_path_factory.mktemp("empty")
    result = found(empty, EVENT)
    assert (result.enough_data, result.anomalies) == (False, [])
    write_hours(empty, at(0, 0), at(2, 0))  # two days: no baseline yet
    assert not found(empty, at(2, 0)).enough_data
    assert main(["anomalies", "--until", at(2, 0).isoformat(), "--data-dir", str(empty)]) == 0
    out = capsys.readouterr()
    assert "not enough data" in out.err and "(0 rows)" in out.out


def test_the_job_keeps_ids_updates_rows_closes_and_notifies_once(tmp_path):
    def burst(hour):
        if EVENT <= hour < EVENT + timedelta(hours=2):
            return [
                call(hour + timedelta(minutes=i), "0.10", team="search", feature="chat") for i in range(40)
            ]
        return []

    write_after(tmp_path, EVENT + timedelta(hours=6), extra=burst)
    events: list[AnomalyEvent] = []
    job = AnomalyJob(tmp_path, SETTINGS, notify=events.append)
    moments = [EVENT + timedelta(hours=1, minutes=5), EVENT + timedelta(hours=2, minutes=5)]
    clock = iter([aware(m) for m in [*moments, EVENT + timedelta(hours=6)]])
    runner = AnswerRunner(tmp_path, [Job("anomalies", 0, job.run, job.metrics)], clock=lambda: next(clock))

    def table():
        rows = connect(tmp_path).execute(
            "SELECT id, kind, dimension, value, start, \"end\", status FROM anomalies WHERE grain = 'hourly'"
        )
        return {(r[2], r[3]): r for r in rows.fetchall()}

    runner.run_due()
    first = table()[("team", "search")]
    assert first[1:] == ("spike", "team", "search", EVENT, None, "open")
    assert [(e.kind, e.dimension, e.value) for e in events].count(("spike", "team", "search")) == 1
    registry = CollectorRegistry()
    registry.register(runner)
    text = generate_latest(registry).decode()
    assert 'costspan_anomaly_open{grain="hourly",kind="spike",scope="team",value="search"} 4.' in text
    assert 'costspan_anomalies_open{kind="spike"}' in text

    runner.run_due()  # an hour later: the same anomaly, longer
    second = table()[("team", "search")]
    assert second[0] == first[0] and second[6] == "open"
    runner.run_due()  # the burst is over
    third = table()[("team", "search")]
    assert third[0] == first[0] and third[5:] == (EVENT + timedelta(hours=2), "closed")
    assert len(events) == len({e.id for e in events})  # each anomaly notified once
    assert [e.id for e in events].count(first[0]) == 1

    again = AnomalyJob(tmp_path, SETTINGS, notify=events.append)  # a restart reads what was stored
    before = len(events)
    again.run(connect(tmp_path), aware(EVENT + timedelta(hours=6)))
    assert len(events) == before and table()[("team", "search")][0] == first[0]


def search_chat_burst(hour):
    """40 calls of $0.10 by the search team's chat in the hour of EVENT."""
    if hour == EVENT:
        return [call(hour + timedelta(minutes=i), "0.10", team="search", feature="chat") for i in range(40)]
    return []


def test_the_command_prints_anomalies_with_explanations(tmp_path, capsys):
    write_after(tmp_path, EVENT + timedelta(hours=3), extra=search_chat_burst)
    until = (EVENT + timedelta(hours=3)).isoformat()
    small = ["--min-impact", "0.5", "--min-calls", "5"]  # the small dollars of a small history
    command = ["anomalies", "--since", "2d", "--by", "team", "--until", until, *small, "--format", "json"]
    assert main([*command, "--data-dir", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["scope"], r["status"]) for r in rows] == [("spike", "team=search", "closed")]
    assert rows[0]["impact_usd"] == "4" and rows[0]["explanation"].startswith("feature=chat +$4.00 (100%)")
    assert main(["anomalies", "--since", "2x", "--data-dir", str(tmp_path)]) == 2
    assert main(["anomalies", "--by", "region", "--data-dir", str(tmp_path)]) == 2
    assert "unknown dimension 'region'" in capsys.readouterr().err


def test_costspan_sql_reads_the_anomalies_table(tmp_path, capsys):
    write_after(tmp_path, EVENT + timedelta(hours=3), extra=search_chat_burst)
    AnomalyJob(tmp_path, SETTINGS).run(connect(tmp_path), aware(EVENT + timedelta(hours=3)))
    query = (
        "SELECT kind, value, impact_usd, "
        "volume_usd + tokens_per_call_usd + cache_usd + price_usd = impact_usd, contributors[1].value "
        "FROM anomalies WHERE dimension = 'team' AND grain = 'hourly'"
    )
    assert main(["sql", "--format", "csv", "--data-dir", str(tmp_path), query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["spike,search,4,True,chat"]


@pytest.mark.parametrize("seed", range(30))
def test_the_split_adds_up_exactly_to_the_change(seed):
    rnd = random.Random(seed)

    def totals(zero: str | None = None) -> np.ndarray:
        v = np.zeros(MEASURES)
        v[BILLED] = rnd.randint(1, 10_000)
        v[INPUT] = v[BILLED] * rnd.randint(1, 5000)
        v[OUTPUT] = v[BILLED] * rnd.randint(0, 800)
        v[CACHE_READ] = int(v[INPUT] * rnd.random() * 0.9)
        v[COST] = rnd.randint(1, 10**15)
        if zero == "calls":
            v[:] = 0
        elif zero == "tokens":
            v[INPUT] = v[OUTPUT] = v[CACHE_READ] = 0
        elif zero == "cost":
            v[COST] = 0
        return v

    zero = [None, "calls", "tokens", "cost"][seed % 4]
    observed, expected = totals(), totals(zero)
    if zero != "cost":
        expected[COST] += 0.25 * (seed % 3)  # a median may fall between two amounts: rounded to 1e-12 USD
    parts = decompose(observed, expected)
    change = (Decimal(int(observed[COST])) - Decimal(round(expected[COST]))) * Decimal("1E-12")
    assert parts.total == change
    assert parts.method == ("lmdi" if zero is None else "sequential")
    if zero == "calls":
        assert parts.volume == parts.total


def test_the_split_of_a_price_change_is_all_price():
    expected = np.zeros(MEASURES)
    expected[[BILLED, INPUT, OUTPUT, CACHE_READ, COST]] = (100, 100_000, 10_000, 55_000, 10**12)
    observed = expected.copy()
    observed[COST] = 3 * 10**12
    parts = decompose(observed, expected)
    assert (parts.volume, parts.tokens_per_call, parts.cache, parts.price) == (0, 0, 0, Decimal(2))
    observed = expected.copy()
    observed[CACHE_READ] = 0  # no cache reads: twice the uncached tokens, at the same cost per uncached token
    observed[COST] = 2 * 10**12
    parts = decompose(observed, expected)
    assert (parts.volume, parts.tokens_per_call, parts.cache, parts.price) == (0, 0, 1, 0)


def test_a_day_of_higher_spend_is_a_daily_anomaly_against_the_same_weekday(tmp_path):
    def busier(hour):
        if EVENT <= hour < at(DAYS + 1, 0):  # the rest of the day: the team's calls twice over
            return [call(hour + timedelta(minutes=i), "0.10", team="ads", feature="chat") for i in range(12)]
        return []

    write_after(tmp_path, at(DAYS + 1, 3), extra=busier)
    result = found(tmp_path, at(DAYS + 1, 3))
    daily = [a for a in result.anomalies if a.grain == "daily" and a.scope == "team=ads"]
    assert [(a.start, a.end, a.baseline) for a in daily] == [(at(DAYS, 0), None, "same day of week")]
    assert daily[0].impact_usd > Decimal("10") and daily[0].status == "open"


def test_an_anomaly_back_within_hours_of_its_end_is_the_same_one_notified_once():
    def row(start_hour, end_hour, status):
        start = at(DAYS, start_hour)
        end = at(DAYS, end_hour)
        return Anomaly(
            id=anomaly_id("hourly", "cost", "team", "search", start),
            kind="level_shift",
            grain="hourly",
            dimension="team",
            value="search",
            start=start,
            end=end if status == "closed" else None,
            last_seen=end,
            status=status,
            expected_usd=Decimal(1),
            observed_usd=Decimal(3),
            impact_usd=Decimal(2),
            expected_calls=10.0,
            observed_calls=10,
            score=6.0,
            baseline="same hour of week",
            explanation="",
            detected_at=end,
        )

    # a run after a restart finds yesterday's dip and this morning's return: one anomaly, open, notified
    rows, opened = merge([], [row(-14, 1, "closed"), row(8, 10, "open")], at(DAYS, 10))
    assert [(r.start, r.status) for r in rows] == [(at(DAYS, -14), "open")] and opened == rows
    # the next runs see it closed, then back 5 hours later: still the same one, not notified again
    rows, opened = merge(rows, [row(8, 11, "closed")], at(DAYS, 12))
    rows, opened = merge(rows, [row(16, 17, "open")], at(DAYS, 17))
    assert [(r.id, r.start, r.status) for r in rows] == [(opened_id := rows[0].id, at(DAYS, -14), "open")]
    assert opened == [] and opened_id == anomaly_id("hourly", "cost", "team", "search", at(DAYS, -14))
    # back a day later: a new one
    rows, opened = merge(rows, [row(17, 18, "closed"), row(40, 41, "open")], at(DAYS, 41))
    assert [r.status for r in rows] == ["closed", "open"] and [o.start for o in opened] == [at(DAYS, 40)]


def test_history_stored_after_the_job_began_is_read_and_scanned(tmp_path_factory):
    """A collector that started on an empty directory, then got weeks of history at once (a backfill): the
    hours already read have more calls now, so they are read again and the anomaly in them is found."""
    history = tmp_path_factory.mktemp("late")
    job = AnomalyJob(history, SETTINGS)
    now = aware(at(DAYS, 20))
    con = connect(history)
    job.run(con, now - timedelta(hours=2))  # nothing stored yet
    con.close()
    assert job.rows == []
    write_history(history, EVENT)
    write_after(history, at(DAYS, 20), extra=lambda hour: [call(hour, "9.00", team="search")] * 3)
    con = connect(history)
    job.run(con, now)
    con.close()
    assert any(a.scope == "team=search" and a.start == EVENT for a in job.rows), [
        (a.kind, a.scope, a.start) for a in job.rows
    ]
    assert job.cache.reads >= 1
