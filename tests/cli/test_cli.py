"""The ``kopilka`` command as a user runs it, on a real SQLite file: the commands in this
process, and the console script itself as a real process."""

from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import require_data
from tests.fixtures.cli import kopilka, kopilka_process

SHARED_CDNOW = Path(__file__).resolve().parents[3] / "shared" / "data" / "cdnow"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    kopilka(tmp_path, "db", "upgrade")
    (tmp_path / "usd.yaml").write_text(
        "money_currency: USD\nearning: [{id: base, type: per_amount, points: 1, per: 100}]\n"
    )
    kopilka(
        tmp_path, "program", "create", "--slug", "shop", "--name", "Shop", "--settings", "usd.yaml"
    )
    return tmp_path


def test_keys_members_and_verify(workdir: Path) -> None:
    key = kopilka(workdir, "keys", "create", "--scope", "pos").stdout.strip()
    assert key.startswith("kp_")
    bad = kopilka(workdir, "keys", "create", "--scope", "root", check=False)
    assert bad.returncode == 1 and "scopes must be among" in bad.stderr
    added = kopilka(
        workdir,
        "members",
        "add",
        "--name",
        "Anna",
        "--phone",
        "+79161112233",
        "--external-id",
        "A-1",
    )
    assert "+79161112233" in added.stdout
    shown = kopilka(workdir, "members", "show", "A-1")
    assert '"name": "Anna"' in shown.stdout
    duplicate = kopilka(workdir, "members", "add", "--external-id", "A-1", check=False)
    assert duplicate.returncode == 1
    assert duplicate.stderr.strip().count("\n") == 0  # one readable line
    assert "already registered" in duplicate.stderr
    assert "ok" in kopilka(workdir, "ledger", "verify").stdout


def test_bad_settings_file_is_one_readable_line(workdir: Path) -> None:
    (workdir / "bad.yaml").write_text("earning: [{id: base, type: per_amount, per: 0}]\n")
    result = kopilka(
        workdir,
        "program",
        "create",
        "--slug",
        "x",
        "--name",
        "X",
        "--settings",
        "bad.yaml",
        check=False,
    )
    assert result.returncode == 1
    assert "earning.0" in result.stderr and "per" in result.stderr


def test_csv_import_reports_bad_rows_and_imports_only_if_asked(workdir: Path) -> None:
    (workdir / "p.csv").write_text(
        "external_id,member,occurred_at,store,channel,currency,sku,name,category,quantity,"
        "unit_price,discount\n"
        "p1,c1,2026-01-05,s1,pos,USD,A,Apple,fruit,2,150,0\n"
        "p1,c1,2026-01-05,s1,pos,USD,B,Bread,bakery,1,12.50,0\n"
        "p2,c2,2026-01-06,s1,pos,USD,A,Apple,fruit,x,150,0\n"
        "p3,c2,2026-01-07,s1,pos,USD,C,Cake,bakery,1,1000,0\n"
    )
    refused = kopilka(workdir, "import", "purchases", "p.csv", check=False)
    assert refused.returncode == 1 and "line 4" in refused.stderr
    assert "nothing imported" in refused.stderr
    done = kopilka(workdir, "import", "purchases", "p.csv", "--skip-bad")
    assert "imported 2 purchases" in done.stdout and "1 failed" in done.stdout
    assert "earned 25 points" in done.stdout  # 15.50 $ → 15, 10 $ → 10
    again = kopilka(workdir, "import", "purchases", "p.csv", "--skip-bad")
    assert "imported 0 purchases, 2 already there" in again.stdout


def test_jobs_run_and_report(workdir: Path) -> None:
    for job in ("expire", "release-pending", "release-holds"):
        result = kopilka(workdir, "jobs", job, "--as-of", "2026-12-31")
        assert "processed" in result.stdout
    bad = kopilka(workdir, "jobs", "expire", "--as-of", "yesterday", check=False)
    assert bad.returncode != 0


