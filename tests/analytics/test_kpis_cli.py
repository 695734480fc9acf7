"""``kopilka analytics kpis``, ``kpi-cohorts`` and ``rebuild-kpis`` on a SQLite file holding
the hand-computed program of ``kpis_dataset``: the table, CSV and JSON, and bad input as one
readable line."""

import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kopilka.app import create_app
from kopilka.db import make_engine
from tests.analytics.kpis_dataset import build
from tests.conftest import Api, make_key, make_program
from tests.fixtures.cli import kopilka

MARCH = ("--from", "2026-03-01", "--to", "2026-03-31")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kpis")


@pytest.fixture(scope="module")
async def slug(folder: Path) -> AsyncIterator[str]:
    """The program, built once for the module's commands (which only read it, or rebuild
    its aggregates to the same figures)."""
    kopilka(folder, "db", "upgrade")
    engine = make_engine(f"sqlite+aiosqlite:///{folder / 'k.db'}")
    try:
        transport = httpx.ASGITransport(app=create_app(engine=engine))
        async with httpx.AsyncClient(transport=transport, base_url="http://kopilka.test") as client:
            seed = await make_program(engine)
            data = await build(engine, Api(client, await make_key(engine, seed, "admin")))
        yield data.program.slug
    finally:
        await engine.dispose()


def test_the_table_by_tier(folder: Path, slug: str) -> None:
    shown = kopilka(folder, "analytics", "kpis", "--program", slug, *MARCH, "--by", "tier")
    lines = shown.stdout.splitlines()
    header = next(line for line in lines if "KPI" in line and "base" in line)
    assert header.index("total") < header.index("base") < header.index("silver")
    assert "no member" in header
    check = next(line for line in lines if "average check  " in line)
    # total, base, silver, no member (minor units).
    assert check.replace("│", " ").split()[-4:] == ["130,000", "82,500", "300,000", "150,000"]
    share = next(line for line in lines if "active share 30d" in line)
    assert "75.0 %" in share and "66.7 %" in share


def test_csv_and_json(folder: Path, slug: str) -> None:
    text = kopilka(folder, "analytics", "kpis", "--program", slug, *MARCH, "--by", "store", "--csv")
    rows = list(csv.DictReader(io.StringIO(text.stdout)))
    assert [(r["kind"], r["group"], r["purchases"], r["revenue"]) for r in rows] == [
        ("total", "", "6", "780000"),
        ("store", "s1", "3", "400000"),
        ("store", "s2", "3", "380000"),
    ]
    assert rows[1]["participants"] == ""  # not a figure of a store
    report = json.loads(
        kopilka(folder, "analytics", "kpis", "--program", slug, *MARCH, "--json").stdout
    )
    assert report["total"]["conversion"] == 5 / 6
    assert report["total"]["points_expired"] == 1_800
    cohorts = json.loads(
        kopilka(
            folder,
            "analytics",
            "kpi-cohorts",
            "--program",
            slug,
            "--from",
            "2026-01-01",
            "--to",
            "2026-04-30",
            "--json",
        ).stdout
    )
    assert [c["buyers"] for c in cohorts["cohorts"]] == [[1, 0, 1, 0], [1, 1, 1], [2, 0], [0]]


def test_a_rebuild_changes_no_figure(folder: Path, slug: str) -> None:
    before = kopilka(folder, "analytics", "kpis", "--program", slug, *MARCH, "--json").stdout
    done = kopilka(folder, "analytics", "rebuild-kpis", "--program", slug)
    assert "rebuilt in full" in done.stdout
    after = kopilka(folder, "analytics", "kpis", "--program", slug, *MARCH, "--json").stdout
    assert json.loads(after)["total"] == json.loads(before)["total"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--by", "week"), "--by: 'week' is not one of tier, store, month, channel"),
        (("--from", "1 March"), "--from: '1 March' is not a date (YYYY-MM-DD)"),
        (("--from", "2026-03-31", "--to", "2026-03-01"), "from (2026-03-31) is after to"),
        (("--csv", "--json"), "--csv and --json: choose one"),
    ],
)
def test_bad_input_is_one_readable_line(
    folder: Path, slug: str, args: tuple[str, ...], message: str
) -> None:
    result = kopilka(folder, "analytics", "kpis", "--program", slug, *args, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0
