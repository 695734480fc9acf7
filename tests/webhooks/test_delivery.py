"""Webhooks delivered by the worker to a real local HTTP server: signatures checked by an
independent implementation, retries on the schedule (test clock), the endpoint disabled
after persistent failure, redelivery and ping."""

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.outbox.consumers import registry
from kopilka.outbox.events import MemberBlocked
from kopilka.programs.service import ProgramContext
from kopilka.webhooks.consumers import CONSUMER
from kopilka.webhooks.sender import WebhookSender
from kopilka.worker.runner import Worker
from tests.conftest import Api
from tests.webhooks.receiver import Receiver, verify
from tests.worker.support import T0, emit, update_event


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as found:
        yield found


@pytest.fixture
async def sender(engine: AsyncEngine) -> AsyncIterator[WebhookSender]:
    async with WebhookSender(
        engine, timeout=5, disable_after=timedelta(hours=1), allow_private=True
    ) as found:
        yield found


def make_worker(engine: AsyncEngine, sender: WebhookSender) -> Worker:
    consumer = registry.get(CONSUMER)
    assert consumer is not None
    return Worker(engine, [consumer], sender=sender)


async def create(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    response = await api.post("/v1/webhooks", {"url": url, **fields})
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_signed_retried_on_500_then_delivered(
    engine: AsyncEngine,
    api: Api,
    program: ProgramContext,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    runner = make_worker(engine, sender)
    with clock.frozen(T0):
        hook = await create(api, receiver.url, event_types=["member.updated"])
        fetched = (await api.get("/v1/webhooks/" + hook["id"])).json()
        member = uuid4()
        event = update_event(program.id, member, 7)
        ignored = MemberBlocked(
            program_id=program.id, member_id=member, occurred_at=clock.now(), reason="fraud"
        )
        await emit(engine, event, ignored)
        receiver.answers.extend([500, 500])
        await runner.drain()
    assert fetched["id"] == hook["id"] and "secret" not in fetched
    assert len(receiver.received) == 1
    with clock.frozen(T0 + timedelta(seconds=4)):
        await runner.drain()
    assert len(receiver.received) == 1  # the next attempt is 5 s after the first
    with clock.frozen(T0 + timedelta(seconds=5)):
        await runner.drain()
    assert len(receiver.received) == 2
    with clock.frozen(T0 + timedelta(seconds=5, minutes=5)):
        await runner.drain()
    assert len(receiver.received) == 3

    for got in receiver.received:
        assert verify(hook["secret"], got.headers, got.body)
        assert got.headers["webhook-id"] == str(event.event_id)
        assert int(got.headers["webhook-timestamp"]) >= int(T0.timestamp())
    body = json.loads(receiver.received[-1].body)
    assert body["type"] == "member.updated"
    assert body["data"]["event_id"] == str(event.event_id)
    assert body["data"]["member_id"] == str(member)
    assert body["data"]["values"] == {"n": 7}
    # A tampered body fails the check.
    assert not verify(hook["secret"], receiver.received[-1].headers, b"{}")

    log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()
    assert [d["status"] for d in log["items"]] == ["delivered"]
    delivery = log["items"][0]
    assert delivery["attempts"] == 3 and delivery["event_type"] == "member.updated"
    detail = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}")).json()
    assert [a["status_code"] for a in detail["log"]] == [500, 500, 200]
    assert detail["log"][0]["response"] == "receiver is down"
    assert [a["succeeded"] for a in detail["log"]] == [False, False, True]

    # Redelivery by hand: the same message id again, signed anew.
    with clock.frozen(T0 + timedelta(hours=1)):
        response = await api.post(
            f"/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/redeliver"
        )
        assert response.status_code == 202, response.text
        await runner.drain()
    assert len(receiver.received) == 4
    assert receiver.received[-1].headers["webhook-id"] == str(event.event_id)
    assert verify(hook["secret"], receiver.received[-1].headers, receiver.received[-1].body)


async def test_ping_and_rotated_secret(
    engine: AsyncEngine,
    api: Api,
    program: ProgramContext,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    runner = make_worker(engine, sender)
    # Only the ping: the program's own events (its creation published version 1) stay out.
    hook = await create(api, receiver.url, event_types=["member.updated"])
    rotated = (await api.post(f"/v1/webhooks/{hook['id']}/rotate-secret")).json()
    assert rotated["secret"] != hook["secret"] and rotated["secret"].startswith("whsec_")
    response = await api.post(f"/v1/webhooks/{hook['id']}/ping")
    assert response.status_code == 202
    await runner.drain()
    ping = receiver.received[-1]
    assert json.loads(ping.body)["type"] == "webhook.ping"
    assert verify(rotated["secret"], ping.headers, ping.body)
    assert not verify(hook["secret"], ping.headers, ping.body)


async def test_endpoint_disabled_after_persistent_failure(
    engine: AsyncEngine,
    api: Api,
    program: ProgramContext,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    runner = make_worker(engine, sender)
    receiver.default = 503
    with clock.frozen(T0):
        hook = await create(api, receiver.url, event_types=["member.updated"])
        await emit(engine, update_event(program.id, uuid4(), 1))
        await runner.drain()
    # 5 s, 5 min, 30 min, 2 h: the attempt at 2 h 35 min comes after an hour of failures
    # only (the sender here disables after one hour).
    elapsed = timedelta()
    for wait in (timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)):
        elapsed += wait
        with clock.frozen(T0 + elapsed):
            await runner.drain()
        state = (await api.get(f"/v1/webhooks/{hook['id']}")).json()
        assert state["enabled"] is True and state["failing_since"] is not None
    with clock.frozen(T0 + elapsed + timedelta(hours=2)):
        await runner.drain()
    state = (await api.get(f"/v1/webhooks/{hook['id']}")).json()
    assert state["enabled"] is False
    assert "every attempt failed" in state["disabled_reason"]
    sent = len(receiver.received)
    assert sent == 5
    # Disabled: nothing more is sent; enabling again clears the record.
    with clock.frozen(T0 + timedelta(hours=10)):
        await runner.drain()
        assert len(receiver.received) == sent
        enabled = (await api.patch(f"/v1/webhooks/{hook['id']}", {"enabled": True})).json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None


async def test_a_slow_receiver_does_not_hold_the_others_back(
    engine: AsyncEngine, api: Api, program: ProgramContext, sender: WebhookSender
) -> None:
    """A receiver that takes its time gets a couple of lanes; the others' deliveries go on
    round after round while its requests are still running."""
    with Receiver() as slow, Receiver() as quick:
        slow.delay = 1.5
        runner = make_worker(engine, sender)
        await create(api, slow.url, event_types=["member.updated"])
        await create(api, quick.url, event_types=["member.updated"])
        await emit(engine, *(update_event(program.id, uuid4(), n) for n in range(12)))
        await runner.delivery_round()  # the deliveries: 12 for each receiver
        rounds = 0
        while len(quick.received) < 12:
            await sender.send_due()
            rounds += 1
            assert rounds < 200
        # Every quick delivery arrived while the slow receiver had answered only its first
        # few: its requests ran on into later rounds instead of holding each round.
        assert len(slow.received) < 12
        await sender.drain_running()
        while len(slow.received) < 12:
            await runner.drain()
            await sender.drain_running()

    def sent(receiver: Receiver) -> list[str]:
        return sorted(json.loads(r.body)["data"]["values"]["n"] for r in receiver.received)

    assert sent(quick) == sent(slow) == list(range(12))


async def test_only_the_start_of_an_answer_is_read(
    engine: AsyncEngine, api: Api, program: ProgramContext, sender: WebhookSender
) -> None:
    """A receiver answering with an endless body cannot fill the worker's memory: the
    sender keeps the first kilobyte and the delivery is logged."""
    with Receiver() as talkative:
        talkative.huge = 50 * 1024**3  # more than the 5 s timeout could ever read
        runner = make_worker(engine, sender)
        hook = await create(api, talkative.url, event_types=["member.updated"])
        await emit(engine, update_event(program.id, uuid4(), 1))
        await runner.drain()
        await sender.drain_running()
    log = (await api.get(f"/v1/webhooks/{hook['id']}/deliveries")).json()["items"]
    assert [d["status"] for d in log] == ["delivered"]
