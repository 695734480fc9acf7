"""The member's wallet in the app: their coupons (valid, used, expired) with codes and QR
codes, gift cards and the money wallet; never another member's."""

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique
from tests.web.conftest import Browser, app_as

T0 = datetime(2031, 7, 1, 9, 0, tzinfo=UTC)
QR = re.compile(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="QR code of ([^"]+)"')


async def enrol(api: Api) -> tuple[UUID, str]:
    body = member_body()
    made = await api.post("/v1/members", body)
    assert made.status_code == 201, made.text
    return UUID(made.json()["id"]), body["external_id"]


async def campaign(api: Api, name: str, discount: dict[str, Any], **fields: Any) -> str:
    key = unique("camp").lower()
    body = {"key": key, "name": name, "discount": discount, **fields}
    made = await api.post("/v1/coupon-campaigns", body)
    assert made.status_code == 201, made.text
    return key


async def give(api: Api, key: str, member: UUID, code: str, **fields: Any) -> None:
    body = {"codes": [code], "members": [{"id": str(member)}], **fields}
    made = await api.post(f"/v1/coupon-campaigns/{key}/codes", body)
    assert made.status_code == 201, made.text


def qr_codes(page: str) -> dict[str, str]:
    """Each QR image of the page: the code it is labelled with → its SVG."""
    return {code: base64.b64decode(data).decode() for data, code in QR.findall(page)}