def test_demo_builds_a_verified_program(tmp_path: Path) -> None:
    result = kopilka(
        tmp_path,
        "demo",
        "--no-serve",
        "--members",
        "60",
        "--days",
        "40",
        "--database",
        str(tmp_path / "demo.db"),
    )
    assert "ledger and gift cards verified" in result.stdout
    assert "points issued" in result.stdout and "API key (admin): kp_" in result.stdout
    # The demo program's rules fire on its simulated history.
    by_rule = result.stdout.split("points earned by rule:")[1].split("\n\n")[0]
    for rule in ("base", "welcome", "happy-hours"):
        assert rule in by_rule, by_rule
    assert "boost" in result.stdout.split("benefits granted:")[1]
    # Shoppers redeem the coupons the welcome rule gave them and pay with points.
    used = result.stdout.split("coupon codes issued / used")[1].split("/")[1].split("(")[0]
    assert int(used.strip().replace(",", "")) > 0
    paying = result.stdout.split("purchases paid partly with points")[1].split("(")[0]
    assert int(paying.strip(" │|").replace(",", "")) > 0


@pytest.mark.slow
def test_whole_cdnow_log_imports_with_the_points_computed_independently(workdir: Path) -> None:
    master = SHARED_CDNOW / "CDNOW_master.txt"
    require_data(master)
    expected = 0
    for line in master.read_text().splitlines():
        fields = line.split()
        if not fields or not fields[0].isdigit():
            continue
        cents = int(Decimal(fields[-1]) * 100)
        expected += cents // 100  # 1 point per full dollar, floor, per purchase
    result = kopilka(workdir, "import", "purchases", str(master))
    assert "imported 69659 purchases" in result.stdout
    assert f"earned {expected:,} points" in result.stdout
    assert "ok" in kopilka(workdir, "ledger", "verify").stdout


def test_plain_database_urls_get_the_async_driver(tmp_path: Path) -> None:
    """A URL as other tools write it (``sqlite:///…``) works; the async driver is implied."""
    plain = f"sqlite:///{tmp_path / 'plain.db'}"
    upgraded = kopilka(tmp_path, "db", "upgrade", "--database-url", plain)
    assert "sqlite+aiosqlite:///" in upgraded.stdout
    assert (tmp_path / "plain.db").stat().st_size > 0


def test_program_simulate_replays_history_under_a_draft(workdir: Path) -> None:
    (workdir / "log.txt").write_text(
        "00001 20250101 1 10.00\n00001 20250301 2 20.50\n00002 20250105 1 7.99\n"
    )
    kopilka(workdir, "import", "purchases", "log.txt")
    (workdir / "draft.yaml").write_text(
        "money_currency: USD\nearning: [{id: base, type: per_amount, points: 3, per: 100}]\n"
        "rules:\n  - id: second-visit\n    conditions: [{type: nth_purchase, n: 2}]\n"
        "    effects: [{type: points, amount: 50}]\n"
    )
    out = kopilka(workdir, "program", "simulate", "draft.yaml", "--since", "2024-12-01").stdout
    assert "3 purchases since 2024-12-01 replayed" in out
    assert "points: 37 → 161 (liability change +124)" in out  # 10 + 20 + 7; 3× that + 50
    report = kopilka(
        workdir, "program", "simulate", "draft.yaml", "--since", "2024-12-01", "--json"
    ).stdout
    assert '"members_affected": 2' in report
    bad = kopilka(workdir, "program", "simulate", "missing.yaml", check=False)
    assert bad.returncode == 1 and "cannot read missing.yaml" in bad.stderr


def test_jobs_birthdays_from_the_command_line(workdir: Path) -> None:
    none = kopilka(workdir, "jobs", "birthdays", "--date", "2027-02-28").stdout
    assert "no rules on the birthday trigger" in none
    (workdir / "gift.yaml").write_text(
        "money_currency: USD\nearning: [{id: base, type: per_amount, points: 1, per: 100}]\n"
        "rules: [{id: gift, trigger: birthday, effects: [{type: points, amount: 300}]}]\n"
    )
    kopilka(workdir, "program", "publish", "gift.yaml")
    kopilka(workdir, "members", "add", "--name", "Ann", "--external-id", "ann", check=False)
    out = kopilka(workdir, "jobs", "birthdays", "--date", "2027-02-28").stdout
    assert "birthdays: 0 members, 0 points earned" in out  # nobody was born that day
    bad = kopilka(workdir, "jobs", "birthdays", "--date", "28.02.2027", check=False)
    assert bad.returncode != 0


