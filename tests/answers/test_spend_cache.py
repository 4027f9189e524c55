"""The budgets' spend kept between evaluations gives the figures of a fresh load: as the hours pass, as
windows move into hours kept whole, as calls arrive, and for calls stored late."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from costspan.collector.answers.budget_status import SpendIndex, boundaries, status
from costspan.collector.answers.budgets import Budget
from costspan.collector.answers.spend_cache import SpendCache
from costspan.exporters.duckdb_views import connect
from tests.support.stored_calls import call, write_calls

START = datetime(2026, 3, 1)
BUDGETS = [
    Budget("org", {}, Decimal(100), "month"),
    Budget("search", {"team": "search"}, Decimal(10), "day", timezone="Asia/Kolkata"),
    Budget(
        "alice", {"team": "search", "user_id": "alice"}, Decimal(1), "rolling", window=timedelta(minutes=90)
    ),
    Budget("gold", {"tag.tier": "gold"}, Decimal(5), "week"),
]


def some_calls(rng: random.Random, since: datetime, minutes: int, n: int) -> list[dict]:
    return [
        call(
            since + timedelta(minutes=rng.randrange(minutes), seconds=rng.randrange(60)),
            str(Decimal(rng.randrange(1, 10_000)) / 1000),
            team=rng.choice(["search", "ads"]),
            user_id=rng.choice(["alice", "bob"]),
            tags={"tier": rng.choice(["gold", "free"])},
        )
        for _ in range(n)
    ]


def figures(index: SpendIndex, now: datetime) -> list[tuple]:
    out = []
    for budget in BUDGETS:
        s = status(budget, index, now)
        out.append((budget.name, s.spent, s.calls, tuple(s.burn_per_hour.values()), s.projected))
    return out


def test_the_kept_spend_gives_the_figures_of_a_fresh_load(tmp_path):
    rng = random.Random(7)
    write_calls(tmp_path, some_calls(rng, START, 9 * 24 * 60, 400))
    cache = SpendCache()
    now = datetime(2026, 3, 10, 0, 7, 30, tzinfo=UTC)
    for step in range(12):
        # 17 minutes on each turn: hours pass, windows move into hours kept whole
        now += timedelta(minutes=17)
        write_calls(tmp_path, some_calls(rng, now.replace(tzinfo=None) - timedelta(minutes=17), 17, 5))
        marks = [t for b in BUDGETS for t in boundaries(b, now)]
        con = connect(tmp_path)
        kept = cache.index(con, [b.scope for b in BUDGETS], now, marks)
        fresh = SpendIndex.load(con, [b.scope for b in BUDGETS], now, marks)
        assert figures(kept, now) == figures(fresh, now), step
    # at the first evaluation and once an hour after it (the 5th and 9th turns): the rest were small queries
    assert cache.loads == 3

    # a call that started two hours ago reaches the store only now: its hour is read again at once
    late = now.replace(tzinfo=None) - timedelta(hours=2)
    write_calls(tmp_path, [call(late, "50", team="search", user_id="alice")])
    now += timedelta(minutes=1)
    marks = [t for b in BUDGETS for t in boundaries(b, now)]
    con = connect(tmp_path)
    kept = cache.index(con, [b.scope for b in BUDGETS], now, marks)
    assert figures(kept, now) == figures(SpendIndex.load(con, [b.scope for b in BUDGETS], now, marks), now)
    assert cache.loads == 3  # without loading the whole span again
