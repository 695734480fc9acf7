"""The pages in a real browser: Debian's Chromium driven by Playwright, against a real
`kopilka serve` and `kopilka worker` (processes of their own) on a small demo program in a
SQLite file, with e-mail going to a real SMTP server process (aiosmtpd).

Everything is started once per test session; each test gets a fresh browser context (its own
cookies), in English unless it asks for another locale.
"""

import asyncio
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.messaging.conftest import SmtpServer, free_port, running_smtp_server

REPO = Path(__file__).resolve().parents[2]
KOPILKA = str(Path(sys.executable).with_name("kopilka"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEMO_PASSWORD = "kopilka-demo-2026"
# Chromium as root in a container, with nothing reaching out to the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def require_chromium() -> None:
    """Skip the browser tests on a machine without Chromium; in CI, where `./dev test`
    installs it, its absence is a failure."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (./dev test installs it)")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@dataclass
class Site:
    """The running server: its address, database, admin API key and mailbox."""

    url: str
    database: Path
    api_key: str
    smtp: SmtpServer

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=30
        )

    def mail_to(self, address: str) -> list[Any]:
        return [m for m in self.smtp.received() if address in str(m["To"])]


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                said = process.stderr.read().decode() if process.stderr else ""
                if log is not None and log.exists():
                    said += log.read_text(errors="replace")
                raise RuntimeError(f"{what} did not start: {said[-2000:]}") from None
            time.sleep(0.1)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With parallel workers (``-n``, ``--dist loadgroup``), every browser test runs on one
    of them: the demo, the servers and Chromium start once, not once per worker."""
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("e2e"))


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with running_smtp_server(tmp_path_factory.mktemp("e2e-smtp") / "maildir") as server:
        yield server


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[Site]:
    require_chromium()
    folder = tmp_path_factory.mktemp("e2e-site")
    database = folder / "demo.db"
    port = free_port()
    env = {
        **os.environ,
        "KOPILKA_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "KOPILKA_SMTP_HOST": "127.0.0.1",
        "KOPILKA_SMTP_PORT": str(smtp.port),
        "KOPILKA_SMTP_SECURITY": "none",
        "KOPILKA_WORKER_POLL_SECONDS": "0.2",
    }
    env.pop("KOPILKA_MAIL_OUTBOX_DIR", None)
    made = subprocess.run(
        [
            KOPILKA,
            "demo",
            "--database",
            str(database),
            "--members",
            "60",
            "--days",
            "60",
            "--no-serve",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    key = re.search(r"API key \(admin\): (kp_\S+)", made.stdout)
    assert key, made.stdout[-2000:]
    server = _start([KOPILKA, "serve", "--port", str(port)], env, folder / "serve.log")
    worker = _start([KOPILKA, "worker"], env, folder / "worker.log")
    try:
        _wait_for_port(port, server, "kopilka serve", folder / "serve.log")
        time.sleep(0.5)
        assert worker.poll() is None, (folder / "worker.log").read_text(errors="replace")
        yield Site(f"http://127.0.0.1:{port}", database, key.group(1), smtp)
    finally:
        for process in (server, worker):
            process.terminate()
        for process in (server, worker):
            process.wait(timeout=20)


@pytest.fixture(scope="session")
async def chromium(site: Site) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def context(chromium: Browser, site: Site) -> AsyncIterator[BrowserContext]:
    context = await chromium.new_context(
        base_url=site.url, locale="en-US", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


# --- members of the demo, signed in as a person would ----------------------------------


def richest_member_with_email(site: Site) -> tuple[str, str]:
    """(id, e-mail) of the demo's active member with the most points."""
    with sqlite3.connect(site.database) as db:
        row = db.execute(
            "select m.id, m.email from members m"
            " join member_balances b on b.member_id = m.id"
            " where m.email is not null and m.status = 'active' and b.currency = 'points'"
            " order by b.available desc limit 1"
        ).fetchone()
    assert row, "the demo has a member with an e-mail"
    return str(uuid.UUID(hex=row[0]) if len(row[0]) == 32 else row[0]), row[1]


def mail_ids(site: Site, address: str) -> set[str]:
    return {str(mail["Message-ID"]) for mail in site.mail_to(address)}


async def code_sent_to(site: Site, address: str, already: set[str]) -> str:
    """The one-time code in the newest e-mail to ``address`` (waiting for the worker)."""
    for _ in range(150):
        # A Maildir lists its messages in no particular order: the new ones are those
        # not seen before.
        for mail in site.mail_to(address):
            if str(mail["Message-ID"]) in already:
                continue
            body = mail.get_body(preferencelist=("plain",)).get_content()
            found = re.search(r"\b(\d{6})\b", body)
            if found:
                return found.group(1)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no code reached {address}")


async def sign_in_member(page: Page, site: Site, email: str) -> None:
    """Sign ``page`` in to the demo's app with the code e-mailed to ``email``."""
    await page.goto("/app/demo/sign-in")
    already = mail_ids(site, email)
    # By the fields' ids: the page may be in either language.
    await page.locator("#f-address").fill(email)
    await page.locator("main form button[type=submit]").first.click()
    code = await code_sent_to(site, email, already)
    await page.locator("#f-code").fill(code)
    await page.locator("main form button[type=submit]").first.click()
    await page.wait_for_url(re.compile(r"/app/demo/$"))
