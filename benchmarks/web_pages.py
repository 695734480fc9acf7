"""Server time of the console's and the app's main pages on the demo's data.

    .venv/bin/python benchmarks/web_pages.py [--members 500] [--days 365] [--runs 20]

Makes a demo on a scratch SQLite file (`kopilka demo --no-serve`), then serves each page
through the application in this process (no network between the client and the server, so
what is timed is the server's work: routing, the session, the queries, the template) as the
demo's owner and as the demo's member, and prints the median and 90th percentile per page.
"""

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kopilka.app import create_app
from kopilka.config import Settings
from kopilka.db import make_engine, reading, transaction
from kopilka.kit.clock import clock
from kopilka.memberaccess.service import member_access_service
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.programs.service import program_service

KOPILKA = str(Path(sys.executable).with_name("kopilka"))
BASE = "https://kopilka.test"  # HTTPS, so that the session cookies come back
CONSOLE = [
    "/console/",
    "/console/members",
    "/console/members/{member}",
    "/console/program",
    "/console/program/draft",
    "/console/tiers",
    "/console/rewards",
    "/console/segments",
    "/console/tickets",
    "/console/surveys",
    "/console/audit",
]
APP = [
    "/app/demo/",
    "/app/demo/history",
    "/app/demo/rewards",
    "/app/demo/coupons",
    "/app/demo/offers",
    "/app/demo/inbox",
    "/app/demo/stores",
    "/app/demo/profile",
]


async def timed(client: httpx.AsyncClient, path: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise SystemExit(f"{path}: {answer.status_code}")
    return times


def make_demo(members: int, days: int) -> tuple[Path, str]:
    """A demo on a scratch SQLite file: (the file, the e-mail of its member to sign in as)."""
    folder = Path(tempfile.mkdtemp(prefix="kopilka-pages-"))
    database = folder / "demo.db"
    made = subprocess.run(
        [
            KOPILKA,
            "demo",
            "--database",
            str(database),
            "--members",
            str(members),
            "--days",
            str(days),
            "--no-serve",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    )
    email = re.search(r"sign in as (\S+@\S+): the one-time code", made.stdout)
    assert email, made.stdout[-1000:]
    return database, email.group(1)


async def main(members: int, days: int, runs: int) -> None:
    database, address = await asyncio.to_thread(make_demo, members, days)
    url = f"sqlite+aiosqlite:///{database}"
    engine = make_engine(url)
    async with reading(engine) as conn:
        program = await program_service.get_by_slug(conn, "demo")
        member_id, _ = await member_service.resolve(conn, program, MemberRef(email=address))
    async with transaction(engine) as conn:
        token = await member_access_service.start_session(conn, program.id, member_id, clock.now())
    app = create_app(Settings(database_url=url), engine=engine)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as staff:
            page = await staff.get("/console/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf
            signed = await staff.post(
                "/console/sign-in",
                data={
                    "csrf_token": csrf.group(1),
                    "email": "owner@demo-cafe.example",
                    "password": "kopilka-demo-2026",
                },
            )
            assert signed.status_code == 303, signed.text
            rows = [
                (p, await timed(staff, p.replace("{member}", str(member_id)), runs))
                for p in CONSOLE
            ]
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as member:
            member.cookies.set("kopilka_app", token, domain="kopilka.test", path="/app/demo/")
            rows += [(p, await timed(member, p, runs)) for p in APP]
    await engine.dispose()
    print(f"demo: {members} members, {days} days; {runs} requests per page; milliseconds")
    print(f"{'page':<34} {'median':>8} {'p90':>8}")
    for path, times in rows:
        ordered = sorted(times)
        p90 = ordered[int(0.9 * (len(ordered) - 1))]
        print(f"{path:<34} {statistics.median(times):>8.1f} {p90:>8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.members, arguments.days, arguments.runs))