def test_tier_jobs_review_and_requalify(tmp_path: Path) -> None:
    kopilka(tmp_path, "db", "upgrade")
    ladder = (
        "money_currency: USD\n"
        "earning: [{id: base, type: per_amount, points: 1, per: 100}]\n"
        "tiers:\n"
        "  levels:\n"
        "    - {id: blue, name: Blue}\n"
        "    - {id: gold, name: Gold, qualify: {spend: 10000}}\n"
    )
    (tmp_path / "tiers.yaml").write_text(ladder)
    kopilka(tmp_path, "program", "create", "--slug", "t", "--name", "T", "--settings", "tiers.yaml")
    (tmp_path / "p.csv").write_text(
        "external_id,member,occurred_at,store,channel,currency,sku,name,category,quantity,"
        "unit_price,discount\n"
        "p1,c1,2025-01-05,s1,pos,USD,A,Coat,coats,1,150.00,0\n"
        "p2,c2,2025-01-06,s1,pos,USD,B,Hat,hats,1,20.00,0\n"
    )
    kopilka(tmp_path, "import", "purchases", "p.csv")
    # c1 reached gold on 5 January 2025; the review a year later finds nothing since.
    early = kopilka(tmp_path, "jobs", "tier-review", "--as-of", "2025-06-01")
    assert "0 members" in early.stdout
    review = kopilka(tmp_path, "jobs", "tier-review", "--as-of", "2026-01-05")
    assert "1 members (1 downgraded)" in review.stdout
    (tmp_path / "easier.yaml").write_text(ladder.replace("spend: 10000", "spend: 1000"))
    kopilka(tmp_path, "program", "publish", "easier.yaml")
    dry = kopilka(tmp_path, "jobs", "tier-requalify", "--dry-run")
    assert "2 members, 0 would move" in dry.stdout  # the purchases are over a year old
    bad = kopilka(tmp_path, "jobs", "tier-review", "--as-of", "soon", check=False)
    assert bad.returncode != 0 and "soon" in bad.stderr


def test_the_console_script_runs_commands_and_reports_by_exit_code(tmp_path: Path) -> None:
    """The installed script, as a separate process (the one test that pays for starting
    one): it runs a command against the database of its environment, and exits 0 on
    success, 1 with one readable line on a refused command, 2 on a usage error."""
    upgraded = kopilka_process(tmp_path, "db", "upgrade")
    assert str(tmp_path / "k.db") in upgraded.stdout
    assert (tmp_path / "k.db").stat().st_size > 0
    refused = kopilka_process(tmp_path, "members", "show", "A-1", check=False)
    assert refused.returncode == 1, refused.stdout
    assert refused.stderr.startswith("error:") and refused.stderr.strip().count("\n") == 0
    usage = kopilka_process(tmp_path, "members", "show", "--no-such-option", check=False)
    assert usage.returncode == 2 and "--no-such-option" in usage.stderr


def test_in_process_commands_read_their_own_database(tmp_path: Path) -> None:
    """Settings are cached per process; each in-process command must still see the
    database of its own environment, not the one a command before it saw."""
    first, second = tmp_path / "one", tmp_path / "two"
    first.mkdir()
    second.mkdir()
    for where in (first, second):
        kopilka(where, "db", "upgrade")
    (first / "usd.yaml").write_text("money_currency: USD\n")
    kopilka(first, "program", "create", "--slug", "one", "--name", "One", "--settings", "usd.yaml")
    kopilka(first, "members", "add", "--external-id", "A-1")
    # The second database has no program: a command on it must say so, not use the first.
    missing = kopilka(second, "members", "show", "A-1", check=False)
    assert missing.returncode == 1, missing.stdout
    assert '"external_id"' not in missing.stdout
    assert "A-1" in kopilka(first, "members", "show", "A-1").stdout
