"""Messages end to end: made from the API and from domain events, refused for a reason
that is recorded, sent by the worker through a real SMTP server process, retried, bounced
and suppressed, deferred by quiet hours, and kept apart between programs."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.messaging.consumers import CONSUMER
from kopilka.messaging.domain import Channel
from kopilka.messaging.email import SmtpConfig
from kopilka.messaging.sender import MessageSender, Route, SmtpDeliverer, Throttle
from kopilka.outbox.consumers import registry
from kopilka.programs.service import ProgramContext
from kopilka.worker.runner import Worker
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body
from tests.messaging.conftest import SmtpServer

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
QUIET_OFF = {"quiet_hours": None, "double_opt_in": False}


def smtp_config(server: SmtpServer) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=server.port,
        security="none",
        username=None,
        password=None,
        sender="Club <club@shop.example>",
        timeout=10,
    )


@pytest.fixture
def worker(engine: AsyncEngine, smtp_server: SmtpServer) -> Worker:
    consumer = registry.get(CONSUMER)
    assert consumer is not None
    routes = {Channel.EMAIL: Route(SmtpDeliverer(smtp_config(smtp_server)), Throttle(0), 10)}
    return Worker(engine, [consumer], senders=[MessageSender(engine, routes)])


async def settle(api: Api, **settings: Any) -> dict[str, Any]:
    response = await api.put("/v1/messaging/settings", settings)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def member(api: Api, **fields: Any) -> str:
    response = await api.post("/v1/members", fields)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def send(api: Api, member_id: str, key: str, **fields: Any) -> list[dict[str, Any]]:
    body = {"member_id": member_id, "kind": "points_spent", "variables": {"amount": 300}}
    response = await api.post("/v1/messages", {**body, "dedupe_key": key, **fields})
    assert response.status_code == 202, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def mailbox(name: str) -> str:
    """An address of its own per test run: the SMTP server is shared by the backends."""
    return f"{name}-{uuid4().hex[:8]}@shop.example"


def plain(text: str) -> str:
    """Text with Babel's no-break spaces (between a number and its word) as spaces."""
    return text.replace("\xa0", " ").replace("\u202f", " ")


def by_channel(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["channel"]: m for m in items}


def to(server: SmtpServer, address: str) -> list[Any]:
    return [m for m in server.received() if m["To"] == address]


async def test_one_message_per_channel_with_the_reason_for_each_refusal(api: Api) -> None:
    with clock.frozen(T0):
        await settle(api, **QUIET_OFF)
        anna = await member(api, name="Анна Петрова", email="anna@shop.example", language="ru")
        made = by_channel(await send(api, anna, "spend-1"))
    assert set(made) == {"inbox", "email", "push"}
    assert made["inbox"]["status"] == "delivered"
    assert made["email"]["status"] == "queued" and made["email"]["to"] == "anna@shop.example"
    assert plain(made["email"]["subject"]) == "Списано 300 баллов"
    assert made["email"]["body"].startswith("Анна Петрова, ")
    assert made["push"]["status"] == "skipped"
    assert made["push"]["error"] == "not sent: no push subscription"

    again = by_channel(await send(api, anna, "spend-1"))
    assert {c: m["id"] for c, m in again.items()} == {c: m["id"] for c, m in made.items()}
    sms = by_channel(await send(api, anna, "spend-2", channels=["sms"]))
    assert sms["sms"]["status"] == "skipped" and sms["sms"]["error"] == "not sent: no phone number"

    detail = (await api.get(f"/v1/messages/{made['email']['id']}")).json()
    assert [h["status"] for h in detail["history"]] == ["queued"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "nope"}, "kind"),
        ({"variables": {"amount": 1, "colour": "red"}}, "variables.colour"),
        ({"variables": {}}, "variables"),  # the template reads amount: nothing to render
        ({"channels": ["fax"]}, "channels.0"),
        ({"channels": []}, "channels"),
        ({"dedupe_key": ""}, "dedupe_key"),
        ({"member_id": "not-a-uuid"}, "member_id"),
    ],
)
async def test_bad_input_is_named_and_sends_nothing(
    api: Api, body: dict[str, Any], field: str
) -> None:
    anna = await member(api, email="bad-input@shop.example")
    base = {"member_id": anna, "kind": "points_spent", "variables": {"amount": 3}}
    response = await api.post("/v1/messages", {**base, "dedupe_key": "k", **body})
    assert response.status_code == 422, response.text
    assert field in [e["field"].removeprefix("body.") for e in response.json()["errors"]]
    listed = (await api.get("/v1/messages", member_id=anna)).json()
    assert listed["items"] == []


async def test_another_programs_key_sees_nothing(api: Api, engine: AsyncEngine) -> None:
    anna = await member(api, email="mine@shop.example")
    made = by_channel(await send(api, anna, "own"))
    other = await make_program(engine)
    stranger = Api(api.client, await make_key(engine, other, "admin"))
    assert (await stranger.get(f"/v1/messages/{made['email']['id']}")).status_code == 404
    response = await stranger.post(
        "/v1/messages",
        {"member_id": anna, "kind": "points_spent", "variables": {"amount": 1}, "dedupe_key": "x"},
    )
    assert response.status_code == 404
    assert (await stranger.get(f"/v1/members/{anna}/messages")).status_code == 404
    till = Api(api.client, await make_key(engine, other, "pos"))
    assert (await till.get("/v1/messages")).status_code == 403


