"""Broadcasts: made into messages a chunk at a time, resumable after a worker dies between
chunks, no member messaged twice, counts per status, pause, resume and cancel; a program
version published with a notice for members tells every member of the time."""

import asyncio
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.messaging.broadcasts import broadcast_service
from kopilka.messaging.consumers import CONSUMER
from kopilka.messaging.sender import MessageSender
from kopilka.models import Message
from kopilka.models.base import table
from kopilka.outbox.consumers import registry
from kopilka.programs.service import ProgramContext
from kopilka.worker.runner import Worker
from kopilka.worker.scheduler import JOB_NAMES
from tests.conftest import Api
from tests.messaging.test_flow import mailbox, member, settle

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
messages_t = table(Message)


async def members(api: Api, count: int) -> list[str]:
    """Members with a confirmed consent to marketing e-mail."""
    made = []
    for n in range(count):
        member_id = await member(api, email=mailbox(f"b{n}"))
        granted = await api.post(
            f"/v1/members/{member_id}/consents",
            {
                "changes": [
                    {"channel": "email", "purpose": "marketing", "granted": True, "confirmed": True}
                ]
            },
        )
        assert granted.status_code == 200, granted.text
        made.append(member_id)
    return made


NEWS = {"title": "Весна", "body": "Двойные баллы"}


async def create(api: Api, people: list[str], **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Spring news",
        "kind": "broadcast",
        "variables": {"title": "Весна", "body": "Двойные баллы"},
        "members": people,
        "channels": ["email", "inbox"],
    }
    response = await api.post("/v1/broadcasts", {**body, **fields})
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def per_member(engine: AsyncEngine, broadcast_id: str) -> dict[tuple[Any, str], int]:
    m = messages_t
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(m.c.member_id, m.c.channel, func.count())
            .where(m.c.broadcast_id == UUID(broadcast_id))
            .group_by(m.c.member_id, m.c.channel)
        )
        return {(r[0], r[1]): int(r[2]) for r in rows}


async def test_chunks_resume_and_nobody_gets_two(api: Api, engine: AsyncEngine) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        people = await members(api, 12)
        made = await create(api, people + people[:3])  # a repeated id counts once
        assert made["total"] == 12 and made["status"] == "scheduled"
        broadcast_id = UUID(made["id"])
        async with transaction(engine) as conn:
            first = await broadcast_service.run_chunk(conn, broadcast_id, 5, clock.now())
        assert first is not None and (first.members, first.finished) == (5, False)
        # A worker that died with a chunk in hand: its transaction rolled back.
        with pytest.raises(RuntimeError):
            async with transaction(engine) as conn:
                await broadcast_service.run_chunk(conn, broadcast_id, 5, clock.now())
                raise RuntimeError("killed")
        midway = (await api.get(f"/v1/broadcasts/{made['id']}")).json()
        assert (midway["status"], midway["done"]) == ("running", 5)

        sender = MessageSender(engine, {}, broadcast_chunk=5)
        while await sender.expand_broadcasts():
            pass
    done = (await api.get(f"/v1/broadcasts/{made['id']}")).json()
    assert (done["status"], done["done"]) == ("done", 12)
    assert done["counts"] == {"queued": 12, "delivered": 12}
    counted = await per_member(engine, made["id"])
    assert len(counted) == 24 and set(counted.values()) == {1}


async def test_pause_resume_cancel(api: Api, engine: AsyncEngine) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        people = await members(api, 4)
        later = await create(api, people, send_at=(T0 + timedelta(hours=2)).isoformat())
        sender = MessageSender(engine, {}, broadcast_chunk=2)
        await sender.expand_broadcasts()
        assert (await api.get(f"/v1/broadcasts/{later['id']}")).json()["done"] == 0
        paused = await api.post(f"/v1/broadcasts/{later['id']}/pause")
        assert paused.json()["status"] == "paused"
        assert (await api.post(f"/v1/broadcasts/{later['id']}/pause")).status_code == 409
    with clock.frozen(T0 + timedelta(hours=3)):
        await sender.expand_broadcasts()
        assert (await api.get(f"/v1/broadcasts/{later['id']}")).json()["done"] == 0
        await api.post(f"/v1/broadcasts/{later['id']}/resume")
        await sender.expand_broadcasts()  # one chunk of two
        cancelled = (await api.post(f"/v1/broadcasts/{later['id']}/cancel")).json()
        await sender.expand_broadcasts()
    assert cancelled["status"] == "cancelled" and cancelled["done"] == 2
    assert cancelled["counts"] == {"skipped": 2, "delivered": 2}  # queued e-mail withdrawn
    assert (await api.post(f"/v1/broadcasts/{later['id']}/resume")).status_code == 409


async def test_bad_broadcasts_are_refused(api: Api) -> None:
    anna = await member(api, email=mailbox("bad-b"))
    for body, field in [
        ({"members": []}, "members"),
        ({"members": ["00000000-0000-0000-0000-000000000009"]}, "members"),
        ({"kind": "nope"}, "kind"),
        ({"variables": {"colour": 1}}, "variables.colour"),
        ({"variables": {"title": "no body"}}, "variables"),
        ({"kind": "points_spent", "variables": {"amount": 1}}, "kind"),
        ({"variables": {"title": "t", "body": "x" * 2001}}, "variables.body"),
        ({"name": ""}, "name"),
    ]:
        payload = {"name": "x", "members": [anna], "variables": {"title": "t", "body": "b"}}
        payload["kind"] = "broadcast"
        response = await api.post("/v1/broadcasts", {**payload, **body})
        assert response.status_code == 422, (body, response.text)
        fields = [e["field"].removeprefix("body.") for e in response.json()["errors"]]
        assert field in fields, (body, fields)
    assert (await api.get("/v1/broadcasts")).json()["items"] == []


