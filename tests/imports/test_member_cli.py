"""``kopilka import members`` as a user runs it, on a SQLite file."""

from pathlib import Path

import pytest

from tests.fixtures.cli import kopilka

HEADER = (
    "external_id,phone,name,registered_at,tags,consent.sms.marketing,consent.sms.marketing.at,"
    "points,tier"
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "p.yaml").write_text(
        "money_currency: RUB\n"
        "tiers: {levels: [{id: base, name: Base}, {id: gold, name: Gold, qualify: {spend: 100}}]}\n"
    )
    kopilka(
        tmp_path, "program", "create", "--slug", "club", "--name", "Club", "--settings", "p.yaml"
    )
    return tmp_path


def test_import_members_reports_bad_rows_and_runs_again_idempotently(workdir: Path) -> None:
    (workdir / "members.csv").write_text(
        f"{HEADER}\n"
        "M-1,+79167770001,Anna,2021-04-01,moved,granted,2021-04-01,500@2099-12-31;20,gold\n"
        "M-2,+79167770002,Boris,,,,,,\n"
        "M-3,12,Carl,,,,,,\n"
        "M-4,,Dina,,,,,-5,\n"
    )
    dry = kopilka(workdir, "import", "members", "members.csv", "--dry-run", check=False)
    assert dry.returncode == 1
    assert "would import 2 members" in dry.stdout
    first = kopilka(workdir, "import", "members", "members.csv", check=False)
    assert first.returncode == 1
    assert "imported 2 members, 0 already imported, 2 failed" in first.stdout
    assert "opening balances: 520 points" in first.stdout
    assert "line 4: phone:" in first.stderr and "line 5: points:" in first.stderr
    again = kopilka(workdir, "import", "members", "members.csv", check=False)
    assert "imported 0 members, 2 already imported, 2 failed" in again.stdout
    assert "opening balances" not in again.stdout
    verified = kopilka(workdir, "ledger", "verify")
    assert "FAIL" not in verified.stdout
    shown = kopilka(workdir, "members", "show", "M-1")
    assert '"name": "Anna"' in shown.stdout


def test_a_header_it_cannot_read_is_one_line(workdir: Path) -> None:
    (workdir / "bad.csv").write_text("external_id,shoe\nM-1,42\n")
    result = kopilka(workdir, "import", "members", "bad.csv", check=False)
    assert result.returncode == 1
    assert "unknown column 'shoe'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
