"""What trying to break messaging found, kept from coming back: consent withdrawn after a
message was made, paused broadcasts, retries that must not go, reports that must not
undo, counts, dedupe keys with LIKE wildcards, damaged tokens and hostile bodies."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.messaging.composition import Outgoing
from kopilka.messaging.domain import Channel
from kopilka.messaging.records import MessageRow
from kopilka.messaging.sender import MessageSender, Route, SmtpDeliverer, Throttle
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.messaging.conftest import SmtpServer
from tests.messaging.test_broadcasts import members
from tests.messaging.test_flow import by_channel, mailbox, member, send, settle, smtp_config, to

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


def sender(engine: AsyncEngine, smtp_server: SmtpServer) -> MessageSender:
    routes = {Channel.EMAIL: Route(SmtpDeliverer(smtp_config(smtp_server)), Throttle(0), 10)}
    return MessageSender(engine, routes)


async def test_an_unsubscribe_stops_what_was_already_queued(
    api: Api, engine: AsyncEngine, smtp_server: SmtpServer
) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        [anna] = await members(api, 1)
        address = (await api.get(f"/v1/members/{anna}")).json()["email"]
        later = (T0 + timedelta(hours=1)).isoformat()
        made = await api.post(
            "/v1/broadcasts",
            {
                "name": "news",
                "members": [anna],
                "channels": ["email"],
                "send_at": later,
                "variables": {"title": "Новости", "body": "Скидки"},
            },
        )
        assert made.status_code == 201
    with clock.frozen(T0 + timedelta(hours=1)):
        await MessageSender(engine, {}).expand_broadcasts()
        [message] = (await api.get("/v1/messages", member_id=anna, channel="email")).json()["items"]
        leave = (await api.get(f"/v1/messages/{message['id']}")).json()["unsubscribe_url"]
        done = await api.client.post(leave.removeprefix("http://127.0.0.1:8000"))
        assert done.status_code == 200
        await sender(engine, smtp_server).send_due()
    assert to(smtp_server, address) == []
    after = (await api.get(f"/v1/messages/{message['id']}")).json()
    assert after["status"] == "skipped"
    assert after["error"] == "not sent: consent withdrawn since the message was made"


async def test_a_paused_broadcast_holds_its_queued_messages(
    api: Api, engine: AsyncEngine, smtp_server: SmtpServer
) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        people = await members(api, 3)
        made = await api.post(
            "/v1/broadcasts",
            {
                "name": "news",
                "members": people,
                "channels": ["email"],
                "variables": {"title": "Новости", "body": "Скидки"},
            },
        )
        broadcast = made.json()["id"]
        await MessageSender(engine, {}).expand_broadcasts()
        assert (await api.post(f"/v1/broadcasts/{broadcast}/pause")).status_code == 200
        await sender(engine, smtp_server).send_due()
        held = (await api.get(f"/v1/broadcasts/{broadcast}")).json()["counts"]
        assert held == {"queued": 3}
        await api.post(f"/v1/broadcasts/{broadcast}/resume")
        await sender(engine, smtp_server).send_due()
    assert (await api.get(f"/v1/broadcasts/{broadcast}")).json()["counts"] == {"sent": 3}


async def compose(
    engine: AsyncEngine,
    program: ProgramContext,
    member_id: str,
    amount: object,
    channels: list[str],
) -> list[MessageRow]:
    async with transaction(engine) as conn:
        return await messaging_service.compose(
            conn,
            program,
            [
                Outgoing(
                    "points_spent",
                    UUID(member_id),
                    f"event:{uuid4()}",
                    {"amount": amount},
                    channels=[Channel(c) for c in channels],
                )
            ],
            clock.now(),
        )


async def test_what_may_not_be_sent_again(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, email=mailbox("retry"))
        saved = await api.put(
            "/v1/templates/points_spent/ru", {"parts": {"text": "{{ amount|money('RUB') }}"}}
        )
        assert saved.status_code == 200
        # A value the saved template cannot format, from an event: the message fails when
        # made (the API refuses such a call with a 422 instead).
        made = {
            m.channel: {"id": str(m.id), "status": m.status, "error": m.error}
            for m in await compose(engine, program, anna, "many", ["email"])
        }
    assert made["email"]["status"] == "failed" and made["email"]["error"].startswith("template:")
    refused = await api.post(f"/v1/messages/{made['email']['id']}/retry")
    assert refused.status_code == 409 and "did not render" in refused.json()["detail"]
    inbox = by_channel(await send(api, anna, "ok", channels=["inbox"]))["inbox"]
    assert (await api.post(f"/v1/messages/{inbox['id']}/retry")).status_code == 409


async def test_a_dedupe_key_is_one_key(api: Api) -> None:
    anna = await member(api, email=mailbox("like"))
    await send(api, anna, "z9q.1", channels=["inbox"])
    first = await send(api, anna, "z9q", channels=["inbox"])
    again = await send(api, anna, "z9q", channels=["inbox"])
    assert len(first) == 1 and [m["id"] for m in again] == [m["id"] for m in first]
    for key in ("%", "a#1", "a b", "ключ"):
        body = {
            "member_id": anna,
            "kind": "points_spent",
            "variables": {"amount": 1},
            "dedupe_key": key,
        }
        refused = await api.post("/v1/messages", body)
        assert refused.status_code == 422, key
        assert refused.json()["errors"][0]["field"].removeprefix("body.") == "dedupe_key"


async def test_the_inbox_counts_only_what_it_lists(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await member(api, email=mailbox("unread"))
    await api.put("/v1/templates/points_spent/ru", {"parts": {"text": "{{ amount|money('RUB') }}"}})
    [made] = await compose(engine, program, anna, "x", ["inbox"])
    failed = {"id": str(made.id), "status": made.status}
    assert failed["status"] == "failed"
    page = (await api.get(f"/v1/members/{anna}/messages")).json()
    assert (page["unread"], page["items"]) == (0, [])
    read = await api.post(f"/v1/members/{anna}/messages/{failed['id']}/read")
    assert read.status_code == 404


async def test_damaged_tokens_and_hostile_bodies_are_refused(api: Api) -> None:
    def token(body: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=") + ".AAAA"

    for body in (
        {"a": "unsubscribe", "p": 123},
        {"a": "unsubscribe", "p": 1.5},
        [1],
        "x",
        {"a": "unsubscribe", "p": {"x": 1}},
    ):
        for page in ("u", "p", "confirm", "c"):
            response = await api.client.get(f"/m/{page}/{token(body)}")
            assert response.status_code == 404, (page, body)
        report = await api.client.post(f"/m/reports/{token(body)}", json={"id": "1"})
        assert report.status_code == 404
    deep = "[" * 100_000 + "]" * 100_000
    nested = await api.client.post(
        f"/m/reports/{token({'a': 'report', 'p': '0' * 32})}",
        content=deep,
        headers={"content-type": "application/json"},
    )
    assert nested.status_code == 404  # the URL is checked before the body is read


async def test_only_a_refused_recipient_is_a_bounce(
    api: Api, engine: AsyncEngine, smtp_server: SmtpServer
) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, email=mailbox("datafail"))
        made = by_channel(await send(api, anna, "content", channels=["email"]))["email"]
        await sender(engine, smtp_server).send_due()
        again = by_channel(await send(api, anna, "content-2", channels=["email"]))["email"]
    failed = (await api.get(f"/v1/messages/{made['id']}")).json()
    assert failed["status"] == "failed" and "554" in failed["error"]
    assert again["status"] == "queued"  # the address is not suppressed
    assert (await api.get("/v1/messaging/suppressions")).json()["items"] == []


COSTLY = [
    "{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(22) }}",
    "{% for i in range(1000) recursive %}{% if loop.depth < 3 %}{{ loop(range(1000)) }}"
    "{% endif %}{% endfor %}",
    "{% set a = 'x'*1000 %}" + "{% set a = a ~ a %}" * 20 + "{{ a|length }}",
    "{% set a = 'x'*1000 %}" + "{% set a = a + a %}" * 20 + "{{ a|length }}",
    "{% set a = 10**64 %}" + "{% set a = a*a %}" * 18 + "{{ a }}",
    "{{ 'a'.center(10**9) }}",
    "{{ '{:>1000000000}'.format('a') }}",
    "{{ [1]|tojson(indent=100000000) }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% if amount %}" * 120 + "x" + "{% endif %}" * 120,
]


async def test_a_costly_template_is_refused_quickly(api: Api) -> None:
    for source in COSTLY:
        started = time.monotonic()
        response = await api.post("/v1/templates/points_spent/preview", {"parts": {"text": source}})
        assert response.status_code == 422, (source, response.text)
        assert response.json()["errors"][0]["field"].startswith(("variables", "parts"))
        # A budget of 0.25 s per part: far below a second even on a slow machine.
        assert time.monotonic() - started < 5, source


async def test_a_broken_broadcast_does_not_hold_back_other_programs(
    api: Api, engine: AsyncEngine, smtp_server: SmtpServer
) -> None:
    other = await make_program(engine)
    theirs = Api(api.client, await make_key(engine, other, "admin"))
    with clock.frozen(T0):
        await settle(theirs, quiet_hours=None)
        trap = (
            "{% if member.name != 'Анна' %}{% set x = 1 %}{% set x.y = 2 %}{% endif %}{{ title }}"
        )
        saved = await theirs.put("/v1/templates/broadcast/ru", {"parts": {"subject": trap}})
        assert saved.status_code == 200, saved.text  # renders with the sample member
        victim = await member(theirs, name="Борис", email=mailbox("trap"))
        made = await theirs.post(
            "/v1/broadcasts",
            {
                "name": "trap",
                "members": [victim],
                "channels": ["email"],
                "variables": {"title": "t", "body": "b"},
            },
        )
        assert made.status_code == 201
        await settle(api, quiet_hours=None)
        anna = await member(api, email=mailbox("not-held"))
        ours = by_channel(await send(api, anna, "urgent", channels=["email"]))["email"]
        await sender(engine, smtp_server).send_due()
    assert (await api.get(f"/v1/messages/{ours['id']}")).json()["status"] == "sent"
    [failed] = (await theirs.get("/v1/messages", member_id=victim)).json()["items"]
    assert failed["status"] == "failed" and failed["error"].startswith("template: subject")


async def test_a_suppressed_address_gets_no_test_and_confirmations_are_not_tests(
    api: Api,
) -> None:
    address = mailbox("no-tests")
    await api.post(
        "/v1/messaging/suppressions",
        {"channel": "email", "address": address, "reason": "complaint"},
    )
    refused = await api.post("/v1/templates/points_spent/test", {"channel": "email", "to": address})
    assert refused.status_code == 422 and "suppressed (complaint)" in refused.json()["detail"]
    for target in (address.replace("no-tests", "ok") + "\n", "+79161234567\n"):
        channel = "sms" if target.startswith("+") else "email"
        response = await api.post(
            "/v1/templates/points_spent/test", {"channel": channel, "to": target}
        )
        assert response.status_code == 422, target
    phish = await api.post(
        "/v1/templates/consent_confirm/test",
        {
            "channel": "email",
            "to": mailbox("phish"),
            "variables": {"confirm_url": "https://evil.example/x"},
        },
    )
    assert phish.status_code == 422 and phish.json()["errors"][0]["field"] == "kind"


async def test_cursors_and_text_that_are_not_ours_are_422(api: Api) -> None:
    anna = await member(api, email=mailbox("cursor"))
    for forged in (
        "2026-01-01|01a24400-0000-7000-8000-000000000001",
        "9999-12-31T23:59:59.999999-23:59|01a24400-0000-7000-8000-000000000001",
    ):
        cursor = base64.urlsafe_b64encode(forged.encode()).decode()
        for path in ("/v1/messages", "/v1/broadcasts", f"/v1/members/{anna}/messages"):
            response = await api.get(path, cursor=cursor)
            assert response.status_code == 422, (path, forged)
    lone = await api.client.post(
        "/v1/messages",
        content=b'{"member_id": "' + anna.encode() + b'", "kind": "points_spent", '
        b'"variables": {"amount": 1, "x": "\\ud800"}, "dedupe_key": "s"}',
        headers={**api.headers, "content-type": "application/json"},
    )
    assert lone.status_code == 422
