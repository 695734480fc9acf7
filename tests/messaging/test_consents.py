"""Consent per channel and purpose: marketing needs a granted consent, double opt-in for
e-mail through a signed confirmation link, one-click unsubscribe (RFC 8058) and the
preference page, every change kept with its source; the profile's flags follow both ways."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.messaging.consumers import CONSUMER
from kopilka.messaging.sender import MessageSender
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.outbox.consumers import registry
from kopilka.worker.runner import Worker
from tests.conftest import Api
from tests.messaging.test_flow import mailbox, member, settle

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
outbox = table(OutboxEvent)
LINK = re.compile(r"http://127\.0\.0\.1:8000(/m/[a-z]+/[A-Za-z0-9_\-.]+)")


def worker(engine: AsyncEngine) -> Worker:
    """The messaging consumer and a sender with no channel: messages are made, not sent."""
    consumer = registry.get(CONSUMER)
    assert consumer is not None
    return Worker(engine, [consumer], senders=[MessageSender(engine, {})])


async def broadcast(api: Api, engine: AsyncEngine, members: list[str]) -> list[dict[str, Any]]:
    body = {
        "name": "Coffee week",
        "variables": {"title": "Неделя кофе", "body": "Двойные баллы на кофе"},
        "members": members,
        "channels": ["email"],
    }
    response = await api.post("/v1/broadcasts", body)
    assert response.status_code == 201, response.text
    await worker(engine).drain()
    listed = await api.get("/v1/messages", kind="broadcast", channel="email")
    return [m for m in listed.json()["items"] if m["broadcast_id"] == response.json()["id"]]


async def consents(api: Api, member_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/members/{member_id}/consents")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def state(found: dict[str, Any], channel: str, purpose: str) -> dict[str, Any]:
    return next(c for c in found["items"] if (c["channel"], c["purpose"]) == (channel, purpose))


async def change(api: Api, member_id: str, *changes: dict[str, Any]) -> httpx.Response:
    return await api.post(f"/v1/members/{member_id}/consents", {"changes": list(changes)})


def link_in(text: str, kind: str) -> str:
    found = LINK.search(text)
    assert found is not None and found.group(1).startswith(f"/m/{kind}/"), text
    return found.group(1)


async def test_marketing_waits_for_the_confirmed_address(api: Api, engine: AsyncEngine) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None, consent_text_version="2031-01")
        anna = await member(api, name="Анна", email=mailbox("optin"))
        before = await consents(api, anna)
        assert state(before, "email", "marketing")["allowed"] is False
        assert state(before, "email", "service")["allowed"] is True  # none needed

        granted = await change(
            api, anna, {"channel": "email", "purpose": "marketing", "granted": True}
        )
        assert granted.status_code == 200, granted.text
        now = state(granted.json(), "email", "marketing")
        assert (now["status"], now["allowed"], now["text_version"]) == ("pending", False, "2031-01")
        profile = (await api.get(f"/v1/members/{anna}")).json()
        assert profile["consents"]["email"] is True  # asked for, waiting for the address

        sent = (await api.get("/v1/messages", member_id=anna, kind="consent_confirm")).json()
        assert [m["channel"] for m in sent["items"]] == ["email"]
        confirm = link_in(sent["items"][0]["body"], "confirm")
        [before_confirming] = await broadcast(api, engine, [anna])
    assert before_confirming["status"] == "skipped"
    assert before_confirming["error"] == "not sent: no consent"

    # A link scanner's GET confirms nothing; the member's button does.
    shown = await api.client.get(confirm)
    assert shown.status_code == 200 and "Подтвердить" in shown.text
    assert "script-src" not in shown.headers["content-security-policy"]
    assert state(await consents(api, anna), "email", "marketing")["status"] == "pending"
    with clock.frozen(T0 + timedelta(minutes=10)):
        done = await api.client.post(confirm)
        assert done.status_code == 200 and "подтверждён" in done.text
        after = await consents(api, anna)
        [after_confirming] = await broadcast(api, engine, [anna])
    assert state(after, "email", "marketing")["status"] == "granted"
    assert [(h["status"], h["source"]) for h in after["history"]] == [
        ("granted", "confirmation"),
        ("pending", "api"),
    ]
    assert after_confirming["status"] == "queued"
    again = await api.client.post(confirm)
    assert "подтверждён" in again.text  # already confirmed: nothing changes
    assert len((await consents(api, anna))["history"]) == 2


async def test_one_click_unsubscribe(api: Api, engine: AsyncEngine) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, email=mailbox("leave"), language="en")
        await change(
            api,
            anna,
            {"channel": "email", "purpose": "marketing", "granted": True, "confirmed": True},
        )
        [message] = await broadcast(api, engine, [anna])
        detail = (await api.get(f"/v1/messages/{message['id']}")).json()
    leave = link_in(detail["unsubscribe_url"], "u")

    page = await api.client.get(leave)
    assert page.status_code == 200 and "Unsubscribe" in page.text
    assert state(await consents(api, anna), "email", "marketing")["status"] == "granted"

    tampered = leave[:-3] + ("AAA" if not leave.endswith("AAA") else "BBB")
    refused = await api.client.post(tampered, content="List-Unsubscribe=One-Click")
    assert refused.status_code == 404
    assert state(await consents(api, anna), "email", "marketing")["status"] == "granted"

    with clock.frozen(T0 + timedelta(hours=1)):
        # What a mail client sends for List-Unsubscribe-Post (RFC 8058).
        done = await api.client.post(
            leave,
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200 and "no more news" in done.text
        [later] = await broadcast(api, engine, [anna])
    now = await consents(api, anna)
    assert state(now, "email", "marketing")["status"] == "withdrawn"
    assert now["history"][0]["source"] == "unsubscribe"
    assert (await api.get(f"/v1/members/{anna}")).json()["consents"]["email"] is False
    assert later["status"] == "skipped" and later["error"] == "not sent: no consent"


async def test_the_preference_page_sets_channels_and_purposes(api: Api) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, email=mailbox("prefs"), phone="+79161234567")
        sent = await api.post(
            "/v1/messages",
            {
                "member_id": anna,
                "kind": "points_spent",
                "variables": {"amount": 5},
                "dedupe_key": "prefs",
                "channels": ["email"],
            },
        )
        message = sent.json()["items"][0]
        detail = (await api.get(f"/v1/messages/{message['id']}")).json()
    page_path = link_in(detail["unsubscribe_url"], "p")
    shown = await api.client.get(page_path)
    assert shown.status_code == 200
    assert 'name="service.email" value="on" checked' in shown.text
    assert 'name="marketing.email" value="on" checked' not in shown.text

    with clock.frozen(T0 + timedelta(minutes=1)):
        saved = await api.client.post(
            page_path,
            content="marketing.sms=on&service.email=on",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert saved.status_code == 200 and "Сохранено" in saved.text
    now = await consents(api, anna)
    allowed = {(c["channel"], c["purpose"]): c["allowed"] for c in now["items"]}
    assert allowed == {
        ("email", "service"): True,
        ("email", "marketing"): False,
        ("sms", "service"): False,
        ("sms", "marketing"): True,
        ("push", "service"): False,
        ("push", "marketing"): False,
    }
    assert {h["source"] for h in now["history"]} == {"preferences"}
    assert (await api.get(f"/v1/members/{anna}")).json()["consents"] == {
        "email": False,
        "sms": True,
        "push": False,
    }
    opted_out = await api.post(
        "/v1/messages",
        {
            "member_id": anna,
            "kind": "points_spent",
            "variables": {"amount": 5},
            "dedupe_key": "after-prefs",
            "channels": ["sms"],
        },
    )
    assert opted_out.json()["items"][0]["error"] == "not sent: opted out"


async def test_profile_flags_reach_the_consents_through_events(
    api: Api, engine: AsyncEngine
) -> None:
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(
            api, email=mailbox("flags"), phone="+79161230000", consents={"email": True, "sms": True}
        )
        await worker(engine).drain()
        now = await consents(api, anna)
        assert state(now, "email", "marketing")["status"] == "pending"  # double opt-in
        assert state(now, "sms", "marketing")["status"] == "granted"
        assert {h["source"] for h in now["history"]} == {"registration"}
        confirm = (await api.get("/v1/messages", member_id=anna, kind="consent_confirm")).json()
        assert len(confirm["items"]) == 1

        patched = await api.patch(f"/v1/members/{anna}", {"consents": {"email": True}})
        assert patched.status_code == 200
        await worker(engine).drain()
        await worker(engine).drain()  # the event seen again changes nothing
    now = await consents(api, anna)
    assert state(now, "sms", "marketing")["status"] == "withdrawn"
    assert state(now, "email", "marketing")["status"] == "pending"
    assert (now["history"][0]["channel"], now["history"][0]["source"]) == ("sms", "profile")
    assert len(now["history"]) == 3


async def test_bad_consent_input_is_named(api: Api) -> None:
    anna = await member(api, email=mailbox("bad"))
    for body, field in [
        ({"channel": "fax", "purpose": "marketing", "granted": True}, "changes.0.channel"),
        ({"channel": "email", "purpose": "spam", "granted": True}, "changes.0.purpose"),
        ({"channel": "email", "purpose": "marketing", "granted": "yes"}, "changes.0.granted"),
        ({"channel": "inbox", "purpose": "marketing", "granted": True}, "changes.0.channel"),
        (
            {"channel": "email", "purpose": "marketing", "granted": True, "source": "confirmation"},
            "changes.0.source",
        ),
    ]:
        response = await change(api, anna, body)
        assert response.status_code == 422, response.text
        assert field in [e["field"].removeprefix("body.") for e in response.json()["errors"]]
    missing = await change(
        api,
        "00000000-0000-0000-0000-000000000001",
        {"channel": "email", "purpose": "marketing", "granted": True},
    )
    assert missing.status_code == 404
    assert (await consents(api, anna))["history"] == []


async def test_every_change_is_a_consent_changed_event(api: Api, engine: AsyncEngine) -> None:
    with clock.frozen(T0):
        anna = await member(api, email=mailbox("event"))
        await change(
            api, anna, {"channel": "sms", "purpose": "marketing", "granted": True, "source": "app"}
        )
        await change(api, anna, {"channel": "sms", "purpose": "marketing", "granted": False})
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox.c.payload)
            .where(outbox.c.member_id == UUID(anna), outbox.c.topic == "consent.changed")
            .order_by(outbox.c.id)
        )
        payloads = [dict(r[0]) for r in rows]
    assert [(p["status"], p["previous_status"], p["source"]) for p in payloads] == [
        ("granted", None, "app"),
        ("withdrawn", "granted", "api"),
    ]


async def test_ticking_the_box_again_and_again_sends_one_confirmation_a_day(api: Api) -> None:
    """Unticking and ticking marketing e-mail must not make the program a mail bomb: one
    confirmation per member and address in any 24 hours (the first link still works)."""
    on = {"channel": "email", "purpose": "marketing", "granted": True}
    off = {**on, "granted": False}
    address = mailbox("toggle")

    async def confirmations() -> list[dict[str, Any]]:
        found = await api.get("/v1/messages", member_id=anna, kind="consent_confirm")
        items: list[dict[str, Any]] = found.json()["items"]
        return items

    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, name="Анна", email=address)
        for _ in range(5):
            assert (await change(api, anna, on)).status_code == 200
            assert (await change(api, anna, off)).status_code == 200
        granted = await change(api, anna, on)
        assert state(granted.json(), "email", "marketing")["status"] == "pending"
        [first] = await confirmations()
    with clock.frozen(T0 + timedelta(hours=13)):  # another day, but not a day later
        await change(api, anna, off)
        await change(api, anna, on)
        assert len(await confirmations()) == 1
    with clock.frozen(T0 + timedelta(days=1, minutes=1)):
        await change(api, anna, off)
        await change(api, anna, on)
        await change(api, anna, off)
        await change(api, anna, on)
        assert len(await confirmations()) == 2
    assert {m["to"] for m in await confirmations()} == {address}
    done = await api.client.post(link_in(first["body"], "confirm"))
    assert done.status_code == 200 and "подтверждён" in done.text
    assert state(await consents(api, anna), "email", "marketing")["status"] == "granted"