async def test_the_worker_sends_through_smtp_and_keeps_the_history(
    api: Api, worker: Worker, smtp_server: SmtpServer
) -> None:
    with clock.frozen(T0):
        await settle(api, **QUIET_OFF, notifications={"points_earned": {"enabled": True}})
        address = mailbox("earned")
        external = uuid4().hex
        anna = await member(api, name="Анна", email=address, external_id=external)
        body = purchase_body(external, 123_400, occurred_at=T0.isoformat())
        purchase = await api.post("/v1/purchases", body)
        assert purchase.status_code in (200, 201), purchase.text
        await worker.drain()
        await worker.drain()
    got = to(smtp_server, address)
    assert len(got) == 1, [m["Subject"] for m in got]
    assert plain(got[0]["Subject"]) == "Вам начислено 1 234 балла"
    assert "за покупку на 1 234,00 ₽" in plain(got[0].get_body(("plain",)).get_content())
    assert got[0]["List-Unsubscribe"] is None  # a service message

    listed = (await api.get("/v1/messages", member_id=anna, channel="email")).json()["items"]
    assert [m["kind"] for m in listed] == ["points_earned"] and listed[0]["status"] == "sent"
    detail = (await api.get(f"/v1/messages/{listed[0]['id']}")).json()
    assert [h["status"] for h in detail["history"]] == ["queued", "sent"]
    assert got[0]["Message-ID"] == f"<{listed[0]['id']}@shop.example>"

    with clock.frozen(T0 + timedelta(minutes=5)):
        await worker.drain()  # the event again changes nothing
    assert len(to(smtp_server, address)) == 1


async def test_a_hard_bounce_stops_the_address_a_soft_one_retries(
    api: Api, worker: Worker, smtp_server: SmtpServer
) -> None:
    with clock.frozen(T0):
        await settle(api, **QUIET_OFF)
        gone = await member(api, email=mailbox("bounce"))
        busy = await member(api, email=mailbox("later"))
        bounced = by_channel(await send(api, gone, "b1"))["email"]
        retried = by_channel(await send(api, busy, "r1"))["email"]
        await worker.drain()
        first = (await api.get(f"/v1/messages/{bounced['id']}")).json()
        assert first["status"] == "bounced" and "550" in first["error"]
        soft = (await api.get(f"/v1/messages/{retried['id']}")).json()
        assert soft["status"] == "queued" and soft["attempts"] == 1 and "451" in soft["error"]
        assert soft["due_at"] == "2031-03-03T12:01:00Z"
        after = by_channel(await send(api, gone, "b2"))["email"]
    assert after["status"] == "skipped"
    assert after["error"].startswith("not sent: address suppressed (bounce: ")
    with clock.frozen(T0 + timedelta(minutes=1)):
        await worker.drain()
    soft = (await api.get(f"/v1/messages/{retried['id']}")).json()
    assert soft["attempts"] == 2
    assert soft["due_at"] == "2031-03-03T12:03:00Z"  # 1, then 2 minutes
    history = [h["status"] for h in soft["history"]]
    assert history == ["queued", "retry", "retry"]


async def test_quiet_hours_defer_to_the_members_morning(
    api: Api, worker: Worker, smtp_server: SmtpServer, engine: AsyncEngine
) -> None:
    evening = datetime(2031, 3, 3, 19, 30, tzinfo=UTC)  # 22:30 in Moscow
    with clock.frozen(evening):
        await settle(
            api,
            double_opt_in=False,
            timezone="Europe/Moscow",
            quiet_hours={"start": "21:00", "end": "09:00"},
        )
        address = mailbox("night")
        anna = await member(api, email=address)
        made = by_channel(await send(api, anna, "n1"))
        await worker.drain()
    assert made["email"]["due_at"] == "2031-03-04T06:00:00Z"  # 09:00 in Moscow
    assert made["inbox"]["status"] == "delivered"  # the inbox does not wake anyone
    assert to(smtp_server, address) == []
    with clock.frozen(datetime(2031, 3, 4, 6, 0, tzinfo=UTC)):
        await worker.drain()
    assert len(to(smtp_server, address)) == 1


