"""``kopilka analytics liability`` and ``kopilka analytics experiment`` on a real SQLite
file: two purchases imported (25 points that never expire, a point worth 100 cents), then
the reports as a table, CSV and JSON, and bad input as one line."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kopilka.kit.clock import clock
from tests.fixtures.cli import kopilka

NOW = datetime(2026, 2, 1, tzinfo=UTC)
SETTINGS = """money_currency: USD
earning: [{id: base, type: per_amount, points: 1, per: 100}]
experiments:
  - name: welcome
    arms: [{name: test, percent: 50}, {name: control, percent: 50}]
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "shop.yaml").write_text(SETTINGS)
    kopilka(tmp_path, "program", "create", "--slug", "shop", "--name", "Shop", "--settings",
            "shop.yaml")  # fmt: skip
    (tmp_path / "p.csv").write_text(
        "external_id,member,occurred_at,store,channel,currency,sku,name,category,quantity,"
        "unit_price,discount\n"
        "p1,c1,2026-01-05,s1,pos,USD,A,Apple,fruit,1,1500,0\n"
        "p2,c2,2026-01-06,s1,pos,USD,C,Cake,bakery,1,1000,0\n"
    )
    with clock.frozen(datetime(2026, 1, 10, tzinfo=UTC)):
        kopilka(tmp_path, "import", "purchases", "p.csv")
    return tmp_path


def test_liability_and_experiment_reports_and_their_errors(workdir: Path) -> None:
    check_liability(workdir)
    check_experiment(workdir)


def check_liability(workdir: Path) -> None:
    with clock.frozen(NOW):
        table = kopilka(workdir, "analytics", "liability")
        lines = kopilka(workdir, "analytics", "liability", "--csv").stdout.splitlines()
        answer = json.loads(kopilka(workdir, "analytics", "liability", "--json").stdout)
        both = kopilka(workdir, "analytics", "liability", "--csv", "--json", check=False)
        bad = kopilka(workdir, "analytics", "liability", "--cohorts", "0", check=False)
    assert "25 outstanding" in table.stdout and "2,500 (minor units of USD)" in table.stdout
    assert "expected breakage none" in table.stdout
    assert lines[0].startswith("currency,row,month,points,value")
    assert "points,expiry,never,25,2500,,,,,," in lines
    assert "points,cohort,2026-01,,,25,0,0,25,false," in lines
    points = next(c for c in answer["currencies"] if c["currency"] == "points")
    assert (points["outstanding_points"], points["outstanding_value"]) == (25, 2_500)
    assert points["liability_after_breakage"] == 2_500
    assert both.returncode == 1 and "choose one" in both.stderr
    assert bad.returncode == 1 and "cohorts must be between 1 and 120" in bad.stderr


def check_experiment(workdir: Path) -> None:
    with clock.frozen(NOW):
        unstarted = kopilka(workdir, "analytics", "experiment", "welcome", check=False)
        shown = kopilka(
            workdir, "analytics", "experiment", "welcome", "--from", "2026-01-01T00:00:00+03:00"
        )
        answer = json.loads(
            kopilka(
                workdir, "analytics", "experiment", "welcome", "--from", "2026-01-01T00:00:00Z",
                "--json",
            ).stdout
        )  # fmt: skip
        unknown = kopilka(workdir, "analytics", "experiment", "nope", check=False)
        naive = kopilka(
            workdir, "analytics", "experiment", "welcome", "--from", "2026-01-01", check=False
        )
    # An import records no assignment: the experiment has no start of its own yet.
    assert unstarted.returncode == 1 and "has not started" in unstarted.stderr
    assert "give from" in unstarted.stderr
    assert "welcome (rules, every member of each arm counted)" in shown.stdout
    assert "2025-12-31 21:00 – 2026-02-01 00:00 UTC" in shown.stdout
    arms = answer["analysis"]["arms"]
    assert sum(a["members"] for a in arms) == 2 and sum(a["purchases"] for a in arms) == 2
    assert sum(a["revenue"] for a in arms) == 2_500
    assert {w["code"] for w in answer["analysis"]["warnings"]} >= {"too_few_members"}
    assert unknown.returncode == 1 and "no experiment 'nope'" in unknown.stderr
    assert naive.returncode == 1 and "--from" in naive.stderr and "no offset" in naive.stderr
