"""Messages rendered and delivered to a local SMTP server.

1. A program with MEMBERS members, each with an e-mail address and a confirmed marketing
   consent, and its own HTML template of the ``broadcast`` kind (with a tracked link).
2. Compose: a broadcast to every member, made into messages by the worker's sender a chunk
   at a time (consent, suppression, caps, every part rendered in Jinja2's sandbox,
   Russian plural and money formatting through Babel) → messages/s and CPU per message.
3. Send: the sender delivers every queued e-mail through SMTP to an aiosmtpd process that
   counts what it receives → messages/s, CPU per message, and the count received, which
   must equal MEMBERS exactly (and no Message-ID twice).

.venv/bin/python benchmarks/messages.py [--members 10000] [--concurrency 8] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import (
    REPO,
    install_sigterm_handler,
    log,
    machine,
    pg_url,
    print_json,
    print_table,
    scratch_pg_database,
)

sys.path.insert(0, str(REPO / "src"))

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import make_engine, reading, transaction
from kopilka.kit.clock import clock
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.messaging.broadcasts import broadcast_service
from kopilka.messaging.consents import consent_service
from kopilka.messaging.domain import Channel, Part
from kopilka.messaging.email import SmtpConfig
from kopilka.messaging.schemas import ConsentChange, MessagingSettings
from kopilka.messaging.sender import MessageSender, Route, SmtpDeliverer, Throttle
from kopilka.messaging.service import messaging_service
from kopilka.messaging.templates import template_service
from kopilka.migrations.runner import upgrade
from kopilka.models import Message
from kopilka.models.base import table
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import program_service

HERE = Path(__file__).resolve().parent
CHUNK = 1000
HTML = (
    "<p>{{ member.first_name }}, {{ body }}</p>"
    '<p>На счёте {{ balance|points }}. <a href="https://shop.example/coffee">Подробнее</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Отписаться</a></p>'
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sink(port: int, path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "smtp_sink.Counter",
            str(path),
        ],
        cwd=HERE,
        env={**os.environ, "PYTHONPATH": str(HERE)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the SMTP sink did not start") from None
            time.sleep(0.05)


async def prepare(engine: AsyncEngine, members: int) -> tuple[object, list]:
    now = clock.now()
    async with transaction(engine) as conn:
        program = await program_service.create(
            conn,
            slug=f"bench-{os.getpid()}",
            name="Кофейня «Копилка»",
            settings=ProgramSettings.model_validate(
                {
                    "money_currency": "RUB",
                    "currencies": [{"code": "points"}],
                    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}],
                }
            ),
        )
        await messaging_service.save_settings(
            conn, program, MessagingSettings(quiet_hours=None, caps={}), now
        )
        await template_service.save_template(
            conn, program, "broadcast", "ru", {Part.HTML: HTML}, now
        )
    ids = []
    for start in range(0, members, CHUNK):
        rows = [
            member_service.build(
                program,
                MemberCreate(name=f"Участник {n}", email=f"m{n}@bench.example", language="ru"),
                now,
            )
            for n in range(start, min(start + CHUNK, members))
        ]
        async with transaction(engine) as conn:
            await member_service.register_many(conn, program, rows, now, channel="api")
            for row, _ in rows:
                await consent_service.change(
                    conn,
                    program,
                    row["id"],
                    [
                        ConsentChange(
                            channel="email", purpose="marketing", granted=True, confirmed=True
                        )
                    ],
                    now,
                    sync_profile=False,
                )
        ids.extend(r["id"] for r, _ in rows)
    return program, ids


async def main(args: argparse.Namespace, url: str, tmp: Path) -> dict[str, object]:
    upgrade(url)
    engine = make_engine(url)
    try:
        log(f"preparing {args.members:,} members")
        program, ids = await prepare(engine, args.members)
        async with transaction(engine) as conn:
            await broadcast_service.create(
                conn,
                program,
                name="Неделя кофе",
                kind="broadcast",
                variables={"title": "Неделя кофе", "body": "двойные баллы на кофе до воскресенья"},
                channels=[Channel.EMAIL],
                members=ids,
                send_at=None,
                now=clock.now(),
            )
        log("composing")
        composer = MessageSender(engine, {}, broadcast_chunk=500)
        cpu, wall = time.process_time(), time.perf_counter()
        while await composer.expand_broadcasts():
            pass
        compose_wall, compose_cpu = time.perf_counter() - wall, time.process_time() - cpu

        port = free_port()
        received = tmp / "received.txt"
        sink = start_sink(port, received)
        try:
            config = SmtpConfig(
                host="127.0.0.1",
                port=port,
                security="none",
                username=None,
                password=None,
                sender="Копилка <club@bench.example>",
                timeout=30,
            )
            routes = {Channel.EMAIL: Route(SmtpDeliverer(config), Throttle(0), 30)}
            sender = MessageSender(engine, routes, concurrency=args.concurrency)
            log(f"sending through SMTP, {args.concurrency} lanes")
            cpu, wall = time.process_time(), time.perf_counter()
            while await sender.send_due():
                pass
            send_wall, send_cpu = time.perf_counter() - wall, time.process_time() - cpu
            await asyncio.sleep(0.5)  # the sink's last lines
        finally:
            sink.terminate()
            sink.wait(timeout=10)
        lines = received.read_text().splitlines()
        repeats = sum(n - 1 for n in Counter(lines).values() if n > 1)
        m = table(Message)
        async with reading(engine) as conn:
            statuses = dict(
                (
                    await conn.execute(
                        select(m.c.status, func.count())
                        .where(m.c.program_id == program.id)
                        .group_by(m.c.status)
                    )
                ).all()
            )
    finally:
        await engine.dispose()
    n = args.members
    return {
        "benchmark": "messages",
        "database": "postgresql" if args.postgres else "sqlite",
        "members": n,
        "concurrency": args.concurrency,
        "compose_per_second": round(n / compose_wall),
        "compose_cpu_ms_per_message": round(1000 * compose_cpu / n, 3),
        "send_per_second": round(n / send_wall),
        "send_cpu_ms_per_message": round(1000 * send_cpu / n, 3),
        "received": len(lines),
        "received_twice": repeats,
        "statuses": statuses,
        "exact": len(lines) == n and repeats == 0 and statuses.get("sent") == n,
        "machine": machine(),
    }


def cli() -> None:
    install_sigterm_handler()
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.postgres:
            with scratch_pg_database("messages") as name:
                result = asyncio.run(main(args, pg_url(name), Path(tmp)))
        else:
            url = f"sqlite+aiosqlite:///{tmp}/messages.db"
            result = asyncio.run(main(args, url, Path(tmp)))
    print_table(
        "Messages: render and deliver through SMTP",
        [
            ("database", result["database"]),
            ("members / e-mails", f"{result['members']:,}"),
            ("compose (render) messages/s", result["compose_per_second"]),
            ("compose CPU ms per message", result["compose_cpu_ms_per_message"]),
            (f"send messages/s ({result['concurrency']} lanes)", result["send_per_second"]),
            ("send CPU ms per message", result["send_cpu_ms_per_message"]),
            ("received by the SMTP server", f"{result['received']:,}"),
            ("received twice", result["received_twice"]),
            ("exactly one each", result["exact"]),
        ],
    )
    print_json(result)
    if not result["exact"]:
        sys.exit(1)


if __name__ == "__main__":
    cli()