async def test_a_message_that_could_not_go_in_time_is_skipped_not_sent_late(
    api: Api, worker: Worker, smtp_server: SmtpServer
) -> None:
    """A worker down for longer than ``fresh_hours`` (here 24) does not send the backlog of
    yesterday's news when it comes back; what is still fresh goes."""
    with clock.frozen(T0):
        await settle(api, **QUIET_OFF, fresh_hours=24)
        stale_to, fresh_to = mailbox("stale"), mailbox("fresh")
        stale = by_channel(await send(api, await member(api, email=stale_to), "s1"))
    with clock.frozen(T0 + timedelta(hours=23)):
        fresh = by_channel(await send(api, await member(api, email=fresh_to), "f1"))
    with clock.frozen(T0 + timedelta(hours=24, minutes=1)):
        await worker.drain()
    assert to(smtp_server, stale_to) == [] and len(to(smtp_server, fresh_to)) == 1
    late = (await api.get(f"/v1/messages/{stale['email']['id']}")).json()
    assert late["status"] == "skipped"
    assert late["error"] == (
        "not sent: made 2031-03-03 12:00 UTC, more than 24 hours before it could go"
    )
    assert [h["status"] for h in late["history"]] == ["queued", "skipped"]
    # The inbox copy was delivered when it was made: the member still finds it.
    assert stale["inbox"]["status"] == "delivered"
    assert (await api.get(f"/v1/messages/{fresh['email']['id']}")).json()["status"] == "sent"


async def test_inbox_lists_and_marks_read(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api, email="inbox@shop.example")
    first = by_channel(await send(api, anna, "i1"))["inbox"]
    await send(api, anna, "i2")
    till = Api(api.client, await make_key(engine, program, "pos"))
    page = (await till.get(f"/v1/members/{anna}/messages")).json()
    assert page["unread"] == 2 and len(page["items"]) == 2
    assert plain(page["items"][0]["title"]) == "Списано 300 баллов"
    read = await till.post(f"/v1/members/{anna}/messages/{first['id']}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    page = (await till.get(f"/v1/members/{anna}/messages", unread="true")).json()
    assert page["unread"] == 1 and len(page["items"]) == 1
    other = await member(api, email="inbox-other@shop.example")
    wrong = await till.post(f"/v1/members/{other}/messages/{first['id']}/read")
    assert wrong.status_code == 404


async def test_service_messages_go_before_a_marketing_backlog(
    api: Api, engine: AsyncEngine, smtp_server: SmtpServer
) -> None:
    routes = {Channel.EMAIL: Route(SmtpDeliverer(smtp_config(smtp_server)), Throttle(0), 10)}
    one_at_a_time = MessageSender(engine, routes, batch=1)
    far = T0 + timedelta(days=400)
    with clock.frozen(far):
        # The queue is shared by every program of the database: other tests' e-mail first.
        while await MessageSender(engine, routes).send_due():
            pass
        await settle(api, quiet_hours=None, double_opt_in=False, caps={})
        address = mailbox("first")
        anna = await member(api, email=address)
        granted = await api.post(
            f"/v1/members/{anna}/consents",
            {"changes": [{"channel": "email", "purpose": "marketing", "granted": True}]},
        )
        assert granted.status_code == 200
        news = await api.post(
            "/v1/broadcasts",
            {
                "name": "news",
                "members": [anna],
                "channels": ["email"],
                "variables": {"title": "Новости", "body": "Много новостей"},
            },
        )
        assert news.status_code == 201
        await MessageSender(engine, {}).expand_broadcasts()  # the marketing message, queued
    with clock.frozen(far + timedelta(seconds=1)):
        await send(api, anna, "urgent", channels=["email"])  # queued after it
        await one_at_a_time.send_due()
    [got] = to(smtp_server, address)
    assert plain(got["Subject"]) == "Списано 300 баллов"


async def test_complaints_and_manual_suppressions(api: Api, engine: AsyncEngine) -> None:
    with clock.frozen(T0):
        await settle(api, **QUIET_OFF)
        address = mailbox("spam-report")
        anna = await member(api, email=address)
        added = await api.post(
            "/v1/messaging/suppressions",
            {
                "channel": "email",
                "address": address.upper(),
                "reason": "complaint",
                "detail": "marked as spam",
            },
        )
        assert added.status_code == 201, added.text
        assert added.json()["address"] == address  # stored as members' addresses are
        made = by_channel(await send(api, anna, "after-complaint"))
        listed = (await api.get("/v1/messaging/suppressions", channel="email")).json()["items"]
    assert made["email"]["error"] == "not sent: address suppressed (complaint: marked as spam)"
    assert [s["reason"] for s in listed if s["address"] == address] == ["complaint"]
    for body, field in [
        ({"channel": "fax", "address": address, "reason": "manual"}, "channel"),
        ({"channel": "email", "address": "not-an-address", "reason": "manual"}, "address"),
        ({"channel": "sms", "address": "123456", "reason": "manual"}, "address"),
        ({"channel": "email", "address": address, "reason": "bounce"}, "reason"),
    ]:
        response = await api.post("/v1/messaging/suppressions", body)
        assert response.status_code == 422, (body, response.text)
        fields = [e["field"].removeprefix("body.") for e in response.json()["errors"]]
        assert field in fields, (body, fields)
    removed = await api.delete(f"/v1/messaging/suppressions/email/{address}")
    assert removed.status_code == 204
    assert (await api.delete(f"/v1/messaging/suppressions/email/{address}")).status_code == 404
    with clock.frozen(T0 + timedelta(minutes=1)):
        again = by_channel(await send(api, anna, "after-removal"))
    assert again["email"]["status"] == "queued"
