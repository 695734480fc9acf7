"""The worker's sender on the other channels: web push to a member's stored subscriptions
(decrypted by the test's browser; an ended subscription is removed), SMS through a local
gateway with delivery reports at the signed callback URL (generic JSON and SMS.ru's form)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.config import Settings
from kopilka.kit.clock import clock
from kopilka.messaging.domain import Channel
from kopilka.messaging.push import PushChannel, PushConfig, PushFailed, PushMessage, new_vapid_keys
from kopilka.messaging.sender import (
    MessageSender,
    PublicResolver,
    PushDeliverer,
    Route,
    SmsDeliverer,
    Throttle,
)
from kopilka.messaging.sms import SmsConfig, gateway
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.messaging.conftest import Browser, Gateway, PushService
from tests.messaging.test_flow import member, settle

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as found:
        yield found


async def send(api: Api, member_id: str, key: str, channel: str) -> dict[str, Any]:
    response = await api.post(
        "/v1/messages",
        {
            "member_id": member_id,
            "kind": "points_spent",
            "variables": {"amount": 42},
            "dedupe_key": key,
            "channels": [channel],
        },
    )
    assert response.status_code == 202, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items[0] if len(items) == 1 else {"items": items}


def subscription_body(browser: Browser, endpoint: str) -> dict[str, Any]:
    found = browser.subscription(endpoint)
    return {"endpoint": endpoint, "keys": {"p256dh": found.p256dh, "auth": found.auth}}


async def test_push_reaches_each_browser_and_an_ended_one_is_dropped(
    api: Api,
    engine: AsyncEngine,
    program: ProgramContext,
    push_service: PushService,
    session: aiohttp.ClientSession,
) -> None:
    keys = new_vapid_keys()
    config = PushConfig(keys.private_key, keys.public_key, "mailto:ops@shop.example")
    routes = {Channel.PUSH: Route(PushDeliverer(PushChannel(config, session)), Throttle(0), 10)}
    sender = MessageSender(engine, routes)
    # The local push service is on 127.0.0.1: a server that allows private endpoints.
    local = create_app(Settings(push_allow_private_endpoints=True), engine=engine)
    transport = httpx.ASGITransport(app=local)
    client = httpx.AsyncClient(transport=transport, base_url="http://kopilka.test")
    till = Api(client, await make_key(engine, program, "pos"))
    phone, laptop = Browser.new(), Browser.new()
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, name="Anna", language="en")
        for browser, kind in ((phone, "ok"), (laptop, "gone")):
            body = subscription_body(browser, f"{push_service.base}/push/{kind}")
            added = await till.post(f"/v1/members/{anna}/push-subscriptions", body)
            assert added.status_code == 201, added.text
        again = await till.post(
            f"/v1/members/{anna}/push-subscriptions",
            subscription_body(phone, f"{push_service.base}/push/ok"),
        )
        assert again.status_code == 201  # the same browser again replaces its keys
        listed = (await till.get(f"/v1/members/{anna}/push-subscriptions")).json()
        assert len(listed["items"]) == 2
        made = await send(api, anna, "push-1", "push")
        assert len(made["items"]) == 2  # one message per browser
        await sender.send_due()
    assert len(push_service.received) == 2
    ok = next(r for r in push_service.received if r["kind"] == "ok")
    read = phone.read(ok["body"])
    assert read["title"] == "−42\xa0points" and read["tag"] == "points_spent"
    statuses = {
        m["status"] for m in (await api.get("/v1/messages", member_id=anna)).json()["items"]
    }
    assert statuses == {"sent", "failed"}  # the phone, the laptop
    left = (await till.get(f"/v1/members/{anna}/push-subscriptions")).json()["items"]
    assert [s["endpoint"] for s in left] == [f"{push_service.base}/push/ok"]
    assert listed["public_key"] is None  # the server here has no VAPID keys configured

    bad = await till.post(
        f"/v1/members/{anna}/push-subscriptions",
        {"endpoint": "ftp://x", "keys": {"p256dh": "short", "auth": "x"}},
    )
    assert bad.status_code == 422
    fields = {e["field"].removeprefix("body.") for e in bad.json()["errors"]}
    assert {"endpoint", "keys.p256dh", "keys.auth"} <= fields
    gone = await till.delete(f"/v1/members/{anna}/push-subscriptions/{left[0]['id']}")
    assert gone.status_code == 204
    assert (
        await till.delete(f"/v1/members/{anna}/push-subscriptions/{left[0]['id']}")
    ).status_code == 404
    await client.aclose()


async def test_push_endpoints_must_be_public_https(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    till = Api(api.client, await make_key(engine, program, "pos"))
    anna = await member(api, name="Anna")
    keys = subscription_body(Browser.new(), "https://push.example/x")["keys"]
    for endpoint, said in [
        ("http://push.example/x", "https://"),
        ("https://127.0.0.1:9911/internal-admin", "is an address"),
        ("https://169.254.169.254/latest/meta-data/", "is an address"),
        ("https://[::1]/x", "is an address"),
        ("https://10.0.0.5/x", "is an address"),
        ("https://１２７.０.０.１:8443/full", "is an address"),
        ("https://2130706433/", "is an address"),
        ("https://127.1/", "is an address"),
        ("https://0177.0.0.1/", "is an address"),
        ("https://[64:ff9b::7f00:1]/", "is an address"),
        ("https://8.8.8.8/", "is an address"),
        ("https://push.example:99999/", "not a URL"),
        ("https://localhost./x", "not a public push service"),
        ("https://localhost/x", "not a public push service"),
        ("https://metadata.google.internal/x", "not a public push service"),
    ]:
        refused = await till.post(
            f"/v1/members/{anna}/push-subscriptions", {"endpoint": endpoint, "keys": keys}
        )
        assert refused.status_code == 422, (endpoint, refused.text)
        assert said in refused.json()["detail"], (endpoint, refused.json())
        assert refused.json()["errors"][0]["field"] == "endpoint"
    ok = await till.post(
        f"/v1/members/{anna}/push-subscriptions",
        {"endpoint": "https://fcm.googleapis.com/fcm/send/abc", "keys": keys},
    )
    assert ok.status_code == 201, ok.text


async def test_sms_is_sent_and_its_delivery_reported(
    api: Api, engine: AsyncEngine, local_gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    config = SmsConfig(provider="generic", url=local_gateway.url, sender="Shop", token="t")
    routes = {Channel.SMS: Route(SmsDeliverer(gateway(config, session)), Throttle(0), 10)}
    sender = MessageSender(engine, routes)
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, phone="+79161234567")
        made = await send(api, anna, "sms-1", "sms")
        await sender.send_due()
    [request] = local_gateway.received
    assert request["body"]["to"] == "+79161234567"
    assert request["body"]["id"] == made["id"]
    sent = (await api.get(f"/v1/messages/{made['id']}")).json()
    assert sent["status"] == "sent"

    url = (await api.get("/v1/messaging/callbacks")).json()["sms"]
    path = url.removeprefix("http://127.0.0.1:8000")
    assert path.startswith("/m/reports/")
    with clock.frozen(T0 + timedelta(seconds=30)):
        report = await api.client.post(path, json={"id": "gw-1", "status": "delivered"})
    assert report.status_code == 200 and report.text == "100"
    detail = (await api.get(f"/v1/messages/{made['id']}")).json()
    assert detail["status"] == "delivered"
    assert [h["status"] for h in detail["history"]] == ["queued", "sent", "delivered"]

    replayed = await api.client.post(path, json={"id": "gw-1", "status": "delivered"})
    assert replayed.status_code == 200
    assert len((await api.get(f"/v1/messages/{made['id']}")).json()["history"]) == 3
    other = Api(api.client, await make_key(engine, await make_program(engine), "admin"))
    theirs = (await other.get("/v1/messaging/callbacks")).json()["sms"]
    foreign = await api.client.post(
        theirs.removeprefix("http://127.0.0.1:8000"), json={"id": "gw-1", "status": "failed"}
    )
    assert foreign.status_code == 200  # a report of theirs: nothing of ours changes
    forged = await api.client.post(path[:-4] + "AAAA", json={"id": "gw-1", "status": "failed"})
    assert forged.status_code == 404
    bad = await api.client.post(
        path, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422
    assert (await api.get(f"/v1/messages/{made['id']}")).json()["status"] == "delivered"


async def test_an_smsru_report_marks_the_message_undelivered(
    api: Api, engine: AsyncEngine, local_gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    local_gateway.answer = (
        200,
        '{"status": "OK", "sms": {"79160000001": {"status": "OK", "status_code": 100, '
        '"sms_id": "000000-10000001"}}}',
    )
    config = SmsConfig(provider="smsru", url=local_gateway.url, sender=None, token="api-id")
    routes = {Channel.SMS: Route(SmsDeliverer(gateway(config, session)), Throttle(0), 10)}
    with clock.frozen(T0):
        await settle(api, quiet_hours=None)
        anna = await member(api, phone="+79160000001")
        made = await send(api, anna, "smsru-1", "sms")
        await MessageSender(engine, routes).send_due()
        url = (await api.get("/v1/messaging/callbacks")).json()["sms"]
        form = {"data[0]": "sms_status\n000000-10000001\n106\n1700000000"}
        report = await api.client.post(url.removeprefix("http://127.0.0.1:8000"), data=form)
    assert report.status_code == 200 and report.text == "100"
    detail = (await api.get(f"/v1/messages/{made['id']}")).json()
    assert (detail["status"], detail["error"]) == ("failed", "the phone refused it")


async def test_a_push_host_that_resolves_to_a_private_address_is_not_reached(
    push_service: PushService,
) -> None:
    keys = new_vapid_keys()
    config = PushConfig(keys.private_key, keys.public_key, "mailto:ops@shop.example")
    connector = aiohttp.TCPConnector(resolver=PublicResolver())
    async with aiohttp.ClientSession(connector=connector) as guarded:
        channel = PushChannel(config, guarded)
        # "localhost" is a name: it passes a check of literal addresses, not the resolver.
        endpoint = push_service.base.replace("127.0.0.1", "localhost") + "/push/ok"
        with pytest.raises(PushFailed) as refused:
            await channel.send(Browser.new().subscription(endpoint), PushMessage("t", "b"))
    assert refused.value.permanent and refused.value.gone
    assert "resolves to 127.0.0.1" in refused.value.detail
    assert push_service.received == []