async def test_a_published_notice_reaches_the_members_of_the_time(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    consumer = registry.get(CONSUMER)
    assert consumer is not None
    worker = Worker(engine, [consumer], senders=[MessageSender(engine, {})])
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        before = await members(api, 3)
        document = (await api.get("/v1/program")).json()["document"]
        saved = await api.put("/v1/program/draft", document)
        assert saved.status_code in (200, 201), saved.text
        published = await api.post(
            "/v1/program/publish", {"member_notice": "С 1 апреля Gold получает ×2."}
        )
        assert published.status_code == 201, published.text
    with clock.frozen(T0 + timedelta(minutes=5)):
        await member(api, email=mailbox("late"))  # joined after: not told
        await worker.drain()
    listed = (await api.get("/v1/messages", kind="program_changed", channel="inbox")).json()
    told = sorted(m["member_id"] for m in listed["items"])
    assert told == sorted(before)
    assert "С 1 апреля Gold получает ×2." in listed["items"][0]["body"]


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kopilka",
        "worker",
        "--consumer",
        CONSUMER,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def stderr_of(process: asyncio.subprocess.Process) -> str:
    return (await process.stderr.read()).decode() if process.stderr else ""


async def test_a_killed_worker_resumes_the_broadcast(
    api: Api, engine: AsyncEngine, tmp_path: Path
) -> None:
    """A real ``kopilka worker`` process killed mid-broadcast, then started again: every
    member gets their e-mail (written to a mail outbox directory) and one message each."""
    await settle(api, quiet_hours=None)
    people = await members(api, 60)
    made = await create(api, people, channels=["email"])
    outbox = tmp_path / "mail"
    env = {
        **os.environ,
        "KOPILKA_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "KOPILKA_MAIL_OUTBOX_DIR": str(outbox),
        "KOPILKA_BROADCAST_CHUNK": "5",
        "KOPILKA_EMAIL_PER_SECOND": "40",
        "KOPILKA_MESSAGE_CONCURRENCY": "2",
        "KOPILKA_WORKER_POLL_SECONDS": "0.05",
        "KOPILKA_JOBS_DISABLED": ",".join(JOB_NAMES),
    }
    first = await start_worker(env)
    deadline = time.monotonic() + 60
    while len(list(outbox.glob("*.eml"))) < 10:
        assert first.returncode is None, await stderr_of(first)
        assert time.monotonic() < deadline, "the worker sent nothing"
        await asyncio.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    assert len(list(outbox.glob("*.eml"))) < 60

    again = await start_worker(env)
    try:
        deadline = time.monotonic() + 90
        while True:
            counts = (await api.get(f"/v1/broadcasts/{made['id']}")).json()["counts"]
            if counts.get("sent", 0) == 60:
                break
            assert again.returncode is None, await stderr_of(again)
            assert time.monotonic() < deadline, counts
            await asyncio.sleep(0.1)
    finally:
        again.send_signal(signal.SIGTERM)
        await asyncio.wait_for(again.wait(), 20)
    # Only this broadcast's mail: the worker also sends what other tests left queued in the
    # shared database.
    addresses = {(await api.get(f"/v1/members/{p}")).json()["email"] for p in people}
    files = [
        f
        for f in outbox.glob("*.eml")
        if next(line for line in f.read_text().splitlines() if line.startswith("To: "))[4:]
        in addresses
    ]
    recipients = {
        next(line for line in f.read_text().splitlines() if line.startswith("To: ")) for f in files
    }
    # A message sent just before the kill may go again (at least once); its file is named
    # by the message's id, so a repeat lands on the same file: one file per member.
    assert len(files) == 60 and len(recipients) == 60
    counted = await per_member(engine, made["id"])
    assert len(counted) == 60 and set(counted.values()) == {1}


async def test_a_broadcast_goes_to_a_segment_s_members_as_they_are_when_made(
    api: Api,
) -> None:
    ids = [
        (
            await api.post("/v1/members", {"name": f"Seg {n}", "external_id": f"seg-{n}-{id(api)}"})
        ).json()["id"]
        for n in range(3)
    ]
    segment = await api.post(
        "/v1/segments", {"key": f"vip-{id(api)}", "name": "VIP", "kind": "static"}
    )
    assert segment.status_code == 201, segment.text
    key = segment.json()["key"]
    listed = await api.put(f"/v1/segments/{key}/list", {"members": ids[:2], "kind": "id"})
    assert listed.status_code == 200, listed.text
    made = await api.post(
        "/v1/broadcasts",
        {"name": "For the segment", "segment": key, "channels": ["inbox"], "variables": NEWS},
    )
    assert made.status_code == 201, made.text
    assert made.json()["total"] == 2
    both = await api.post(
        "/v1/broadcasts", {"name": "x", "segment": key, "members": ids, "variables": NEWS}
    )
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "members"
    unknown = await api.post(
        "/v1/broadcasts",
        {"name": "x", "segment": "no-such", "channels": ["inbox"], "variables": NEWS},
    )
    assert unknown.status_code == 404
