"""Event delivery on PostgreSQL, side by side with the rate at which purchases make events.

  1. Production: ``kopilka serve`` (one process per core) on a fresh database with the
     program of http_purchases.py (tiers), MEMBERS members, then POST /v1/purchases from C
     keep-alive connections for SECONDS (benchmarks/loadgen.py, closed loop, as
     http_purchases.py does) → purchases/s, outbox events per purchase → events/s made.
  2. In-process consumer: a worker with one consumer that counts events drains that backlog
     (stamping, leasing, checkpoints, published_at) → events/s delivered.
  3. Webhooks: an endpoint of the program on a loopback receiver (its own process, answers
     204); a worker with the webhooks consumer and the sender drains the same backlog again,
     every event POSTed, signed, and its attempt logged → events/s delivered end to end.
  4. Live: purchases for SECONDS again with ``kopilka worker`` (webhooks to the receiver)
     running beside the server → events made and delivered during the load, the backlog when
     the load stops and how long the worker takes to clear it.

Delivery keeps up when its rates in 2 and 3 are at least the events/s made in 1, and the
backlog in 4 stays small.

  .venv/bin/python benchmarks/event_delivery.py [--seconds 15] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    KOPILKA,
    REPO,
    CpuMeter,
    Server,
    create_admin_key,
    free_port,
    install_sigterm_handler,
    kopilka_env,
    log,
    machine,
    pg_url,
    prepare_database,
    print_json,
    print_table,
    psql,
    scratch_pg_database,
)
from http_purchases import SLUG, TIERED_SETTINGS, loadgen

sys.path.insert(0, str(REPO / "src"))

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.db import make_engine, transaction
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import ConsumerRegistry, registry
from kopilka.outbox.events import DomainEvent
from kopilka.programs.service import program_service
from kopilka.webhooks.schemas import WebhookCreate
from kopilka.webhooks.sender import WebhookSender
from kopilka.webhooks.service import webhook_service
from kopilka.worker.modules import import_consumers
from kopilka.worker.runner import Worker

# --- a loopback receiver: HTTP/1.1 keep-alive, 204 for every POST --------------------------


class _Receive(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")


def _serve_receiver(port: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receive, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_receiver() -> tuple[multiprocessing.Process, int]:
    port = free_port()
    process = multiprocessing.Process(target=_serve_receiver, args=(port,), daemon=True)
    process.start()
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the receiver did not start")


# --- in-process delivery ------------------------------------------------------------------


async def drain_counting(url: str) -> dict[str, Any]:
    """A worker with one consumer that counts the events it gets."""
    count = {"events": 0}
    own = ConsumerRegistry()

    @own.batch_consumer("*", name="bench-count")
    async def counted(events: Sequence[DomainEvent], conn: AsyncConnection) -> None:
        count["events"] += len(events)

    engine = make_engine(url, pool_size=4)
    try:
        worker = Worker(engine, own.all())
        started = time.perf_counter()
        report = await worker.drain()
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {
        "events": count["events"],
        "seconds": round(seconds, 2),
        "events_per_s": round(count["events"] / seconds, 1),
        "stamped": report.stamped,
    }


async def add_endpoint(url: str, receiver_port: int) -> None:
    engine = make_engine(url, pool_size=2)
    try:
        async with transaction(engine) as conn:
            program = await program_service.get_by_slug(conn, SLUG)
            await webhook_service.create(
                conn,
                program,
                WebhookCreate(url=f"http://127.0.0.1:{receiver_port}/hooks"),
                clock.now(),
                allow_private=True,  # the receiver is local
            )
    finally:
        await engine.dispose()


async def drain_webhooks(url: str) -> dict[str, Any]:
    """The webhooks consumer and the sender: every event POSTed to the receiver."""
    import_consumers()
    consumer = registry.get("webhooks")
    assert consumer is not None
    engine = make_engine(url, pool_size=8)
    try:
        async with WebhookSender(engine, concurrency=8, batch=500, allow_private=True) as sender:
            worker = Worker(engine, [consumer], sender=sender)
            started = time.perf_counter()
            report = await worker.drain()
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {
        "events": report.handled,
        "posted": report.sent,
        "seconds": round(seconds, 2),
        "events_per_s": round(report.handled / seconds, 1),
        "posts_per_s": round(report.sent / seconds, 1),
    }


# --- helpers ------------------------------------------------------------------------------


def count(db: str, sql: str) -> int:
    return int(psql(sql, db) or 0)


def backlog(db: str) -> tuple[int, int]:
    """(outbox rows not yet delivered to every consumer, webhook deliveries not yet sent)"""
    return (
        count(db, "SELECT count(*) FROM outbox_events WHERE published_at IS NULL"),
        count(db, "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    install_sigterm_handler()
    result: dict[str, Any] = {"benchmark": "event_delivery", **machine(), "args": vars(args)}
    receiver, receiver_port = start_receiver()
    try:
        with scratch_pg_database("events") as db, tempfile.TemporaryDirectory() as tmp:
            url = pg_url(db)
            settings = Path(tmp) / "program.yaml"
            settings.write_text(TIERED_SETTINGS)
            prepare_database(url, SLUG, settings)
            key = create_admin_key(url, SLUG)

            server = Server(url, workers=args.workers)
            server.start()
            try:
                log(f"registering {args.members} members")
                loadgen("members", server, key, args)
                before = count(db, "SELECT count(*) FROM outbox_events")
                log(f"1. purchases for {args.seconds} s, no worker")
                made = loadgen("closed", server, key, args)
            finally:
                server.stop()
            purchases = count(db, "SELECT count(*) FROM purchases")
            events = count(db, "SELECT count(*) FROM outbox_events") - before
            per_purchase = events / max(purchases, 1)
            produced = {
                "purchases_per_s": made["ok_rate"],
                "events_per_purchase": round(per_purchase, 2),
                "events_per_s": round(made["ok_rate"] * per_purchase, 1),
                "backlog_events": events,
            }
            result["production"] = produced

            log(f"2. in-process consumer drains {events} events")
            result["in_process"] = asyncio.run(drain_counting(url))
            log("3. webhooks consumer and sender drain the same events to a loopback receiver")
            asyncio.run(add_endpoint(url, receiver_port))
            result["webhooks"] = asyncio.run(drain_webhooks(url))

            log(f"4. purchases for {args.seconds} s with `kopilka worker` beside the server")
            server = Server(url, workers=args.workers)
            server.start()
            worker_log = Path(tmp) / "worker.log"
            env = kopilka_env(url) | {"KOPILKA_WEBHOOK_CONCURRENCY": "8"}
            with worker_log.open("wb") as out:
                worker = subprocess.Popen(
                    [KOPILKA, "worker", "--no-jobs"],
                    env=env,
                    cwd=REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                before = count(db, "SELECT count(*) FROM outbox_events")
                meter = CpuMeter({"worker": worker.pid})
                meter.start()
                live = loadgen("closed", server, key, args)
                cpu = meter.stop()
                made_live = count(db, "SELECT count(*) FROM outbox_events") - before
                left_events, left_posts = backlog(db)
                started = time.perf_counter()
                while backlog(db) != (0, 0) and time.perf_counter() - started < 600:
                    time.sleep(0.2)
                cleared = time.perf_counter() - started
            finally:
                server.stop()
                worker.terminate()
                worker.wait(timeout=30)
            load_seconds = args.seconds + args.warmup
            result["live"] = {
                "purchases_per_s": live["ok_rate"],
                "events_made": made_live,
                "events_made_per_s": round(made_live / load_seconds, 1),
                "events_undelivered_at_end": left_events,
                "webhooks_unsent_at_end": left_posts,
                "seconds_to_clear_after_load": round(cleared, 2),
                "worker_cpu_pct": cpu.get("worker_cpu_pct"),
            }
            delivered = count(
                db, "SELECT count(*) FROM webhook_deliveries WHERE status='delivered'"
            )
            result["webhooks_delivered_total"] = delivered
    finally:
        receiver.terminate()

    production = result["production"]
    rows = [
        ("purchases/s over HTTP (no worker)", production["purchases_per_s"]),
        ("events per purchase", production["events_per_purchase"]),
        ("events/s made by purchases", production["events_per_s"]),
        ("events/s delivered, in-process consumer", result["in_process"]["events_per_s"]),
        ("events/s delivered, webhooks (POST each)", result["webhooks"]["events_per_s"]),
        (
            "ratio delivered ÷ made, in-process",
            round(result["in_process"]["events_per_s"] / max(production["events_per_s"], 1), 1),
        ),
        (
            "ratio delivered ÷ made, webhooks",
            round(result["webhooks"]["events_per_s"] / max(production["events_per_s"], 1), 1),
        ),
        ("live: purchases/s with the worker running", result["live"]["purchases_per_s"]),
        ("live: events undelivered when load stopped", result["live"]["events_undelivered_at_end"]),
        ("live: webhooks unsent when load stopped", result["live"]["webhooks_unsent_at_end"]),
        ("live: seconds to clear after the load", result["live"]["seconds_to_clear_after_load"]),
        ("live: worker CPU %", result["live"]["worker_cpu_pct"]),
    ]
    print_table("Event delivery (PostgreSQL)", rows)
    print_json(result)


if __name__ == "__main__":
    main()
