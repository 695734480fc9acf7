"""Screenshots of the console and the members' app for the docs, made from a fresh demo.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Runs `kopilka demo --no-serve` on a temporary SQLite file, serves it with `kopilka serve`
and `kopilka worker` (e-mail into a folder, where the member's sign-in code is read from),
then drives Debian's Chromium with Playwright: each page at a desktop size and at a phone
size, as PNG files.
"""

import argparse
import asyncio
import email
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from email import policy
from pathlib import Path

from playwright.async_api import Page, async_playwright

KOPILKA = str(Path(sys.executable).with_name("kopilka"))
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "kopilka-demo-2026"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
CONSOLE_PAGES = {
    "console-dashboard": "/console/",
    "console-member": None,  # the demo's member to sign in as, found by e-mail
    "console-program": "/console/program",
    "console-draft": "/console/program/draft",
    "console-segments-builder": "/console/segments/new",
    "console-tickets": "/console/tickets",
}
APP_PAGES = {
    "app-card": "/app/demo/",
    "app-rewards": "/app/demo/rewards",
    "app-history": "/app/demo/history",
    "app-stores": "/app/demo/stores?q=Москва",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not start on port {port}")


def member_email(demo_output: str) -> str:
    found = re.search(r"sign in as (\S+@\S+): the one-time code", demo_output)
    if not found:
        raise SystemExit("the demo did not name a member to sign in as")
    return found.group(1)


def code_in(mail: Path, address: str, seen: set[str]) -> str | None:
    """The code of a new e-mail to ``address`` in the mail folder, if one has come."""
    for path in sorted(mail.glob("*.eml")):
        if path.name in seen:
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if address not in str(message["To"]):
            continue
        body = message.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        code = re.search(r"\b(\d{6})\b", text)
        if code:
            return code.group(1)
    return None


async def code_from(mail: Path, address: str, seen: set[str]) -> str:
    for _ in range(100):
        code = await asyncio.to_thread(code_in, mail, address, seen)
        if code:
            return code
        await asyncio.sleep(0.2)
    raise SystemExit("no sign-in code arrived")


async def shoot(page: Page, out: Path, name: str, path: str) -> None:
    for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        await page.goto(path)
        await page.screenshot(path=out / f"{name}-{size_name}.png", full_page=False)


def start_demo(out: Path) -> tuple[Path, str, str, list[subprocess.Popen[bytes]]]:
    """A fresh demo, served: (its mail folder, the member's e-mail, the base URL, the
    processes to stop)."""
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="kopilka-shots-"))
    mail = folder / "mail"
    env = {
        **os.environ,
        "KOPILKA_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'demo.db'}",
        "KOPILKA_MAIL_OUTBOX_DIR": str(mail),
    }
    made = subprocess.run(
        [
            KOPILKA,
            "demo",
            "--database",
            str(folder / "demo.db"),
            "--members",
            "300",
            "--days",
            "180",
            "--no-serve",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    address = member_email(made.stdout)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    processes = [
        subprocess.Popen(
            [KOPILKA, "serve", "--port", str(port)],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            [KOPILKA, "worker"],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    wait_for(port)
    return mail, address, base, processes


def main(out: Path) -> None:
    mail, address, base, processes = start_demo(out)
    try:
        asyncio.run(shoot_all(out, mail, address, base))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
    print(f"screenshots in {out}")


async def shoot_all(out: Path, mail: Path, address: str, base: str) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        staff = await browser.new_page(base_url=base, locale="ru-RU")
        await staff.goto("/console/sign-in")
        await staff.locator("#f-email").fill("owner@demo-cafe.example")
        await staff.locator("#f-password").fill(PASSWORD)
        await staff.locator("form button[type=submit]").click()
        await staff.goto(f"/console/members?q={address}")
        first = staff.locator("main table a[href^='/console/members/']").first
        CONSOLE_PAGES["console-member"] = await first.get_attribute("href")
        for name, path in CONSOLE_PAGES.items():
            await shoot(staff, out, name, str(path))

        member = await browser.new_page(base_url=base, locale="ru-RU")
        seen = await asyncio.to_thread(lambda: {p.name for p in mail.glob("*.eml")})
        await member.goto("/app/demo/sign-in")
        await member.locator("#f-address").fill(address)
        await member.locator("form button[type=submit]").first.click()
        code = await code_from(mail, address, seen)
        await member.locator("#f-code").fill(code)
        await member.locator("form button[type=submit]").first.click()
        for name, path in APP_PAGES.items():
            await shoot(member, out, name, path)
        await browser.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    main(parser.parse_args().out)
