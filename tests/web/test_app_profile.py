"""The member's profile in the app: their own fields changed as the API's PATCH does (bad
input refused, nothing changed) — a new e-mail or phone only once the code sent to it is
entered —, consents per channel and purpose with source ``app``, their data downloaded, and
deleting the account — erased as the API erases, the session gone, the offline card
forgotten."""

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.messaging.repository import messaging_repository
from kopilka.models import MemberSession
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.fixtures.factories import member_body, purchase_body
from tests.web.conftest import Browser, app_as
from tests.web.test_app_signin import browsers_on, code_of, sending

sessions_t = table(MemberSession)


@pytest.fixture
async def browsers(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Callable[[], Browser]]:
    """Browsers on a server that can send codes by e-mail and by SMS."""
    async for made in browsers_on(sending(tmp_path), engine):
        yield made


async def enrol(api: Api, **fields: Any) -> tuple[UUID, dict[str, Any]]:
    body = member_body(**fields)
    made = await api.post("/v1/members", body)
    assert made.status_code == 201, made.text
    return UUID(made.json()["id"]), body


async def member(api: Api, member_id: UUID) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get(f"/v1/members/{member_id}")).json()
    return found


async def test_the_member_changes_their_own_fields(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, _ = await enrol(api, name="Anna", email="anna@shop.example", phone="+79161234567")
    boris, _ = await enrol(api, name="Boris", email="boris@shop.example")
    await app_as(browser, engine, program, anna)
    page = await browser.get(f"/app/{program.slug}/profile")
    assert page.status_code == 200, page.text
    assert 'value="anna@shop.example"' in page.text and "boris@" not in page.text

    sent = {
        "name": "Anna Petrova",
        "phone": "+79161234567",
        "email": "anna.p@shop.example",
        "birthday": "1990-05-17",
        "preferred_store": "",
        "preferred_channel": "sms",
    }
    saved = await browser.post(f"/app/{program.slug}/profile", sent)
    # The rest is saved; the new e-mail waits for the code sent to it.
    assert saved.status_code == 200 and 'id="address-form"' in saved.text
    assert "If anna.p@shop.example can be used, we have sent a six-digit code there." in saved.text
    after = await member(api, anna)
    assert after["name"] == "Anna Petrova" and after["email"] == "anna@shop.example"
    assert after["birthday"] == "1990-05-17" and after["preferred_channel"] == "sms"
    code = await code_of(engine, program, str(anna))
    confirmed = await browser.post(
        f"/app/{program.slug}/profile/address", {"address": "anna.p@shop.example", "code": code}
    )
    assert confirmed.status_code == 303
    assert (await member(api, anna))["email"] == "anna.p@shop.example"
    assert (await member(api, boris))["name"] == "Boris"
    shown = await browser.client.get(confirmed.headers["location"])
    assert "Your e-mail is changed." in shown.text and 'value="1990-05-17"' in shown.text
    plain = await browser.post(
        f"/app/{program.slug}/profile", {**sent, "email": "anna.p@shop.example", "name": "Anna P."}
    )
    assert plain.status_code == 303  # nothing new to confirm: saved at once
    assert (await member(api, anna))["name"] == "Anna P."


async def test_bad_input_is_shown_by_its_field_and_changes_nothing(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, _ = await enrol(api, name="Anna", email="anna@shop.example")
    await enrol(api, name="Boris", email="boris@shop.example")
    await app_as(browser, engine, program, anna)
    before = await member(api, anna)
    base = {"name": "Anna", "phone": "", "email": "anna@shop.example", "birthday": ""}

    bad_day = await browser.post(f"/app/{program.slug}/profile", {**base, "birthday": "1990-02-31"})
    assert bad_day.status_code == 422
    assert 'id="e-birthday"' in bad_day.text and 'value="1990-02-31"' in bad_day.text
    bad_email = await browser.post(
        f"/app/{program.slug}/profile", {**base, "name": "Not saved", "email": "boris@"}
    )
    assert bad_email.status_code == 422 and 'id="e-email"' in bad_email.text
    both = await browser.post(
        f"/app/{program.slug}/profile",
        {**base, "name": "Not saved", "email": "anna.2@shop.example", "phone": "+79161230000"},
    )
    assert both.status_code == 422 and "one at a time" in both.text
    nothing_left = await browser.post(f"/app/{program.slug}/profile", {**base, "email": ""})
    assert nothing_left.status_code == 422
    assert "Keep a phone number or an e-mail" in nothing_left.text
    bad_channel = await browser.post(
        f"/app/{program.slug}/profile", {**base, "preferred_channel": "pigeon"}
    )
    assert bad_channel.status_code == 422
    assert await member(api, anna) == before


async def test_consents_changed_in_the_app_are_what_the_api_answers(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    settings = {"double_opt_in": False, "quiet_hours": None}
    assert (await api.put("/v1/messaging/settings", settings)).status_code == 200
    anna, _ = await enrol(api, email="anna@shop.example", phone="+79161234567")
    boris, _ = await enrol(api, email="boris@shop.example")
    boris_before = (await api.get(f"/v1/members/{boris}/consents")).json()["items"]
    await app_as(browser, engine, program, anna)
    page = await browser.get(f"/app/{program.slug}/profile")
    assert 'id="consents-form"' in page.text

    # Service messages by e-mail and push, not by SMS; offers by e-mail and SMS.
    ticks = {"email.service": "on", "push.service": "on", "sms.marketing": "on"}
    done = await browser.post(
        f"/app/{program.slug}/profile/consents", {**ticks, "email.marketing": "on"}
    )
    assert done.status_code == 303
    found = (await api.get(f"/v1/members/{anna}/consents")).json()
    state = {(c["channel"], c["purpose"]): c for c in found["items"]}
    for granted in (("sms", "marketing"), ("email", "marketing")):
        assert state[granted]["status"] == "granted" and state[granted]["source"] == "app"
    assert state[("sms", "service")]["status"] == "withdrawn"
    assert state[("sms", "service")]["allowed"] is False
    assert state[("sms", "service")]["source"] == "app"
    assert state[("email", "service")]["allowed"] is True
    assert state[("push", "marketing")]["status"] == "none"
    assert {h["source"] for h in found["history"]} == {"app"} and len(found["history"]) == 3
    assert (await member(api, anna))["consents"] == {"email": True, "sms": True, "push": False}
    assert (await api.get(f"/v1/members/{boris}/consents")).json()["items"] == boris_before
    shown = (await browser.get(f"/app/{program.slug}/profile")).text
    assert 'name="sms.marketing" value="on" checked' in shown
    assert 'name="sms.service" value="on">' in shown

    # The same choices again change nothing; offers by e-mail withdrawn is one change.
    again = await browser.post(
        f"/app/{program.slug}/profile/consents", {**ticks, "email.marketing": "on"}
    )
    assert again.status_code == 303
    assert len((await api.get(f"/v1/members/{anna}/consents")).json()["history"]) == 3
    await browser.post(f"/app/{program.slug}/profile/consents", ticks)
    found = (await api.get(f"/v1/members/{anna}/consents")).json()
    assert len(found["history"]) == 4
    withdrawn = next(
        c for c in found["items"] if (c["channel"], c["purpose"]) == ("email", "marketing")
    )
    assert withdrawn["status"] == "withdrawn" and withdrawn["source"] == "app"
    assert (await member(api, anna))["consents"]["email"] is False


async def test_export_downloads_this_members_data_only(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, anna_body = await enrol(api, name="Anna Export", email="anna@shop.example")
    boris, boris_body = await enrol(api, name="Boris Export")
    for body in (anna_body, boris_body):
        bought = await api.post("/v1/purchases", purchase_body(body["external_id"], 5_000))
        assert bought.status_code == 201
    await app_as(browser, engine, program, anna)
    download = await browser.post(f"/app/{program.slug}/profile/export")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("application/json")
    assert "attachment" in download.headers["content-disposition"]
    document = json.loads(download.content)
    assert document["profile"]["id"] == str(anna) and document["profile"]["name"] == "Anna Export"
    assert len(document["purchases"]) == 1
    assert document == {**document, "program": {"id": str(program.id), "name": program.name}}
    assert "Boris" not in download.text and str(boris) not in download.text
    audit = (await api.get("/v1/audit", subject_id=str(anna))).json()["items"]
    exported = [e for e in audit if e["action"] == "member.exported"]
    assert exported and exported[0]["actor_kind"] == "member"
    without_token = await browser.client.post(f"/app/{program.slug}/profile/export")
    assert without_token.status_code == 403


async def test_deleting_the_account_erases_it_and_ends_the_session(
    api: Api, browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, _ = await enrol(api, name="Anna Gone", email="gone@shop.example")
    boris, _ = await enrol(api, name="Boris Stays")
    phone = await app_as(browsers(), engine, program, anna)
    laptop = await app_as(browsers(), engine, program, anna)
    boriss = await app_as(browsers(), engine, program, boris)
    confirm = await phone.get(f"/app/{program.slug}/profile/delete")
    assert confirm.status_code == 200 and 'id="delete-form"' in confirm.text

    unconfirmed = await phone.post(f"/app/{program.slug}/profile/delete", {})
    assert unconfirmed.status_code == 422 and "Tick the box" in unconfirmed.text
    assert (await member(api, anna))["status"] == "active"

    gone = await phone.post(f"/app/{program.slug}/profile/delete", {"confirm": "yes"})
    assert gone.status_code == 303
    assert gone.headers["location"] == f"/app/{program.slug}/goodbye"
    assert (
        'kopilka_app=""' in gone.headers["set-cookie"] or "Max-Age=0" in gone.headers["set-cookie"]
    )
    erased = await member(api, anna)
    assert erased["status"] == "erased" and erased["name"] is None and erased["email"] is None
    goodbye = await phone.client.get(gone.headers["location"])
    assert goodbye.status_code == 200 and "Your account is deleted." in goodbye.text
    # Every session of the member is over, on every device; the other member's is not.
    for device in (phone, laptop):
        again = await device.get(f"/app/{program.slug}/profile")
        assert again.status_code == 303 and "/sign-in" in again.headers["location"]
    assert (await boriss.get(f"/app/{program.slug}/profile")).status_code == 200
    async with reading(engine) as conn:
        revoked = (
            await conn.execute(
                select(sessions_t.c.revoked_at).where(sessions_t.c.member_id == anna)
            )
        ).all()
    assert len(revoked) == 2 and all(r.revoked_at is not None for r in revoked)


async def test_a_staff_erasure_ends_the_members_sessions_too(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, _ = await enrol(api, name="Anna")
    await app_as(browser, engine, program, anna)
    erased = await api.post(f"/v1/members/{anna}/erase", {"reason": "asked by phone"})
    assert erased.status_code == 200, erased.text
    async with reading(engine) as conn:
        revoked = await conn.scalar(
            select(sessions_t.c.revoked_at).where(sessions_t.c.member_id == anna)
        )
    assert revoked is not None
    assert (await browser.get(f"/app/{program.slug}/profile")).status_code == 303


async def test_every_page_of_the_member_reads_in_russian(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, body = await enrol(api, name="Анна", email="anna@shop.example")
    bought = await api.post("/v1/purchases", purchase_body(body["external_id"], 12_300))
    assert bought.status_code == 201
    await app_as(browser, engine, program, anna)
    pages = {
        "history": "Мои покупки",
        "history?tab=points": "Все движения",
        "rewards": "У вас 123 балла.",
        "my-rewards": "Вы пока не получали наград.",
        "coupons": "Купонов пока нет.",
        "offers": "Сейчас персональных предложений нет.",
        "inbox": "Сообщений пока нет.",
        "profile": "Сообщения, на которые я согласен",
        "profile/delete": "Удалить мой аккаунт",
    }
    for page, expected in pages.items():
        answer = await browser.client.get(
            f"/app/{program.slug}/{page}", headers={"accept-language": "ru"}
        )
        text = answer.text.replace("\xa0", " ")
        assert answer.status_code == 200, (page, answer.text)
        assert expected in text and "%(" not in text, page


async def test_a_new_address_changes_nothing_until_its_code_is_entered(
    api: Api, browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    """A session left open on someone else's phone cannot move the account to their
    address: the code goes to the new phone, a wrong one changes nothing, another
    member's number gets the same page and no code."""
    anna, _ = await enrol(api, name="Anna", email="anna@shop.example", phone="+79161234567")
    await enrol(api, name="Boris", phone="+79167654321")
    browser = await app_as(browsers(), engine, program, anna)
    base = {"name": "Anna", "email": "anna@shop.example", "birthday": ""}
    asked = await browser.post(f"/app/{program.slug}/profile", {**base, "phone": "8 916 111-22-33"})
    assert asked.status_code == 200 and 'name="address" value="+79161112233"' in asked.text
    async with reading(engine) as conn:
        [message] = await messaging_repository.messages_page(
            conn, program.id, limit=1, before=None, member_id=anna, kind="sign_in_code"
        )
    assert (message.channel, message.to_address) == ("sms", "+79161112233")
    code = await code_of(engine, program, str(anna))
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = await browser.post(
        f"/app/{program.slug}/profile/address", {"address": "+79161112233", "code": wrong}
    )
    assert refused.status_code == 422 and "wrong or no longer valid" in refused.text
    elsewhere = await browser.post(
        f"/app/{program.slug}/profile/address", {"address": "+79169999999", "code": code}
    )
    assert elsewhere.status_code == 422  # the code confirms only the number it went to
    assert (await member(api, anna))["phone"] == "+79161234567"

    taken = await browser.post(f"/app/{program.slug}/profile", {**base, "phone": "+79167654321"})
    free = await browser.post(f"/app/{program.slug}/profile", {**base, "phone": "+79165550000"})
    assert taken.status_code == free.status_code == 200
    assert taken.text.replace("+79167654321", "X").replace("7654321", "X") == free.text.replace(
        "+79165550000", "X"
    ).replace("5550000", "X")
    async with reading(engine) as conn:
        sent = await messaging_repository.messages_page(
            conn, program.id, limit=10, before=None, member_id=anna, kind="sign_in_code"
        )
    assert [m.to_address for m in sent] == ["+79165550000", "+79161112233"]
    done = await browser.post(
        f"/app/{program.slug}/profile/address",
        {"address": "+79165550000", "code": await code_of(engine, program, str(anna))},
    )
    assert done.status_code == 303 and (await member(api, anna))["phone"] == "+79165550000"


async def test_a_new_phone_without_sms_is_refused_at_the_field(
    api: Api, engine: AsyncEngine, program: ProgramContext, tmp_path: Path
) -> None:
    anna, _ = await enrol(api, name="Anna", email="anna@shop.example")
    async for browsers in browsers_on(sending(tmp_path, sms_provider=None), engine):
        browser = await app_as(browsers(), engine, program, anna)
        answer = await browser.post(
            f"/app/{program.slug}/profile",
            {"name": "Anna", "email": "anna@shop.example", "phone": "+79161112233"},
        )
    assert answer.status_code == 422 and 'id="e-phone"' in answer.text
    assert "Sign-in by SMS is not available" in answer.text
    assert (await member(api, anna))["phone"] is None


async def test_the_goodbye_page_empties_the_offline_card(
    browser: Browser, program: ProgramContext
) -> None:
    """The service worker forgets the kept card when the page after deleting the account
    loads, as it does on signing out (run in Node with a stand-in for the browser's
    worker globals)."""
    node = shutil.which("node")
    if node is None:
        # Node.js is on every machine the suite runs on in CI; elsewhere its absence skips.
        if os.environ.get("CI"):
            pytest.fail("Node.js is needed to run the service worker's test")
        pytest.skip("no Node.js to run the service worker")
    worker = await browser.get(f"/app/{program.slug}/sw.js")
    assert worker.status_code == 200
    scope = f"/app/{program.slug}/"
    harness = """
const source = require("fs").readFileSync(0, "utf8");
const listeners = {};
let deleted = 0;
const self = {
  addEventListener: (type, listener) => { listeners[type] = listener; },
  location: new URL("https://kopilka.test" + process.argv[1] + "sw.js"),
  skipWaiting() {}, clients: { claim() {} },
};
const cache = { match: () => Promise.resolve(undefined), put: () => Promise.resolve() };
const caches = {
  delete: () => { deleted += 1; return Promise.resolve(true); },
  open: () => Promise.resolve(cache),
};
const fetch = () => new Promise(() => {});
new Function("self", "caches", "fetch", source)(self, caches, fetch);
function forgets(method, path) {
  deleted = 0;
  listeners.fetch({
    request: { method: method, url: "https://kopilka.test" + path },
    waitUntil() {}, respondWith() {},
  });
  return deleted > 0;
}
const scope = process.argv[1];
console.log(JSON.stringify({
  goodbye: forgets("GET", scope + "goodbye"),
  sign_out: forgets("POST", scope + "sign-out"),
  history: forgets("GET", scope + "history"),
  card: forgets("GET", scope),
  elsewhere: forgets("GET", "/app/other/goodbye"),
}));
"""
    process = await asyncio.create_subprocess_exec(
        node,
        "-e",
        harness,
        scope,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(worker.text.encode()), 30)
    assert process.returncode == 0
    assert json.loads(out) == {
        "goodbye": True,
        "sign_out": True,
        "history": False,
        "card": False,
        "elsewhere": False,
    }
