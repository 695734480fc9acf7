"""The console's webhooks: an endpoint made, edited, pinged, its secret rotated and it
deleted from the pages, with a real local receiver and the worker's sender."""

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.config import get_settings
from kopilka.programs.service import ProgramContext
from kopilka.webhooks.sender import WebhookSender
from kopilka.worker.runner import Worker
from tests.conftest import Api, make_program
from tests.web.conftest import Browser, console_as
from tests.webhooks.receiver import Receiver, verify

SECRET = re.compile(r'id="webhook-secret">(whsec_[^<]+)<')


@pytest.fixture(autouse=True)
def private_urls_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver listens on 127.0.0.1: the console's app allows private webhook URLs."""
    allowed = get_settings().model_copy(update={"webhook_allow_private_urls": True})
    monkeypatch.setattr("kopilka.app.get_settings", lambda: allowed)


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


def secret_of(page: str) -> str:
    found = SECRET.search(page)
    assert found, "the page shows the secret"
    return found.group(1)


async def made(browser: Browser, url: str, **fields: str) -> tuple[str, str]:
    """A webhook made from the page: (its id, its secret)."""
    answer = await browser.post(
        "/console/webhooks/new",
        {"url": url, "event_types": "member.updated", "enabled": "true"} | fields,
    )
    assert answer.status_code == 200, answer.text
    hook_id = re.search(r'href="/console/webhooks/([0-9a-f-]{36})"', answer.text)
    assert hook_id
    return hook_id.group(1), secret_of(answer.text)


async def test_made_from_the_page_with_its_secret_shown_once(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    hook_id, secret = await made(browser, "https://hooks.shop.example/kopilka")
    assert secret.startswith("whsec_")
    listed = await browser.get("/console/webhooks")
    assert "https://hooks.shop.example/kopilka" in listed.text and secret not in listed.text
    page = await browser.get(f"/console/webhooks/{hook_id}")
    assert page.status_code == 200 and secret not in page.text
    stored = (await api.get(f"/v1/webhooks/{hook_id}")).json()
    assert stored["event_types"] == ["member.updated"] and stored["enabled"] is True
    rotated = await browser.post(f"/console/webhooks/{hook_id}/rotate-secret")
    assert rotated.status_code == 200 and secret_of(rotated.text) != secret
    assert secret_of(rotated.text) not in (await browser.get(f"/console/webhooks/{hook_id}")).text


async def test_bad_input_is_shown_and_nothing_is_made_or_changed(
    browser: Browser, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    refused = await browser.post(
        "/console/webhooks/new", {"url": "ftp://files.example", "event_types": "*"}
    )
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text
    assert "ftp://files.example" in refused.text
    assert (await api.get("/v1/webhooks")).json()["items"] == []
    hook_id, _ = await made(browser, "https://a.example/hook")
    bad = await browser.post(
        f"/console/webhooks/{hook_id}/edit",
        {"url": "https://a.example/hook", "event_types": "no way"},
    )
    assert bad.status_code == 422 and "no way" in bad.text
    assert (await api.get(f"/v1/webhooks/{hook_id}")).json()["event_types"] == ["member.updated"]
    edited = await browser.post(
        f"/console/webhooks/{hook_id}/edit",
        {
            "url": "https://b.example/hook",
            "event_types": "points.*, tier.upgraded",
            "description": "CRM sync",
        },
    )
    assert edited.status_code == 303
    now = (await api.get(f"/v1/webhooks/{hook_id}")).json()
    assert now["url"] == "https://b.example/hook" and now["enabled"] is False  # unticked
    assert now["event_types"] == ["points.*", "tier.upgraded"]
    off = await browser.post(f"/console/webhooks/{hook_id}/ping")
    assert off.status_code == 409 and "enable it first" in off.text
    deleted = await browser.post(f"/console/webhooks/{hook_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/console/webhooks"
    assert (await api.get(f"/v1/webhooks/{hook_id}")).status_code == 404


async def test_a_ping_is_delivered_and_redelivered(
    browser: Browser,
    api: Api,
    engine: AsyncEngine,
    program: ProgramContext,
    receiver: Receiver,
    sender: WebhookSender,
) -> None:
    await console_as(browser, engine, program, Role.OWNER)
    hook_id, secret = await made(browser, receiver.url)
    pinged = await browser.post(f"/console/webhooks/{hook_id}/ping")
    assert pinged.status_code == 303
    page = await browser.get(f"/console/webhooks/{hook_id}")
    assert "webhook.ping" in page.text and "Waiting to be sent" in page.text
    await Worker(engine, [], sender=sender).drain()
    ping = receiver.received[-1]
    assert json.loads(ping.body)["type"] == "webhook.ping"
    assert verify(secret, ping.headers, ping.body)  # the secret the page showed signs it
    deliveries = (await api.get(f"/v1/webhooks/{hook_id}/deliveries")).json()["items"]
    assert [(d["status"], d["last_status_code"]) for d in deliveries] == [("delivered", 200)]
    page = await browser.get(f"/console/webhooks/{hook_id}", status="delivered")
    link = f"/console/webhooks/{hook_id}/deliveries/{deliveries[0]['id']}"
    assert link in page.text and "Delivered" in page.text
    delivery = await browser.get(link)
    assert delivery.status_code == 200 and "webhook.ping" in delivery.text
    assert '{"ok": true}' in delivery.text.replace("&#34;", '"')  # the receiver's answer
    again = await browser.post(f"{link}/redeliver")
    assert again.status_code == 303 and again.headers["location"] == link
    await Worker(engine, [], sender=sender).drain()
    assert len(receiver.received) == 2
    after = (await api.get(f"/v1/webhooks/{hook_id}/deliveries/{deliveries[0]['id']}")).json()
    assert len(after["log"]) == 2 and after["status"] == "delivered"


async def test_only_integrators_and_only_their_programs(
    browsers: Any, api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    created = await api.post("/v1/webhooks", {"url": "https://a.example/hook"})
    hook_id = created.json()["id"]
    crm = await console_as(browsers(), engine, program, Role.CRM)
    assert (await crm.get("/console/webhooks")).status_code == 403
    assert (await crm.get(f"/console/webhooks/{hook_id}")).status_code == 403
    assert (await crm.post(f"/console/webhooks/{hook_id}/delete")).status_code == 403
    assert 'href="/console/webhooks"' not in (await crm.get("/console/account")).text
    other = await make_program(engine)
    stranger = await console_as(browsers(), engine, other, Role.OWNER)
    assert (await stranger.get(f"/console/webhooks/{hook_id}")).status_code == 404
    assert (await stranger.post(f"/console/webhooks/{hook_id}/delete")).status_code == 404
    assert (await api.get(f"/v1/webhooks/{hook_id}")).status_code == 200
