"""Budgets in the collector's configuration: read into Budget, parents declared or inferred, each mistake a
configuration error naming file, line and key; `costspan config check` warns of children over their parent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from costspan.collector.answers.budgets import DEFAULT_THRESHOLDS, Budget, budgets_from_config
from costspan.collector.config import ConfigFileError, load_config

COSTSPAN = Path(sys.executable).with_name("costspan")

HIERARCHY = """\
budgets:
  - name: org
    amount: 10000
    period: month
    timezone: Europe/Berlin
  - name: search
    scope: {team: search}
    amount: 4000.50
    period: month
    timezone: Europe/Berlin
    thresholds: [80, 100, 120]
  - name: search-alice
    scope: {team: search, user_id: alice}
    amount: 500
    period: month
    timezone: Europe/Berlin
  - name: gold-daily
    scope: {tag.tier: gold, customer_id: 12345}
    amount: "25"
    period: day
  - name: support-weekly
    scope: {team: support}
    parent: org
    amount: 1000
    period: week
  - name: last-day
    amount: 600
    period: {rolling: 24h}
  - name: billing
    amount: 3000
    period: month
    reset_day: 15
"""


def write(tmp_path: Path, text: str, name: str = "costspan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_budgets_are_read_with_their_parents(tmp_path):
    config = load_config(write(tmp_path, HIERARCHY))
    budgets = {b.name: b for b in budgets_from_config(config)}
    assert list(budgets) == [
        "org",
        "search",
        "search-alice",
        "gold-daily",
        "support-weekly",
        "last-day",
        "billing",
    ]
    org = budgets["org"]
    expected = Budget("org", {}, Decimal(10000), "month", 1, None, "Europe/Berlin", DEFAULT_THRESHOLDS, None)
    assert org == expected
    assert org.where == f"{tmp_path / 'costspan.yaml'}:2"
    search = budgets["search"]
    assert search.amount == Decimal("4000.50") and isinstance(search.amount, Decimal)
    assert search.thresholds == (Decimal(80), Decimal(100), Decimal(120))
    assert search.parent == "org"  # inferred: the same period, the organisation's scope
    assert budgets["search-alice"].parent == "search"  # the largest proper part of its scope
    assert budgets["gold-daily"].scope == {"tag.tier": "gold", "customer_id": "12345"}
    assert budgets["gold-daily"].parent is None  # no daily budget above it
    assert budgets["support-weekly"].parent == "org"  # declared, over another period
    assert budgets["last-day"].window == timedelta(hours=24) and budgets["last-day"].period == "rolling"
    assert budgets["billing"].reset_day == 15 and budgets["billing"].parent is None  # another month
    assert config.budgets_interval_s == 60.0


def test_budgets_from_a_file_the_configuration_names(tmp_path):
    items = HIERARCHY.split("\n", 1)[1]
    write(tmp_path, textwrap.dedent(items), "budgets.yaml")
    config = load_config(write(tmp_path, "budgets: {file: budgets.yaml, interval: 30s}\n"))
    assert [b.name for b in config.budgets][:3] == ["org", "search", "search-alice"]
    assert config.budgets[0].where == f"{(tmp_path / 'budgets.yaml').resolve()}:1"
    assert config.budgets_interval_s == 30.0
    inline_text = "budgets:\n  interval: 2m\n  items:\n    - {name: a, amount: 1, period: day}\n"
    inline = load_config(write(tmp_path, inline_text))
    assert inline.budgets_interval_s == 120.0 and inline.budgets[0].name == "a"


def budget_text(**fields: str) -> str:
    base = {"name": "b", "amount": "100", "period": "month"}
    base.update(fields)
    lines = "".join(f"    {k}: {v}\n" for k, v in base.items() if v != "OMIT")
    return "data_dir: x\nbudgets:\n  - name: ok\n    amount: 5\n    period: day\n  -" + lines[3:]


@pytest.mark.parametrize(
    ("fields", "line", "fragment"),
    [
        ({"amount": "-5"}, 7, "budgets[1].amount: more than 0 USD"),
        ({"amount": "0"}, 7, "budgets[1].amount: more than 0 USD"),
        ({"amount": "lots"}, 7, "budgets[1].amount: a number of USD"),
        ({"amount": ".nan"}, 7, "budgets[1].amount: a number of USD"),
        ({"amount": "true"}, 7, "budgets[1].amount: a number of USD"),
        ({"amount": "OMIT"}, 6, "budgets[1].amount: required"),
        ({"amount": "1e16"}, 7, "budgets[1].amount: less than 1,000,000,000,000,000 USD"),
        ({"amount": "0.0000000000001"}, 7, "budgets[1].amount: less than"),
        ({"thresholds": "[33.33333]"}, 9, "to 4 decimal places"),
        ({"scope": "{region: eu}"}, 9, "budgets[1].scope.region: unknown dimension 'region'"),
        ({"scope": "{team: [a, b]}"}, 9, "budgets[1].scope.team: a value"),
        ({"scope": "team"}, 9, "budgets[1].scope: a mapping"),
        ({"thresholds": "[50, 1001]"}, 9, "thresholds: each a percentage above 0 and at most 1000"),
        ({"thresholds": "[0]"}, 9, "budgets[1].thresholds"),
        ({"thresholds": "[]"}, 9, "budgets[1].thresholds: a list"),
        ({"period": "fortnight"}, 8, "period: day, week, month or {rolling: 24h}; got 'fortnight'"),
        ({"period": "rolling"}, 8, "budgets[1].period: day, week, month"),
        ({"period": "{rolling: 1y}"}, 8, "budgets[1].period.rolling: a duration"),
        ({"period": "{rolling: 0m}"}, 8, "budgets[1].period.rolling: from 1m to 366d"),
        ({"period": "OMIT"}, 6, "budgets[1].period: required"),
        ({"reset_day": "31"}, 9, "budgets[1].reset_day: a day of the month from 1 to 28"),
        ({"reset_day": "0"}, 9, "budgets[1].reset_day"),
        ({"period": "day", "reset_day": "2"}, 9, "budgets[1].reset_day: only a month has a reset day"),
        ({"timezone": "Mars/Olympus"}, 9, "budgets[1].timezone: an IANA time zone"),
        ({"timezone": "../../etc/passwd"}, 9, "budgets[1].timezone: an IANA time zone"),
        ({"name": "ok"}, 6, "budgets[1].name: 'ok' is declared twice"),
        ({"name": "OMIT"}, 6, "budgets[1].name: required"),
        ({"parent": "nobody"}, 9, "budget 'b': parent 'nobody' is not declared"),
        ({"parent": "b"}, 9, "budget 'b': parents form a cycle: b -> b"),
        ({"colour": "red"}, 9, "budgets[1].colour: unknown key"),
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path, fields, line, fragment):
    path = write(tmp_path, budget_text(**fields))
    with pytest.raises(ConfigFileError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}:{line}: "), str(exc.value)
    assert fragment in str(exc.value)


def test_a_cycle_of_declared_parents_and_a_parent_that_is_no_wider(tmp_path):
    cycle = """\
    budgets:
      - {name: a, scope: {team: x}, amount: 1, period: day, parent: b}
      - {name: b, scope: {team: x, user_id: y}, amount: 1, period: day, parent: a}
    """
    with pytest.raises(ConfigFileError, match=r":2: budgets: budget 'a': parents form a cycle: a -> b -> a"):
        load_config(write(tmp_path, cycle))
    narrower = """\
    budgets:
      - {name: a, scope: {team: x}, amount: 1, period: day}
      - {name: b, scope: {team: y}, amount: 1, period: day, parent: a}
    """
    with pytest.raises(ConfigFileError, match=r":3: .*parent 'a' must have a scope that is a proper part"):
        load_config(write(tmp_path, narrower))


def test_mistakes_in_a_named_file_name_that_file(tmp_path):
    items = "- name: a\n  amount: 1\n  period: day\n- name: b\n  amount: -1\n  period: day\n"
    write(tmp_path, items, "b.yaml")
    with pytest.raises(ConfigFileError) as exc:
        load_config(write(tmp_path, "budgets: {file: b.yaml}\n"))
    assert str(exc.value).startswith(f"{(tmp_path / 'b.yaml').resolve()}:5: budgets[1].amount")
    with pytest.raises(ConfigFileError, match=r"costspan.yaml:1: budgets.file: .*cannot read"):
        load_config(write(tmp_path, "budgets: {file: missing.yaml}\n"))
    with pytest.raises(ConfigFileError, match=r"costspan.yaml:1: budgets: either file"):
        load_config(write(tmp_path, "budgets: {interval: 5s}\n"))
    with pytest.raises(ConfigFileError, match=r"costspan.yaml:1: budgets: a list of budgets, or"):
        load_config(write(tmp_path, "budgets: 5\n"))


def test_config_check_warns_where_children_add_up_to_more_than_their_parent(tmp_path):
    over = HIERARCHY.replace("amount: 500\n", "amount: 6500\n")  # search-alice over search
    path = write(tmp_path, over)
    out = subprocess.run([str(COSTSPAN), "config", "check", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout
    warnings = [line for line in out.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"costspan config: {path}:6: warning: budget 'search' (4000.50 USD per month, Europe/Berlin) is less "
        "than its children's total 6500 USD: search-alice (6500)"
    ]
    fine_path = write(tmp_path, HIERARCHY)
    fine = subprocess.run([str(COSTSPAN), "config", "check", str(fine_path)], capture_output=True)
    assert fine.returncode == 0 and b"warning" not in fine.stderr
