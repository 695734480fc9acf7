"""The console's rewards shop: the catalogue shows what the API made, the forms change what
the API then answers, bad input changes nothing, roles and programs are kept apart."""

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.rewards.conftest import new_member, reward_body
from tests.tiers.test_service import LADDER
from tests.web.conftest import Browser, console_as


@pytest.fixture
async def shop(engine: AsyncEngine) -> ProgramContext:
    """A program with tiers base < silver < gold < vip, on Moscow time."""
    return await make_program(engine, tiers=LADDER, timezone="Europe/Moscow")


@pytest.fixture
async def shop_api(http: httpx.AsyncClient, engine: AsyncEngine, shop: ProgramContext) -> Api:
    return Api(http, await make_key(engine, shop, "admin"))


async def made(api: Api, kind: str = "physical", **overrides: Any) -> dict[str, Any]:
    body = await reward_body(api, kind, **overrides)
    answer = await api.post("/v1/rewards", body)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def redeem(api: Api, key: str, member_id: str) -> dict[str, Any]:
    answer = await api.post(f"/v1/rewards/{key}/redemptions", {"member": {"id": member_id}})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def reward(api: Api, key: str) -> dict[str, Any]:
    answer = await api.get(f"/v1/rewards/{key}")
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def field_error(page: str, name: str) -> str:
    """The message a form shows beside field ``name``."""
    field = re.escape(f'id="f-{name}"')
    found = re.search(rf'{field}(?:(?!</div>).)*?class="field-error">([^<]*)<', page, re.S)
    assert found, f"no error beside {name}"
    return found.group(1)


FORM = {
    "currency": "points",
    "price": "0",
    "status": "active",
    "stock_total": "",
    "stock_total_was": "",
}


