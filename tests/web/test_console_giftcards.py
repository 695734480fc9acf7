"""The console's gift cards: a card made through the API is found with its balance, journal
and QR code; forms issue cards and batches, top up, disable and change expiry as the API
then answers, each once however often the form is sent; bad input changes nothing; roles
and programs are kept apart."""

import base64
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.db import reading
from kopilka.models import GiftCard
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body
from tests.web.conftest import Browser, console_as

cards_t = table(GiftCard)
TOKEN = re.compile(r'name="token" value="([^"]+)"')


def field_error(page: str, form: str, name: str) -> str:
    """The message beside field ``name`` of form ``form``."""
    found = re.search(rf'<small id="e-{form}-{name}" class="field-error">([^<]*)<', page)
    assert found, f"no error beside {form}.{name}"
    return found.group(1)


async def issued(api: Api, **body: Any) -> dict[str, Any]:
    answer = await api.post("/v1/gift-cards", {"amount": 150_000} | body)
    assert answer.status_code == 201, answer.text
    card: dict[str, Any] = answer.json()
    return card


async def card_of(api: Api, code: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/gift-cards/{code}")
    assert answer.status_code == 200, answer.text
    card: dict[str, Any] = answer.json()
    return card


async def card_count(engine: AsyncEngine, program: ProgramContext) -> int:
    async with reading(engine) as conn:
        query = select(func.count()).where(cards_t.c.program_id == program.id)
        return int((await conn.execute(query)).scalar_one())


async def new_member(api: Api) -> str:
    answer = await api.post("/v1/members", member_body())
    assert answer.status_code == 201, answer.text
    member_id: str = answer.json()["id"]
    return member_id


async def test_a_card_is_found_with_its_balance_journal_and_qr(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    card = await issued(api)
    paid = await api.post(
        f"/v1/gift-cards/{card['code']}/payments", {"amount": 50_000, "reference": "receipt-42"}
    )
    assert paid.status_code == 201, paid.text
    await console_as(browser, engine, program, Role.MARKETING)
    front = await browser.get("/console/gift-cards")
    assert front.status_code == 200 and 'id="card-lookup"' in front.text
    assert 'id="issue-form"' in front.text and 'id="batch-form"' in front.text
    found = await browser.get("/console/gift-cards/lookup", code=f" {card['code'].lower()} ")
    assert found.status_code == 303
    assert found.headers["location"] == f"/console/gift-cards/{card['code']}"
    page = await browser.get(f"/console/gift-cards/{card['code']}")
    assert page.status_code == 200
    assert "1,000.00" in page.text and "1,500.00" in page.text  # balance, issued with
    assert "Payment" in page.text and "receipt-42" in page.text and "Issue" in page.text
    image = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page.text)
    assert image
    served = await api.get(f"/v1/gift-cards/{card['code']}/qr.svg")
    assert base64.b64decode(image.group(1)).decode() == served.text
    missing = await browser.get("/console/gift-cards/lookup", code="GC-NOPE-NOPE-NOPE")
    assert missing.status_code == 404 and "No gift card has this code." in missing.text


async def test_a_card_and_a_batch_are_issued_once_however_often_the_form_is_sent(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    member = await new_member(api)
    await console_as(browser, engine, program, Role.MARKETING)
    front = await browser.get("/console/gift-cards")
    issue_token, batch_token = TOKEN.findall(front.text)
    form = {
        "token": issue_token,
        "amount": "1 500,50",
        "member_id": member,
        "never_expires": "on",
    }
    sent = await browser.post("/console/gift-cards/new", form)
    assert sent.status_code == 303
    code = sent.headers["location"].rsplit("/", 1)[1]
    card = await card_of(api, code)
    assert card["balance"] == 150_050 and card["expires_at"] is None
    assert card["member_id"] == member
    again = await browser.post("/console/gift-cards/new", form)  # a double click
    assert again.headers["location"] == sent.headers["location"]
    theirs = (await api.get(f"/v1/members/{member}/gift-cards")).json()["items"]
    assert [c["code"] for c in theirs] == [code]

    batch = {"token": batch_token, "count": "3", "amount": "100", "pattern": "NY-####-####"}
    made = await browser.post("/console/gift-cards/batch", batch)
    assert made.status_code == 201 and "3 cards issued" in made.text
    codes = re.findall(r"<code>(NY-[A-Z0-9-]+)</code>", made.text)
    assert len(codes) == 3
    for each in codes:
        assert (await card_of(api, each))["balance"] == 10_000
    replayed = await browser.post("/console/gift-cards/batch", batch)
    assert re.findall(r"<code>(NY-[A-Z0-9-]+)</code>", replayed.text) == codes
    assert await card_count(engine, program) == 4


async def test_a_form_sent_again_is_in_the_audit_log_once(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    front = await browser.get("/console/gift-cards")
    issue_token, batch_token = TOKEN.findall(front.text)
    for _ in range(3):
        sent = await browser.post(
            "/console/gift-cards/new", {"token": issue_token, "amount": "500"}
        )
        assert sent.status_code == 303
    batch = {"token": batch_token, "count": "2", "amount": "100"}
    for _ in range(2):
        assert (await browser.post("/console/gift-cards/batch", batch)).status_code == 201
    assert await card_count(engine, program) == 3
    log = (await api.get("/v1/audit")).json()["items"]
    routes = [e["action"] for e in log if e["action"].startswith("POST /console/gift-cards")]
    assert sorted(routes) == ["POST /console/gift-cards/batch", "POST /console/gift-cards/new"]


async def test_bad_input_shows_the_fields_message_and_issues_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, http: httpx.AsyncClient
) -> None:
    other = await make_program(engine)
    stranger = await new_member(Api(http, await make_key(engine, other, "admin")))
    await console_as(browser, engine, program, Role.OWNER)
    base = {"token": "t-1", "amount": "100"}
    negative = await browser.post("/console/gift-cards/new", {**base, "amount": "-5"})
    assert negative.status_code == 422 and field_error(negative.text, "issue", "amount")
    both = await browser.post(
        "/console/gift-cards/new", {**base, "valid_days": "30", "never_expires": "on"}
    )
    assert both.status_code == 422
    assert "at most one" in field_error(both.text, "issue", "never_expires")
    foreign = await browser.post("/console/gift-cards/new", {**base, "member_id": stranger})
    assert foreign.status_code == 422 and "not found" in field_error(
        foreign.text, "issue", "member_id"
    )
    assert 'value="100"' in foreign.text  # what was typed is kept
    zero = await browser.post("/console/gift-cards/batch", {**base, "count": "0"})
    assert zero.status_code == 422 and field_error(zero.text, "batch", "count")
    short = await browser.post(
        "/console/gift-cards/batch", {**base, "count": "2", "pattern": "GC-#"}
    )
    assert short.status_code == 422 and "random places" in field_error(
        short.text, "batch", "pattern"
    )
    assert await card_count(engine, program) == 0


async def test_top_up_block_and_expiry_change_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    card = await issued(api, amount=10_000)
    path = f"/console/gift-cards/{card['code']}"
    await console_as(browser, engine, program, Role.OWNER)
    page = await browser.get(path)
    token = TOKEN.search(page.text)
    assert token and 'id="top-up-form"' in page.text and 'id="status-form"' in page.text
    top_up = {"token": token.group(1), "amount": "250", "reference": "cash desk 2"}
    assert (await browser.post(f"{path}/top-up", top_up)).status_code == 303
    assert (await browser.post(f"{path}/top-up", top_up)).status_code == 303  # sent twice
    assert (await card_of(api, card["code"]))["balance"] == 35_000
    refused = await browser.post(f"{path}/top-up", {"token": "t-2", "amount": "0"})
    assert refused.status_code == 422 and field_error(refused.text, "top-up", "amount")

    assert (await browser.post(f"{path}/status", {"status": "disabled"})).status_code == 303
    assert (await card_of(api, card["code"]))["status"] == "disabled"
    blocked = await browser.post(f"{path}/top-up", {"token": "t-3", "amount": "10"})
    assert blocked.status_code == 409 and "disabled" in blocked.text
    assert (await card_of(api, card["code"]))["balance"] == 35_000
    assert (await browser.post(f"{path}/status", {"status": "active"})).status_code == 303
    assert (await card_of(api, card["code"]))["status"] == "active"

    later = {"expires_at": "2999-01-31T12:00"}
    assert (await browser.post(f"{path}/expiry", later)).status_code == 303
    assert (await card_of(api, card["code"]))["expires_at"].startswith("2999-01-31T12:00")
    past = await browser.post(f"{path}/expiry", {"expires_at": "2001-01-01T00:00"})
    assert past.status_code == 422 and "future" in field_error(past.text, "expiry", "expires_at")
    never = await browser.post(f"{path}/expiry", {"never_expires": "on"})
    assert never.status_code == 303
    assert (await card_of(api, card["code"]))["expires_at"] is None


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SUPPORT])
async def test_a_role_without_catalog_manage_sees_no_forms_and_is_refused(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, role: Role
) -> None:
    card = await issued(api, amount=10_000)
    path = f"/console/gift-cards/{card['code']}"
    await console_as(browser, engine, program, role)
    front = await browser.get("/console/gift-cards")
    assert front.status_code == 200
    assert 'id="issue-form"' not in front.text and 'id="batch-form"' not in front.text
    page = await browser.get(path)
    lookup = await browser.get("/console/gift-cards/lookup", code=card["code"])
    if role == Role.ANALYST:  # reads no one's cards
        assert page.status_code == 403 and lookup.status_code == 403
        assert 'id="card-lookup"' not in front.text
    else:
        assert page.status_code == 200 and lookup.status_code == 303
        for form in ("top-up-form", "status-form", "expiry-form"):
            assert f'id="{form}"' not in page.text
    for sent in (
        await browser.post("/console/gift-cards/new", {"token": "x", "amount": "1"}),
        await browser.post("/console/gift-cards/batch", {"count": "1", "amount": "1"}),
        await browser.post(f"{path}/top-up", {"token": "x", "amount": "1"}),
        await browser.post(f"{path}/status", {"status": "disabled"}),
        await browser.post(f"{path}/expiry", {"never_expires": "on"}),
    ):
        assert sent.status_code == 403
    after = await card_of(api, card["code"])
    assert after["balance"] == 10_000 and after["status"] == "active"
    assert await card_count(engine, program) == 1


