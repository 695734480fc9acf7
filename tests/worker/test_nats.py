"""The NATS JetStream sink against the local server: every event arrives once per event
id, on ``<prefix>.<program>.<type>``, even when a batch is published twice."""

import json
import os
import shutil
import socket
import subprocess
import time
from uuid import uuid4

import nats
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.outbox.consumers import from_row
from kopilka.programs.service import ProgramContext
from kopilka.worker.delivery_repository import outbox_repository
from kopilka.worker.runner import Worker
from kopilka.worker.sinks import NatsSink
from tests.worker.support import emit, update_event

NATS_URL = "nats://127.0.0.1:4222"


def _nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def nats_server() -> str:
    """The local NATS server, started as the tests start PostgreSQL if it is down."""
    if not _nats_up():
        if not shutil.which("start-stop-daemon") or not shutil.which("nats-server"):
            # The machines this project runs on have NATS; CI must not pass without it.
            if os.environ.get("CI"):
                pytest.fail("nats-server is not installed: CI runs the NATS sink's tests")
            pytest.skip("nats-server is not installed on this machine")
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/nats-server",
                "--",
                "-a",
                "127.0.0.1",
                "-p",
                "4222",
                "-js",
                "-sd",
                "/var/lib/nats-server",
                "-l",
                "/var/log/nats-server.log",
            ],
            check=True,
        )
        for _ in range(100):
            if _nats_up():
                break
            time.sleep(0.1)
    return NATS_URL


async def _stream_messages(stream: str, subject: str) -> list[tuple[str, str, dict[str, object]]]:
    nc = await nats.connect(NATS_URL)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        sub = await js.pull_subscribe(subject, durable=None, stream=stream)
        got = []
        remaining = info.state.messages
        while remaining > 0:
            batch = await sub.fetch(min(remaining, 100), timeout=5)
            for msg in batch:
                await msg.ack()
                assert msg.headers is not None
                got.append((msg.subject, msg.headers["Nats-Msg-Id"], json.loads(msg.data)))
            remaining -= len(batch)
        await js.delete_stream(stream)
        return got
    finally:
        await nc.close()


async def test_events_reach_jetstream_once_each(
    nats_server: str, engine: AsyncEngine, program: ProgramContext
) -> None:
    tag = uuid4().hex[:10]
    sink = NatsSink(nats_server, stream=f"KTEST_{tag}", prefix=f"ktest{tag}")
    async with sink:
        worker = Worker(engine, [sink.consumer()])
        await worker.prepare()
        events = [update_event(program.id, uuid4(), n) for n in range(30)]
        await emit(engine, *events)
        report = await worker.drain()
        assert report.handled >= 30
        # A retry after a crash publishes a batch again: JetStream drops the duplicates.
        async with reading(engine) as conn:
            stored = [
                e
                for p in range(16)
                for e in await outbox_repository.events_after(conn, p, 0, 100_000)
                if e.program_id == program.id
            ]
        await sink.publish([from_row(e) for e in stored], None)  # type: ignore[arg-type]
    got = await _stream_messages(f"KTEST_{tag}", f"ktest{tag}.{program.id}.>")
    # The program's creation published its version 1: that event went out too.
    assert [s for s, _, _ in got if not s.endswith(".member.updated")] == [
        f"ktest{tag}.{program.id}.program.published"
    ]
    got = [(s, i, b) for s, i, b in got if s.endswith(".member.updated")]
    ids = [message_id for _, message_id, _ in got]
    assert sorted(ids) == sorted(str(e.event_id) for e in events)
    for subject, message_id, body in got:
        assert subject == f"ktest{tag}.{program.id}.member.updated"
        assert body["type"] == "member.updated"
        assert body["data"]["event_id"] == message_id  # type: ignore[index]