async def test_the_shop_shows_price_stock_visibility_and_status(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    mug = await made(
        shop_api, name="Logo mug", stock=5, price=500, tier_prices={"gold": 300}, min_tier="silver"
    )
    await made(shop_api, name="Old poster", status="archived")
    member = await new_member(shop_api, points=2000, tier="gold")
    await redeem(shop_api, mug["key"], member)
    await console_as(browser, engine, shop, Role.MARKETING)

    page = await browser.get("/console/rewards")
    assert page.status_code == 200
    assert "Logo mug" in page.text and "Old poster" in page.text
    assert "4 left of 5" in page.text  # one redeemed
    assert "Tier silver and above" in page.text and "gold: 300" in page.text
    assert 'href="/console/rewards/new"' in page.text
    archived = await browser.get("/console/rewards", status="archived")
    assert "Old poster" in archived.text and "Logo mug" not in archived.text

    one = await browser.get(f"/console/rewards/{mug['key']}")
    assert one.status_code == 200 and 'id="reward-form"' in one.text
    assert 'name="stock_total" type="text" value="5"' in one.text


async def test_a_reward_made_in_the_console_is_what_the_api_answers(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    await console_as(browser, engine, shop, Role.MARKETING)
    form = {
        **FORM,
        "key": "lounge",
        "kind": "event",
        "name": "Gold lounge evening",
        "price": "1500",
        "tier_price_gold": "1200",
        "tier_price_vip": "0",
        "stock_total": "20",
        "min_tier": "gold",
        "available_from": "2027-03-01T09:00",
        "per_member_limit": "1",
    }
    sent = await browser.post("/console/rewards/new", form)
    assert sent.status_code == 303 and sent.headers["location"] == "/console/rewards/lounge"
    made_one = await reward(shop_api, "lounge")
    assert made_one["kind"] == "event" and made_one["price"] == 1500
    assert made_one["tier_prices"] == {"gold": 1200, "vip": 0}
    assert made_one["stock"] == 20 and made_one["min_tier"] == "gold"
    assert made_one["per_member_limit"] == 1
    # 09:00 on the program's clock (Moscow, UTC+3).
    assert made_one["available_from"].startswith("2027-03-01T06:00:00")
    shown = await browser.get("/console/rewards/lounge")
    assert "Reward lounge created." in shown.text
    assert 'value="2027-03-01T09:00"' in shown.text


async def test_bad_input_shows_the_fields_message_and_creates_nothing(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    await console_as(browser, engine, shop, Role.MARKETING)
    bad = {**FORM, "key": "mug", "kind": "physical", "name": "Mug", "price": "-5"}
    page = await browser.post("/console/rewards/new", bad)
    assert page.status_code == 422
    assert "greater than or equal to 0" in field_error(page.text, "price")
    assert 'value="Mug"' in page.text  # what was typed is kept
    assert (await shop_api.get("/v1/rewards/mug")).status_code == 404

    words = await browser.post("/console/rewards/new", {**bad, "price": "cheap"})
    assert words.status_code == 422 and "whole number" in field_error(words.text, "price")

    existing = await made(shop_api, name="The first one")
    again = {**bad, "key": existing["key"], "price": "10"}
    duplicate = await browser.post("/console/rewards/new", again)
    assert duplicate.status_code == 422
    assert "already exists" in field_error(duplicate.text, "key")
    assert (await reward(shop_api, existing["key"]))["name"] == "The first one"

    campaignless = {**bad, "kind": "discount_coupon", "price": "10", "key": "coupon"}
    refused = await browser.post("/console/rewards/new", campaignless)
    assert refused.status_code == 422 and field_error(refused.text, "coupon_campaign")
    assert (await shop_api.get("/v1/rewards/coupon")).status_code == 404


async def test_editing_changes_what_differs_and_restocks_by_the_total(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    mug = await made(shop_api, name="Mug", stock=5, price=100)
    member = await new_member(shop_api, points=1000)
    await redeem(shop_api, mug["key"], member)
    await redeem(shop_api, mug["key"], member)
    await console_as(browser, engine, shop, Role.OWNER)
    edit = {
        **FORM,
        "name": "Blue mug",
        "category": "gifts",
        "price": "100",
        "stock_total": "10",
        "stock_total_was": "5",
    }
    saved = await browser.post(f"/console/rewards/{mug['key']}", edit)
    assert saved.status_code == 303
    after = await reward(shop_api, mug["key"])
    assert after["name"] == "Blue mug" and after["stock"] == 8  # 10 in all, 2 redeemed

    below = {**edit, "name": "Red mug", "stock_total": "1", "stock_total_was": "10"}
    page = await browser.post(f"/console/rewards/{mug['key']}", below)
    assert page.status_code == 422
    assert "below the 2 already redeemed" in field_error(page.text, "stock_total")
    unchanged = await reward(shop_api, mug["key"])
    assert unchanged["name"] == "Blue mug" and unchanged["stock"] == 8

    # A total left as the page showed it keeps the stock (a redemption since then counts).
    await redeem(shop_api, mug["key"], member)
    same = {**edit, "name": "Green mug", "stock_total_was": "10"}
    assert (await browser.post(f"/console/rewards/{mug['key']}", same)).status_code == 303
    latest = await reward(shop_api, mug["key"])
    assert latest["name"] == "Green mug" and latest["stock"] == 7

    archived = await browser.post(f"/console/rewards/{mug['key']}", {**same, "status": "archived"})
    assert archived.status_code == 303
    assert (await reward(shop_api, mug["key"]))["status"] == "archived"


async def test_codes_are_added_to_a_pool_one_per_line(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    cinema = await made(shop_api, "digital", code_source="pool", name="Cinema")
    physical = await made(shop_api, name="Mug")
    await console_as(browser, engine, shop, Role.MARKETING)
    page = await browser.get(f"/console/rewards/{cinema['key']}")
    assert 'id="codes-form"' in page.text
    sent = await browser.post(
        f"/console/rewards/{cinema['key']}/codes", {"codes": "CINE-1\n CINE-2 \n\nCINE-1\n"}
    )
    assert sent.status_code == 303
    assert (await reward(shop_api, cinema["key"]))["codes_available"] == 2
    shown = await browser.get(f"/console/rewards/{cinema['key']}")
    assert "Codes added: 2; already in the pool: 1; free now: 2." in shown.text

    refused = await browser.post(f"/console/rewards/{physical['key']}/codes", {"codes": "X-1"})
    assert refused.status_code == 422 and "has no code pool" in refused.text
    empty = await browser.post(f"/console/rewards/{cinema['key']}/codes", {"codes": "  \n"})
    assert empty.status_code == 422 and field_error(empty.text, "codes")


async def test_redemptions_are_handed_over_or_cancelled_from_the_page(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    mug = await made(shop_api, name="Mug", stock=3, price=100)
    member = await new_member(shop_api, points=1000)
    first = await redeem(shop_api, mug["key"], member)
    second = await redeem(shop_api, mug["key"], member)
    await console_as(browser, engine, shop, Role.OWNER)
    page = await browser.get(f"/console/rewards/{mug['key']}/redemptions")
    assert page.status_code == 200 and member in page.text
    assert page.text.count("Mark handed over") == 2

    base = f"/console/rewards/{mug['key']}/redemptions"
    fulfilled = await browser.post(f"{base}/{first['id']}/fulfil", {"note": "TRACK-42"})
    assert fulfilled.status_code == 303 and fulfilled.headers["location"] == base
    one = (await shop_api.get(f"/v1/reward-redemptions/{first['id']}")).json()
    assert one["status"] == "fulfilled" and one["details"]["fulfilment_note"] == "TRACK-42"

    cancelled = await browser.post(f"{base}/{second['id']}/cancel", {"reason": "broken"})
    assert cancelled.status_code == 303
    two = (await shop_api.get(f"/v1/reward-redemptions/{second['id']}")).json()
    assert two["status"] == "cancelled"
    balance = (await shop_api.get(f"/v1/members/{member}/balance")).json()
    assert balance["balances"][0]["available"] == 900  # 100 spent, 100 refunded
    assert (await reward(shop_api, mug["key"]))["stock"] == 2

    issued = await browser.get(base, status="issued")
    assert "No redemptions." in issued.text
    fulfilled_page = await browser.get(base, status="fulfilled")
    assert "TRACK-42" in fulfilled_page.text
    # A fulfilled redemption cannot be cancelled: a conflict page, nothing changes.
    late = await browser.post(f"{base}/{first['id']}/cancel", {})
    assert late.status_code == 409 and "cannot be cancelled" in late.text


async def test_a_cancellation_is_audited_once_and_a_second_one_says_so(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    mug = await made(shop_api, name="Mug", stock=3, price=100)
    member = await new_member(shop_api, points=1000)
    taken = await redeem(shop_api, mug["key"], member)
    await console_as(browser, engine, shop, Role.OWNER)
    base = f"/console/rewards/{mug['key']}/redemptions"
    cancelled = await browser.post(f"{base}/{taken['id']}/cancel", {"reason": "broken"})
    assert cancelled.status_code == 303
    assert "the points went back" in (await browser.get(base)).text
    again = await browser.post(f"{base}/{taken['id']}/cancel", {"reason": "broken"})
    assert again.status_code == 303
    shown = (await browser.get(base)).text
    assert "cancelled already: nothing was changed" in shown
    assert "the points went back" not in shown
    balance = (await shop_api.get(f"/v1/members/{member}/balance")).json()
    assert balance["balances"][0]["available"] == 1000
    log = (await shop_api.get("/v1/audit", subject_id=member)).json()["items"]
    entries = [e for e in log if e["action"] == "reward_redemption.cancelled"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["actor_kind"] == "staff" and entry["subject_type"] == "member"
    assert entry["before"]["status"] == "issued"
    assert entry["after"] == {
        "redemption_id": taken["id"],
        "status": "cancelled",
        "reward": mug["key"],
        "points_returned": 100,
        "currency": "points",
        "reason": "broken",
    }
    routes = [e["action"] for e in (await shop_api.get("/v1/audit")).json()["items"]]
    assert not [r for r in routes if r.endswith("/cancel")]  # no second, generic entry


@pytest.mark.parametrize("role", [Role.ANALYST, Role.SUPPORT])
async def test_a_role_without_catalog_manage_sees_no_forms_and_is_refused(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api, role: Role
) -> None:
    mug = await made(shop_api, name="Mug", price=100)
    cinema = await made(shop_api, "digital", code_source="pool", name="Cinema")
    member = await new_member(shop_api, points=1000)
    taken = await redeem(shop_api, mug["key"], member)
    await console_as(browser, engine, shop, role)
    listing = await browser.get("/console/rewards")
    assert listing.status_code == 200 and "Mug" in listing.text
    assert "/console/rewards/new" not in listing.text
    one = await browser.get(f"/console/rewards/{cinema['key']}")
    assert one.status_code == 200
    assert 'id="reward-form"' not in one.text and 'id="codes-form"' not in one.text
    assert (await browser.get("/console/rewards/new")).status_code == 403
    form = {**FORM, "key": "x", "kind": "physical", "name": "X"}
    assert (await browser.post("/console/rewards/new", form)).status_code == 403
    assert (await browser.post(f"/console/rewards/{mug['key']}", form)).status_code == 403
    assert (
        await browser.post(f"/console/rewards/{cinema['key']}/codes", {"codes": "A"})
    ).status_code == 403
    base = f"/console/rewards/{mug['key']}/redemptions"
    fulfil = await browser.post(f"{base}/{taken['id']}/fulfil", {})
    assert fulfil.status_code == 403
    assert (await browser.post(f"{base}/{taken['id']}/cancel", {})).status_code == 403
    redemptions = await browser.get(base)
    if role == Role.ANALYST:  # reads no one's data
        assert redemptions.status_code == 403
    else:
        assert redemptions.status_code == 200 and "Mark handed over" not in redemptions.text
    assert (await reward(shop_api, mug["key"]))["name"] == "Mug"
    after = (await shop_api.get(f"/v1/reward-redemptions/{taken['id']}")).json()
    assert after["status"] == "issued"


async def test_another_programs_reward_is_not_found(
    browser: Browser,
    engine: AsyncEngine,
    shop: ProgramContext,
    shop_api: Api,
    http: httpx.AsyncClient,
) -> None:
    other = await make_program(engine, tiers=LADDER)
    other_api = Api(http, await make_key(engine, other, "admin"))
    theirs = await made(other_api, name="Their mug", price=10)
    member = await new_member(other_api, points=100)
    taken = await redeem(other_api, theirs["key"], member)
    mine = await made(shop_api, name="My mug", price=10)
    await console_as(browser, engine, shop, Role.OWNER)

    assert "Their mug" not in (await browser.get("/console/rewards")).text
    assert (await browser.get(f"/console/rewards/{theirs['key']}")).status_code == 404
    edit = {**FORM, "name": "Stolen", "price": "10"}
    assert (await browser.post(f"/console/rewards/{theirs['key']}", edit)).status_code == 404
    redemptions = await browser.get(f"/console/rewards/{theirs['key']}/redemptions")
    assert redemptions.status_code == 404
    # Their redemption, reached through a reward of mine, is not found either.
    path = f"/console/rewards/{mine['key']}/redemptions/{taken['id']}"
    assert (await browser.post(f"{path}/fulfil", {})).status_code == 404
    assert (await browser.post(f"{path}/cancel", {})).status_code == 404
    assert (await reward(other_api, theirs["key"]))["name"] == "Their mug"
    still = (await other_api.get(f"/v1/reward-redemptions/{taken['id']}")).json()
    assert still["status"] == "issued"


async def test_the_pages_speak_russian(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, shop_api: Api
) -> None:
    mug = await made(shop_api, name="Mug", stock=3, tier_prices={"gold": 50})
    member = await new_member(shop_api, points=1000)
    await redeem(shop_api, mug["key"], member)
    await console_as(browser, engine, shop, Role.OWNER)
    russian = {"accept-language": "ru"}
    listing = await browser.client.get("/console/rewards", headers=russian)
    assert "Магазин наград" in listing.text and "осталось 2 из 3" in listing.text
    one = await browser.client.get(f"/console/rewards/{mug['key']}", headers=russian)
    assert "Изменить награду" in one.text and "Уже получено: 1." in one.text
    new = await browser.client.get("/console/rewards/new", headers=russian)
    assert "Новая награда" in new.text
    taken = await browser.client.get(f"/console/rewards/{mug['key']}/redemptions", headers=russian)
    assert "Отметить выданной" in taken.text
