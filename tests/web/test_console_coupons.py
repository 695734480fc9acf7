"""The console's coupon campaigns: the list and a campaign's page show what the API made,
forms change what the API then answers, codes are generated, imported, exported as CSV and
shown with their QR code; bad input changes nothing; roles and programs are kept apart."""

import base64
import csv
import io
import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from kopilka.web.console.coupons import _csv_line
from kopilka.web.console.members import new_form_key
from tests.conftest import Api, make_key, make_program
from tests.web.conftest import Browser, console_as


def field_error(page: str, name: str) -> str:
    """The message a form shows beside field ``name``."""
    field = re.escape(f'id="f-{name}"')
    found = re.search(rf'{field}(?:(?!</div>).)*?class="field-error">([^<]*)<', page, re.S)
    assert found, f"no error beside {name}"
    return found.group(1)


async def new_campaign(api: Api, key: str, **extra: Any) -> dict[str, Any]:
    body = {"key": key, "name": f"Campaign {key}", "discount": {"kind": "percent", "value": 15}}
    answer = await api.post("/v1/coupon-campaigns", body | extra)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def campaign(api: Api, key: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/coupon-campaigns/{key}")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def codes_of(api: Api, key: str) -> list[dict[str, Any]]:
    answer = await api.get(f"/v1/coupon-campaigns/{key}/codes", limit=1000)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def add_codes(api: Api, key: str, body: dict[str, Any]) -> list[str]:
    answer = await api.post(f"/v1/coupon-campaigns/{key}/codes", body)
    assert answer.status_code == 201, answer.text
    codes: list[str] = answer.json()["codes"]
    return codes


def once(**fields: str) -> dict[str, str]:
    """A codes form as the page sends it: with a one-time key of its own."""
    return {"idempotency_key": new_form_key(), **fields}


NEW = {
    "key": "spring",
    "name": "Spring",
    "discount_kind": "percent",
    "percent": "15",
    "uses_per_code": "1",
    "code_pattern": "SPR-####-####",
    "status": "active",
    "give_back_on_return": "on",
}


async def test_the_list_and_a_campaigns_page_show_what_the_api_made(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(
        api, "spring", discount={"kind": "percent", "value": 15, "max_discount": 50000}
    )
    await new_campaign(api, "five-off", discount={"kind": "fixed", "value": 50000})
    codes = await add_codes(api, "spring", {"count": 3})
    await console_as(browser, engine, program, Role.MARKETING)
    listing = await browser.get("/console/coupons")
    assert listing.status_code == 200
    assert "Campaign spring" in listing.text and "Campaign five-off" in listing.text
    assert "15% off" in listing.text and "at most" in listing.text
    assert 'href="/console/coupons/new"' in listing.text
    page = await browser.get("/console/coupons/spring")
    assert page.status_code == 200 and all(code in page.text for code in codes)
    assert 'id="generate-form"' in page.text and 'id="campaign-form"' in page.text


async def test_a_campaign_made_in_the_console_is_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    form = {
        **NEW,
        "discount_kind": "fixed",
        "amount_off": "100,50",
        "min_basket": "1 000",
        "categories": "coffee, tea",
        "uses_per_code": "",
        "per_member_limit": "2",
        "valid_from": "2027-03-01T00:00",
        "stackable": "on",
    }
    sent = await browser.post("/console/coupons/new", form)
    assert sent.status_code == 303 and sent.headers["location"] == "/console/coupons/spring"
    made = await campaign(api, "spring")
    assert made["discount"] == {
        "kind": "fixed",
        "value": 10050,
        "max_discount": None,
        "free_sku": None,
    }
    assert made["min_basket"] == 100000 and made["categories"] == ["coffee", "tea"]
    assert made["uses_per_code"] is None and made["per_member_limit"] == 2
    assert made["stackable"] is True and made["give_back_on_return"] is True
    assert made["valid_from"].startswith("2027-03-01T00:00:00")  # the program runs on UTC
    assert "Campaign spring created." in (await browser.get("/console/coupons/spring")).text


async def test_bad_input_shows_the_fields_message_and_creates_nothing(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    too_much = await browser.post("/console/coupons/new", {**NEW, "percent": "150"})
    assert too_much.status_code == 422 and "1–100" in field_error(too_much.text, "percent")
    assert 'value="Spring"' in too_much.text
    short = await browser.post("/console/coupons/new", {**NEW, "code_pattern": "SPRING-#"})
    assert short.status_code == 422 and "random places" in field_error(short.text, "code_pattern")
    money = await browser.post(
        "/console/coupons/new", {**NEW, "discount_kind": "fixed", "amount_off": "-5"}
    )
    assert money.status_code == 422 and field_error(money.text, "amount_off")
    for digits in ("١٠٠", "१००", "１００", "100,٥"):  # ASCII digits only, not other scripts'
        other = await browser.post(
            "/console/coupons/new", {**NEW, "discount_kind": "fixed", "amount_off": digits}
        )
        assert other.status_code == 422 and "a sum such as" in field_error(other.text, "amount_off")
    assert (await api.get("/v1/coupon-campaigns/spring")).status_code == 404
    await new_campaign(api, "spring")
    duplicate = await browser.post("/console/coupons/new", {**NEW, "name": "Another"})
    assert duplicate.status_code == 422 and "exists" in field_error(duplicate.text, "key")
    assert (await campaign(api, "spring"))["name"] == "Campaign spring"


async def test_editing_changes_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(api, "spring", per_member_limit=3)
    await console_as(browser, engine, program, Role.OWNER)
    edit = {
        "name": "Spring sale",
        "total_limit": "500",
        "per_member_limit": "",
        "status": "paused",
        "give_back_on_return": "on",
    }
    assert (await browser.post("/console/coupons/spring", edit)).status_code == 303
    after = await campaign(api, "spring")
    assert after["name"] == "Spring sale" and after["total_limit"] == 500
    assert after["per_member_limit"] is None and after["status"] == "paused"
    assert after["stackable"] is False

    cleared = await browser.post(
        "/console/coupons/spring", {**edit, "name": "", "status": "active"}
    )
    assert cleared.status_code == 422 and "not cleared" in field_error(cleared.text, "name")
    window = {**edit, "valid_from": "2027-05-01T00:00", "valid_until": "2027-04-01T00:00"}
    backwards = await browser.post("/console/coupons/spring", window)
    assert backwards.status_code == 422 and "after" in field_error(backwards.text, "valid_until")
    unchanged = await campaign(api, "spring")
    assert unchanged["status"] == "paused" and unchanged["valid_from"] is None


async def test_codes_are_generated_imported_and_paged(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(api, "spring", code_pattern="SPR-####-####")
    await console_as(browser, engine, program, Role.MARKETING)
    made = await browser.post("/console/coupons/spring/codes", once(count="55"))
    assert made.status_code == 303
    codes = await codes_of(api, "spring")
    assert len(codes) == 55 and all(c["code"].startswith("SPR-") for c in codes)
    first = await browser.get("/console/coupons/spring")
    assert "Codes created: 55." in first.text
    shown = set(re.findall(r"<code>(SPR-[A-Z0-9-]+)</code>", first.text))
    assert len(shown) == 50
    next_url = re.search(r'href="/console/coupons/spring\?cursor=([^"]+)">Next page', first.text)
    assert next_url
    second = await browser.get("/console/coupons/spring", cursor=next_url.group(1))
    rest = set(re.findall(r"<code>(SPR-[A-Z0-9-]+)</code>", second.text))
    assert len(rest) == 5 and not rest & shown

    vip = await browser.post("/console/coupons/spring/codes", once(count="2", pattern="VIP-####"))
    assert vip.status_code == 303
    imported = await browser.post(
        "/console/coupons/spring/codes", once(codes="legacy-1\nLEGACY-2\n")
    )
    assert imported.status_code == 303
    texts = {c["code"] for c in await codes_of(api, "spring")}
    assert {"LEGACY-1", "LEGACY-2"} <= texts and len(texts) == 59

    zero = await browser.post("/console/coupons/spring/codes", once(count="0"))
    assert zero.status_code == 422 and field_error(zero.text, "count")
    short = await browser.post("/console/coupons/spring/codes", once(count="5", pattern="XMAS-#"))
    assert short.status_code == 422 and "random places" in field_error(short.text, "pattern")
    again = await browser.post("/console/coupons/spring/codes", once(codes="LEGACY-1\nNEW-1"))
    assert again.status_code == 422 and "already exist" in field_error(again.text, "codes")
    assert "NEW-1" in again.text  # what was typed is kept
    assert len(await codes_of(api, "spring")) == 59


def form_key_of(page: str, form: str) -> str:
    """The one-time key the page's form ``form`` carries."""
    found = re.search(rf'<form id="{form}".*?name="idempotency_key" value="([^"]+)"', page, re.S)
    assert found, f"the form {form} carries a one-time key"
    return found.group(1)


async def test_a_codes_form_sent_twice_adds_its_codes_once(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(api, "spring", code_pattern="SPR-####-####")
    await console_as(browser, engine, program, Role.MARKETING)
    page = (await browser.get("/console/coupons/spring")).text
    generate = {"idempotency_key": form_key_of(page, "generate-form"), "count": "3"}
    assert form_key_of(page, "import-form") != generate["idempotency_key"]
    first = await browser.post("/console/coupons/spring/codes", generate)
    second = await browser.post("/console/coupons/spring/codes", generate)
    assert first.status_code == second.status_code == 303
    assert len(await codes_of(api, "spring")) == 3
    shown = await browser.get("/console/coupons/spring")
    assert "Codes created: 3." in shown.text  # the second answers as the first
    assert form_key_of(shown.text, "generate-form") != generate["idempotency_key"]

    other = await browser.post("/console/coupons/spring/codes", {**generate, "count": "5"})
    assert other.status_code == 422 and "sent already" in field_error(other.text, "count")
    assert form_key_of(other.text, "generate-form") != generate["idempotency_key"]
    bare = await browser.post("/console/coupons/spring/codes", {"count": "4"})
    assert bare.status_code == 422 and "one-time key" in field_error(bare.text, "count")
    assert len(await codes_of(api, "spring")) == 3

    # A refused form shown again keeps its key (nothing was done under it).
    zero = once(count="0")
    refused = await browser.post("/console/coupons/spring/codes", zero)
    assert form_key_of(refused.text, "generate-form") == zero["idempotency_key"]
    typed = once(codes="OLD-1\nOLD-2")
    for _ in range(2):
        imported = await browser.post("/console/coupons/spring/codes", typed)
        assert imported.status_code == 303
    assert len(await codes_of(api, "spring")) == 5


async def test_the_export_has_a_header_one_line_per_code_and_no_formulas(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(api, "spring")
    await add_codes(api, "spring", {"codes": ["-SUM.A1", "PLAIN-1"]})
    await add_codes(api, "spring", {"count": 3})
    await console_as(browser, engine, program, Role.ANALYST)  # reading is enough
    answer = await browser.get("/console/coupons/spring/codes.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == [
        "code",
        "campaign",
        "member_id",
        "uses",
        "max_uses",
        "status",
        "valid_until",
        "issued_at",
    ]
    assert len(rows) == 1 + 5
    cells = {row[0] for row in rows[1:]}
    assert "'-SUM.A1" in cells and "PLAIN-1" in cells  # a formula-like cell is text
    assert all(row[1] == "spring" and row[3] == "0" for row in rows[1:])
    assert _csv_line(["=cmd|' /C calc'!A0", "ok"]).startswith("'=cmd")


async def test_a_code_is_looked_up_with_its_qr_and_disabled(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(api, "spring")
    [code] = await add_codes(api, "spring", {"count": 1})
    await console_as(browser, engine, program, Role.MARKETING)
    found = await browser.get("/console/coupon-codes", code=f"  {code.lower()} ")
    assert found.status_code == 303 and found.headers["location"] == f"/console/coupon-codes/{code}"
    page = await browser.get(f"/console/coupon-codes/{code}")
    assert page.status_code == 200 and "0 of 1" in page.text
    image = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)"', page.text)
    assert image
    served = await api.get(f"/v1/coupons/{code}/qr.svg")
    assert base64.b64decode(image.group(1)).decode() == served.text

    disabled = await browser.post(f"/console/coupon-codes/{code}/status", {"status": "disabled"})
    assert disabled.status_code == 303
    assert (await api.get(f"/v1/coupons/{code}")).json()["status"] == "disabled"
    enabled = await browser.post(f"/console/coupon-codes/{code}/status", {"status": "active"})
    assert enabled.status_code == 303
    assert (await api.get(f"/v1/coupons/{code}")).json()["status"] == "active"

    missing = await browser.get("/console/coupon-codes", code="NO-SUCH-CODE")
    assert missing.status_code == 404 and "No such code." in missing.text


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SUPPORT])
async def test_a_role_without_catalog_manage_sees_no_forms_and_is_refused(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api, role: Role
) -> None:
    await new_campaign(api, "spring")
    [code] = await add_codes(api, "spring", {"count": 1})
    await console_as(browser, engine, program, role)
    listing = await browser.get("/console/coupons")
    assert listing.status_code == 200 and "Campaign spring" in listing.text
    assert "/console/coupons/new" not in listing.text
    page = await browser.get("/console/coupons/spring")
    assert page.status_code == 200 and code in page.text
    for form in ("generate-form", "import-form", "campaign-form"):
        assert f'id="{form}"' not in page.text
    one = await browser.get(f"/console/coupon-codes/{code}")
    assert one.status_code == 200 and 'id="code-status"' not in one.text
    assert (await browser.get("/console/coupons/new")).status_code == 403
    assert (await browser.post("/console/coupons/new", {**NEW, "key": "x"})).status_code == 403
    assert (await browser.post("/console/coupons/spring", {"name": "X"})).status_code == 403
    assert (await browser.post("/console/coupons/spring/codes", {"count": "1"})).status_code == 403
    status = await browser.post(f"/console/coupon-codes/{code}/status", {"status": "disabled"})
    assert status.status_code == 403
    assert (await campaign(api, "spring"))["codes"] == 1
    assert (await api.get(f"/v1/coupons/{code}")).json()["status"] == "active"


async def test_another_programs_campaign_and_codes_are_not_found(
    browser: Browser,
    engine: AsyncEngine,
    program: ProgramContext,
    http: httpx.AsyncClient,
) -> None:
    other = await make_program(engine)
    other_api = Api(http, await make_key(engine, other, "admin"))
    await new_campaign(other_api, "theirs")
    [code] = await add_codes(other_api, "theirs", {"count": 1})
    await console_as(browser, engine, program, Role.OWNER)
    assert "Campaign theirs" not in (await browser.get("/console/coupons")).text
    assert (await browser.get("/console/coupons/theirs")).status_code == 404
    assert (await browser.get("/console/coupons/theirs/codes.csv")).status_code == 404
    assert (await browser.post("/console/coupons/theirs", {"name": "Mine"})).status_code == 404
    sent = await browser.post("/console/coupons/theirs/codes", {"count": "1"})
    assert sent.status_code == 404
    assert (await browser.get(f"/console/coupon-codes/{code}")).status_code == 404
    assert (await browser.get("/console/coupon-codes", code=code)).status_code == 404
    status = await browser.post(f"/console/coupon-codes/{code}/status", {"status": "disabled"})
    assert status.status_code == 404
    theirs = (await other_api.get("/v1/coupon-campaigns/theirs")).json()
    assert theirs["name"] == "Campaign theirs" and theirs["codes"] == 1


async def test_the_pages_speak_russian(
    browser: Browser, engine: AsyncEngine, program: ProgramContext, api: Api
) -> None:
    await new_campaign(api, "spring")
    [code] = await add_codes(api, "spring", {"count": 1})
    await console_as(browser, engine, program, Role.OWNER)
    russian = {"accept-language": "ru"}
    listing = await browser.client.get("/console/coupons", headers=russian)
    assert "Купонные кампании" in listing.text and "скидка 15%" in listing.text
    page = await browser.client.get("/console/coupons/spring", headers=russian)
    assert "Создать коды" in page.text and "Скачать все коды (CSV)" in page.text
    new = await browser.client.get("/console/coupons/new", headers=russian)
    assert "Новая кампания" in new.text
    one = await browser.client.get(f"/console/coupon-codes/{code}", headers=russian)
    assert "Отключить код" in one.text and "0 из 1" in one.text
