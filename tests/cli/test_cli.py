"""The ``kopilka`` command as a user runs it, on a real SQLite file: the commands in this
process, and the console script itself as a real process."""

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from kopilka.config import get_settings
from kopilka.migrations.runner import upgrade
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


WELCOME_PROGRAM = (
    "money_currency: USD\nexpiry: {policy: days, days: 365}\npending_days: 0\n"
    "earning: [{id: base, type: per_amount, points: 1, per: 100}]\n"
    "rules: [{id: welcome, trigger: signup, effects: [{type: points, amount: 100}]}]\n"
)


def available_points(workdir: Path, member: str) -> int:
    shown = json.loads(kopilka(workdir, "members", "show", member).stdout)
    return int(shown["balances"]["points"]["available"])


def test_members_add_runs_the_sign_up_rules_as_of_the_registration(workdir: Path) -> None:
    (workdir / "welcome.yaml").write_text(WELCOME_PROGRAM)
    kopilka(workdir, "program", "publish", "welcome.yaml")
    kopilka(workdir, "members", "add", "--external-id", "today")
    back_filled = kopilka(
        workdir,
        "members",
        "add",
        "--external-id",
        "old",
        "--registered-at",
        "2024-03-01T10:00:00+03:00",
    )
    assert json.loads(back_filled.stdout)["created_at"] == "2024-03-01T07:00:00Z"
    assert available_points(workdir, "today") == 100  # the sign-up rule, as over the API
    # The old member's welcome points were earned in March 2024 and expired a year later:
    # recorded now, they expire at once (no job needed), and the job finds nothing more.
    assert available_points(workdir, "old") == 0
    history = kopilka(workdir, "members", "show", "old")
    assert json.loads(history.stdout)["balances"]["points"]["available"] == 0
    kopilka(workdir, "jobs", "expire")
    assert available_points(workdir, "old") == 0
    assert available_points(workdir, "today") == 100


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--phone", "abc"], "phone 'abc' is not a phone number"),
        (["--email", "nope"], "email 'nope' is not valid"),
        (["--consent", "fax"], "--consent: 'fax' is not one of email, sms, push"),
        (["--birthday", "1990-13-01"], "--birthday:"),
        (["--name", "x" * 300], "--name: String should have at most 200 characters"),
        (["--registered-at", "2024-03-01T10:00:00"], "--registered-at: Input should have timezone"),
        (["--registered-at", "2999-01-01T00:00:00Z"], "registered_at is in the future"),
        (["--registered-at", "1900-01-01T00:00:00Z"], "--registered-at: Input should be between"),
    ],
)
def test_members_add_bad_input_is_one_readable_line(
    workdir: Path, args: list[str], says: str
) -> None:
    result = kopilka(workdir, "members", "add", *args, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_members_show_of_nobody_is_one_readable_line(workdir: Path) -> None:
    for identifier, says in (("nobody", "no member with external_id 'nobody'"), (" ", "give a")):
        result = kopilka(workdir, "members", "show", identifier, check=False)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


COMMANDS_ON_THE_DATABASE = [
    ["members", "show", "x"],
    ["members", "add", "--name", "A"],
    ["program", "show"],
    ["keys", "create", "--scope", "pos"],
    ["ledger", "verify"],
    ["jobs", "expire"],
    ["giftcards", "verify"],
    ["serve"],
]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command", COMMANDS_ON_THE_DATABASE, ids=lambda c: " ".join(c))
def test_a_missing_database_is_one_line_and_is_not_created(
    tmp_path: Path, command: list[str]
) -> None:
    said = one_line_error(kopilka(tmp_path, *command, check=False))
    assert "there is no database at" in said and "kopilka db upgrade" in said
    assert list(tmp_path.iterdir()) == []  # no k.db, no -wal, no -shm


def test_an_unmigrated_or_foreign_database_is_one_line(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "k.db").close()  # an empty SQLite file
    for command in COMMANDS_ON_THE_DATABASE:
        said = one_line_error(kopilka(tmp_path, *command, check=False))
        assert "has no Kopilka schema: run `kopilka db upgrade` first" in said, command
    (tmp_path / "k.db").write_text("not a database at all")
    said = one_line_error(kopilka(tmp_path, "members", "show", "x", check=False))
    assert "cannot open the database at" in said and "file is not a database" in said
    absent = "postgresql://127.0.0.1:1/absent"
    refused = kopilka(tmp_path, "ledger", "verify", "--database-url", absent, check=False)
    assert "cannot open the database at postgresql+asyncpg://127.0.0.1:1/absent" in (
        one_line_error(refused)
    )


def test_a_url_that_is_no_database_is_one_line(tmp_path: Path) -> None:
    bogus = kopilka(tmp_path, "ledger", "verify", "--database-url", "bogus://x", check=False)
    assert "bogus://x is not a database URL Kopilka can use" in one_line_error(bogus)
    folder = f"sqlite+aiosqlite:///{tmp_path}/"
    said = one_line_error(
        kopilka(tmp_path, "ledger", "verify", "--database-url", folder, check=False)
    )
    assert "is a folder, not a database file" in said


def test_an_out_of_date_or_unknown_schema_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    upgrade(url, "0005_rewards_coupons")
    said = one_line_error(kopilka(tmp_path, "program", "show", check=False))
    assert "out-of-date Kopilka schema (revision 0005_rewards_coupons" in said
    assert "run `kopilka db upgrade` first" in said
    with sqlite3.connect(tmp_path / "k.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    said = one_line_error(kopilka(tmp_path, "serve", check=False))
    assert "'9999_from_the_future', which this version of Kopilka does not know" in said
    kopilka(tmp_path, "db", "upgrade", check=False)  # cannot go back either: one line
    assert "Traceback" not in kopilka(tmp_path, "db", "upgrade", check=False).stderr


def test_db_upgrade_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    result = kopilka(
        tmp_path, "db", "upgrade", "--database-url", f"sqlite:///{tmp_path}/no/k.db", check=False
    )
    assert "there is no folder" in one_line_error(result)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A long-running ``kopilka`` process, stopped on leaving (and if it hangs, by a guard
    that kills it so that a reader of its output never waits for ever)."""
    env = dict(
        os.environ, KOPILKA_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", COLUMNS="40"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "kopilka", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(600, process.kill)
    guard.start()
    try:
        yield process
    finally:
        guard.cancel()
        process.terminate()
        process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()


def lines_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or marker not in lines[-1]:
        line = process.stdout.readline()
        assert line, f"the process ended before printing {marker!r}: {lines}"
        lines.append(line.rstrip("\n"))
    return lines


def get_when_up(url: str, **headers: str) -> httpx.Response:
    """GET ``url`` once the server accepts connections (it prints before it binds)."""
    for _ in range(600):
        try:
            return httpx.get(url, headers=headers)
        except httpx.ConnectError:
            time.sleep(0.05)
    raise AssertionError(f"nothing answered at {url}")


def test_serve_says_where_it_listens_and_where_the_docs_are(workdir: Path) -> None:
    port = free_port()
    with running(workdir, "serve", "--port", str(port)) as server:
        printed = lines_until(server, "openapi.json")
        base = f"http://127.0.0.1:{port}"
        assert printed == [
            f"Kopilka API listening on {base}; press Ctrl+C to stop",
            f"  interactive docs: {base}/docs",
            f"  OpenAPI:          {base}/openapi.json",
        ]
        assert get_when_up(f"{base}/openapi.json").json()["info"]["title"] == "Kopilka"
        assert get_when_up(f"{base}/docs").status_code == 200


def test_the_demos_curl_hint_pastes_as_one_command(tmp_path: Path) -> None:
    port = free_port()
    args = ["demo", "--members", "5", "--days", "3", "--port", str(port)]
    with running(tmp_path, *args) as demo:
        printed = lines_until(demo, "curl")  # on a 40-column terminal
        assert f"  OpenAPI:          http://127.0.0.1:{port}/openapi.json" in printed
        command = printed[-1].strip()
        key = command.split("Bearer ")[1].split('"')[0]
        assert command == (
            f'curl -H "Authorization: Bearer {key}" http://127.0.0.1:{port}/v1/health'
        )
        answer = get_when_up(f"http://127.0.0.1:{port}/v1/health", Authorization=f"Bearer {key}")
        assert answer.status_code == 200


REPO = Path(__file__).resolve().parents[2]


def test_dev_kopilka_runs_the_installed_cli_from_the_callers_folder(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO / "dev", checkout / "dev")
    fake = checkout / ".venv" / "bin" / "kopilka"
    fake.write_text('#!/bin/sh\necho "$PWD: $*"\n')
    fake.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        ["bash", str(checkout / "dev"), "kopilka", "members", "show", "a b"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == f"{elsewhere}: members show a b\n"


def test_readme_says_how_to_run_the_cli_after_the_quick_start() -> None:
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start")[1].split("## What it does today")[0]
    assert "./dev demo    # installs" in quick_start and "./dev test    # installs" in quick_start
    assert "### Running the CLI" in quick_start
    assert ".venv/bin/kopilka" in quick_start and "./dev kopilka" in quick_start


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


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("KOPILKA_SMTP_PORT", "0", "error: KOPILKA_SMTP_PORT: Input should be greater than"),
        ("KOPILKA_SMS_PROVIDER", "bogus", "error: KOPILKA_SMS_PROVIDER: Input should be 'generic'"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, said: str
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        result = kopilka(tmp_path, "ledger", "verify", check=False)
    finally:
        monkeypatch.delenv(variable)
        get_settings.cache_clear()
    assert result.returncode == 1
    assert one_line_error(result).startswith(said)
