"""``kopilka analytics liability --snapshot`` and ``--history`` on a real SQLite file: two
purchases imported (25 points that never expire, a point worth 100 cents), snapshots taken
on two days (one of them twice), the history as a table, CSV and JSON, and bad input as one
line."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kopilka.kit.clock import clock
from tests.fixtures.cli import kopilka

NOW = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
SETTINGS = """money_currency: USD
earning: [{id: base, type: per_amount, points: 1, per: 100}]
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


def liability(workdir: Path, *args: str, at: datetime = NOW) -> str:
    with clock.frozen(at):
        return kopilka(workdir, "analytics", "liability", *args).stdout


def test_snapshots_are_taken_and_read_back(workdir: Path) -> None:
    line = liability(workdir, "--snapshot")
    assert line == (
        "liability of 2026-02-01 stored for points; points: 25 outstanding, 2,500 after breakage\n"
    )
    liability(workdir, "--snapshot", at=NOW + timedelta(hours=2))  # the same day: replaced
    liability(workdir, "--snapshot", at=NOW + timedelta(days=1))
    days = ("--history", "--from", "2026-01-31", "--to", "2026-02-02")

    lines = liability(workdir, *days, "--csv").splitlines()
    assert lines == [
        "day,currency,taken_at,outstanding_points,pending_points,overdue_points,"
        "outstanding_value,breakage_rate,liability_after_breakage",
        "2026-02-01,points,2026-02-01T11:00:00+00:00,25,0,0,2500,,2500",
        "2026-02-02,points,2026-02-02T09:00:00+00:00,25,0,0,2500,,2500",
    ]
    answer = json.loads(liability(workdir, *days, "--currency", "points", "--json"))
    assert (answer["start"], answer["end"], answer["money_currency"]) == (
        "2026-01-31",
        "2026-02-02",
        "USD",
    )
    assert [(s["day"], s["outstanding_value"]) for s in answer["snapshots"]] == [
        ("2026-02-01", 2_500),
        ("2026-02-02", 2_500),
    ]
    table = liability(workdir, *days)
    assert "Liability by day, 2026-01-31 – 2026-02-02" in table and "2026-02-02" in table
    empty = liability(workdir, "--history", "--from", "2025-01-01", "--to", "2025-01-31")
    assert empty == "no liability snapshots between 2025-01-01 and 2025-01-31\n"


REFUSED = [
    (("--history", "--to", "2026-02-01"), "--from is needed with --history"),
    (("--history", "--from", "2026-02-01"), "--to is needed with --history"),
    (("--history", "--from", "2026-2-1", "--to", "2026-02-01"), "--from: '2026-2-1'"),
    (("--history", "--from", "2026-02-03", "--to", "2026-02-01"), "is after to"),
    (("--history", "--from", "2020-01-01", "--to", "2026-02-01"), "at most 1830 days"),
    (("--history", "--from", "2026-02-01", "--to", "2026-02-01", "--currency", "bonus"),
     "no currency 'bonus'"),
    (("--history", "--cohorts", "3", "--from", "2026-02-01", "--to", "2026-02-01"),
     "--cohorts does not go with --history"),
    (("--snapshot", "--json"), "--json does not go with --snapshot"),
    (("--snapshot", "--history"), "--history does not go with --snapshot"),
    (("--from", "2026-02-01"), "--from does not go with the report"),
]  # fmt: skip


def test_bad_options_exit_with_one_line_and_store_nothing(workdir: Path) -> None:
    for args, message in REFUSED:
        with clock.frozen(NOW):
            done = kopilka(workdir, "analytics", "liability", *args, check=False)
        assert done.returncode == 1, (args, done.stdout)
        assert message in done.stderr, (args, done.stderr)
        assert done.stderr.strip().count("\n") == 0, done.stderr
    history = ("--history", "--from", "2026-01-01", "--to", "2026-12-31", "--json")
    assert json.loads(liability(workdir, *history))["snapshots"] == []