async def test_the_wallet_shows_each_coupon_with_its_state_code_and_qr(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna, anna_ext = await enrol(api)
        boris, _ = await enrol(api)
        tenth = await campaign(api, "Ten percent off", {"kind": "percent", "value": 10})
        fixed = await campaign(
            api, "Two hundred off", {"kind": "fixed", "value": 20_000}, min_basket=100_000
        )
        await give(api, tenth, anna, "ANNA-VALID-1")
        await give(api, fixed, anna, "ANNA-OLD-1", valid_until=(T0 + timedelta(days=1)).isoformat())
        await give(api, tenth, anna, "ANNA-SPENT-1")
        await give(api, tenth, boris, "BORIS-ONLY-1")
        soon = await campaign(
            api,
            "Autumn sale",
            {"kind": "percent", "value": 15},
            valid_from=(T0 + timedelta(days=10)).isoformat(),
        )
        await give(api, soon, anna, "ANNA-SOON-1")
        await give(api, tenth, anna, "ANNA-OFF-1")
        disabled = await api.patch("/v1/coupons/ANNA-OFF-1", {"status": "disabled"})
        assert disabled.status_code == 200, disabled.text
        bought = await api.post(
            "/v1/purchases", purchase_body(anna_ext, 50_000, coupon_codes=["ANNA-SPENT-1"])
        )
        assert bought.status_code == 201, bought.text
    with clock.frozen(T0 + timedelta(days=2)):
        await app_as(browser, engine, program, anna)
        page = await browser.get(f"/app/{program.slug}/coupons")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Ten percent off" in text and "10% off" in text
    assert "Two hundred off" in text and "on a purchase from" in text
    order = ["ANNA-VALID-1", "ANNA-SOON-1", "ANNA-SPENT-1", "ANNA-OLD-1", "ANNA-OFF-1"]
    assert [text.index(code) for code in order] == sorted(text.index(code) for code in order)
    assert ">Valid<" in text and ">Used<" in text and ">Out of date<" in text
    assert "Valid from Jul 11, 2031" in text and ">Not available<" in text
    assert "BORIS-ONLY-1" not in text
    images = qr_codes(text)
    assert set(images) == {"ANNA-VALID-1", "ANNA-SOON-1"}  # what can be used gets a QR code
    assert images["ANNA-VALID-1"].lstrip().startswith("<svg")


async def test_one_coupon_large_and_never_another_members(
    api: Api, browsers: Any, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, _ = await enrol(api)
    boris, _ = await enrol(api)
    key = await campaign(
        api, "Free delivery", {"kind": "free_delivery"}, description="On any online order."
    )
    await give(api, key, anna, "ANNA-SHIP-1")
    await give(api, key, boris, "BORIS-SHIP-1")
    codes = {
        who: (await api.get(f"/v1/members/{who}/coupons")).json()["items"][0]["id"]
        for who in (anna, boris)
    }
    annas = await app_as(browsers(), engine, program, anna)
    mine = await annas.get(f"/app/{program.slug}/coupons/{codes[anna]}")
    assert mine.status_code == 200
    assert "On any online order." in mine.text and set(qr_codes(mine.text)) == {"ANNA-SHIP-1"}
    theirs = await annas.get(f"/app/{program.slug}/coupons/{codes[boris]}")
    assert theirs.status_code == 404 and "BORIS-SHIP-1" not in theirs.text


async def test_gift_cards_and_the_money_wallet_when_the_member_has_them(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    anna, _ = await enrol(api)
    boris, _ = await enrol(api)
    await app_as(browser, engine, program, anna)
    empty = (await browser.get(f"/app/{program.slug}/coupons")).text
    assert "No coupons yet." in empty and "My gift cards" not in empty
    assert "My wallet" not in empty

    card = await api.post(
        "/v1/gift-cards", {"amount": 150_000, "code": "GIFT-ANNA-1", "member_id": str(anna)}
    )
    assert card.status_code == 201, card.text
    other = await api.post(
        "/v1/gift-cards", {"amount": 990_000, "code": "GIFT-BORIS-1", "member_id": str(boris)}
    )
    assert other.status_code == 201, other.text
    topped = await api.post(f"/v1/members/{anna}/wallet/top-ups", {"amount": 25_000})
    assert topped.status_code == 201, topped.text
    page = (await browser.get(f"/app/{program.slug}/coupons")).text
    assert "My gift cards" in page and "GIFT-ANNA-1" in page and "1,500.00" in page
    assert "My wallet" in page and "250.00" in page
    assert "GIFT-BORIS-1" not in page and "9,900.00" not in page
    assert "GIFT-ANNA-1" in qr_codes(page)


WELCOME = {
    "id": "welcome-week",
    "name": "Welcome week",
    "description": "Double points on your first purchase this week.",
    "trigger": "signup",
    "effects": [
        {"type": "boost", "factor": 2, "valid_days": 7},
        {"type": "reward", "reward": "club-mug", "valid_days": 30},
        {"type": "coupon", "campaign": "welcome-ten", "valid_days": 30},
    ],
}


async def test_offers_show_the_members_own_boosts_rewards_and_coupons(
    api: Api, browsers: Any, engine: AsyncEngine
) -> None:
    program = await make_program(engine, rules=[WELCOME])
    api = Api(api.client, await make_key(engine, program, "admin"))
    with clock.frozen(T0):
        made = await api.post(
            "/v1/coupon-campaigns",
            {
                "key": "welcome-ten",
                "name": "Welcome ten",
                "discount": {"kind": "percent", "value": 10},
            },
        )
        assert made.status_code == 201, made.text
        mug = {"key": "club-mug", "name": "Club mug", "kind": "physical", "price": 100}
        assert (await api.post("/v1/rewards", mug)).status_code == 201
        anna, _ = await enrol(api)
        boris, boris_ext = await enrol(api)
        bought = purchase_body(boris_ext, 10_000, occurred_at=T0.isoformat())
        spent = await api.post("/v1/purchases", bought)
        assert spent.status_code == 201 and spent.json()["points_earned"] == 200
    with clock.frozen(T0 + timedelta(days=1)):
        annas = await app_as(browsers(), engine, program, anna)
        page = await annas.get(f"/app/{program.slug}/offers")
        boriss = await app_as(browsers(), engine, program, boris)
        theirs = await boriss.get(f"/app/{program.slug}/offers")
    assert page.status_code == 200, page.text
    text = page.text
    assert text.count("×2 points on your next purchase") == 1
    assert "Welcome week" in text and "Double points on your first purchase this week." in text
    assert "A reward for you: Club mug" in text and "/rewards/club-mug" in text
    assert "Coupons you can use" in text and "Welcome ten" in text and "10% off" in text
    # Boris used his boost on his purchase; his coupon is his own.
    assert "×2 points" not in theirs.text and "A reward for you: Club mug" in theirs.text
    annas_codes = (await api.get(f"/v1/members/{anna}/coupons")).json()["items"]
    boris_codes = (await api.get(f"/v1/members/{boris}/coupons")).json()["items"]
    assert annas_codes[0]["id"] in text and boris_codes[0]["id"] not in text
    # A week on, the boost has ended; after a month, everything has.
    with clock.frozen(T0 + timedelta(days=8)):
        later = (await annas.get(f"/app/{program.slug}/offers")).text
    assert "×2 points" not in later and "Club mug" in later
    with clock.frozen(T0 + timedelta(days=31)):
        gone = (await annas.get(f"/app/{program.slug}/offers")).text
    assert "No personal offers right now." in gone
