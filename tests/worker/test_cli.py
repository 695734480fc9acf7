"""``kopilka worker`` and ``kopilka webhooks`` as a user runs them (a real process, SQLite)."""

from pathlib import Path

import pytest

from tests.cli.test_cli import kopilka, workdir

CONSUMERS = (
    "analytics.kpis, crm.facts, journeys.runs, memberaccess.sessions, messaging, segments, "
    "shopwidget.sessions, support, wallet.apns, webhooks"
)

__all__ = ["workdir"]


def test_worker_once_delivers_everything_and_reports(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Daily jobs are due from midnight, whatever the hour the test runs at.
    monkeypatch.setenv("KOPILKA_JOBS_DAILY_AT", "00:00")
    monkeypatch.setenv("KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS", "true")  # the hook below is local
    (workdir / "p.csv").write_text(
        "external_id,member,occurred_at,store,channel,currency,sku,name,category,quantity,"
        "unit_price,discount\n"
        "p1,c1,2026-01-05,s1,pos,USD,A,Apple,fruit,2,150,0\n"
        "p3,c2,2026-01-07,s1,pos,USD,C,Cake,bakery,1,1000,0\n"
    )
    kopilka(workdir, "import", "purchases", "p.csv")
    hook = kopilka(workdir, "webhooks", "add", "http://127.0.0.1:9/x", "-e", "tier.*")
    assert "secret: whsec_" in hook.stdout
    webhook_id = hook.stdout.split()[0]

    done = kopilka(workdir, "worker", "--once", "--no-jobs")
    assert f"delivering to: {CONSUMERS}" in done.stdout
    assert "reading events from sqlite" in done.stdout
    status = kopilka(workdir, "worker", "status").stdout
    assert "0 not yet stamped, 0 not delivered to every consumer" in status
    assert "consumer webhooks: 0 behind, 0 retrying, 0 waiting, 0 parked" in status

    jobs = kopilka(workdir, "worker", "--once").stdout
    assert "job release-pending" in jobs and "job birthdays" in jobs

    assert "removed" in kopilka(workdir, "webhooks", "remove", webhook_id).stdout
    assert "no webhooks" in kopilka(workdir, "webhooks", "list").stdout


def test_bad_input_is_one_line(workdir: Path) -> None:
    for args, expected in [
        (("webhooks", "add", "ftp://example.com"), "url: the URL must start"),
        (("webhooks", "remove", "nope"), "'nope' is not a webhook id"),
        (("worker", "--once", "--module", "no.such.module"), "cannot import consumer module"),
    ]:
        result = kopilka(workdir, *args, check=False)
        assert result.returncode != 0
        text = (result.stderr + result.stdout).strip()
        assert expected in text, text
        assert len(result.stderr.strip().splitlines()) <= 1, result.stderr


def test_demo_leaves_no_event_undelivered(tmp_path: Path) -> None:
    result = kopilka(
        tmp_path,
        "demo",
        "--no-serve",
        "--members",
        "30",
        "--days",
        "20",
        "--database",
        str(tmp_path / "demo.db"),
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("worker:"))
    assert f"domain events delivered to {CONSUMERS}" in line
    assert line.endswith("; 0 left undelivered"), line