async def test_a_cashier_tops_up_but_cannot_block(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    card = await issued(api, amount=10_000)
    path = f"/console/gift-cards/{card['code']}"
    await console_as(browser, engine, program, Role.CASHIER)
    page = await browser.get(path)
    assert 'id="top-up-form"' in page.text and 'id="status-form"' not in page.text
    assert (await browser.post(f"{path}/top-up", {"token": "c", "amount": "5"})).status_code == 303
    assert (await browser.post(f"{path}/status", {"status": "disabled"})).status_code == 403
    after = await card_of(api, card["code"])
    assert after["balance"] == 10_500 and after["status"] == "active"


async def test_another_programs_card_is_not_found(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, http: httpx.AsyncClient
) -> None:
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other, "admin"))
    card = await issued(other_api, amount=10_000)
    path = f"/console/gift-cards/{card['code']}"
    await console_as(browser, engine, program, Role.OWNER)
    assert (await browser.get("/console/gift-cards/lookup", code=card["code"])).status_code == 404
    assert (await browser.get(path)).status_code == 404
    assert (await browser.post(f"{path}/top-up", {"token": "x", "amount": "1"})).status_code == 404
    assert (await browser.post(f"{path}/status", {"status": "disabled"})).status_code == 404
    assert (await browser.post(f"{path}/expiry", {"never_expires": "on"})).status_code == 404
    theirs = await card_of(other_api, card["code"])
    assert theirs["balance"] == 10_000 and theirs["status"] == "active"


async def test_the_pages_speak_russian(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    card = await issued(api)
    await console_as(browser, engine, program, Role.OWNER)
    russian = {"accept-language": "ru"}
    front = await browser.client.get("/console/gift-cards", headers=russian)
    assert "Выпустить партию" in front.text and "Найти карту" in front.text
    page = await browser.client.get(f"/console/gift-cards/{card['code']}", headers=russian)
    assert "Пополнить" in page.text and "Выпуск" in page.text
    front = await browser.client.get("/console/gift-cards", headers=russian)
    token = TOKEN.findall(front.text)[1]
    batch = {"token": token, "count": "3", "amount": "100"}
    made = await browser.client.post(
        "/console/gift-cards/batch",
        data={"csrf_token": await browser.token(), **batch},
        headers=russian,
    )
    assert made.status_code == 201 and "Выпущены 3 карты" in made.text
