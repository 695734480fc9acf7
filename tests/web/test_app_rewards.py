"""The rewards shop in the app: what the member may see at their price, what they can
afford, redeeming once per confirmation however often it is sent, refusals that change
nothing, and the member's own redemptions only."""

import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.rewards.conftest import available, new_member, new_reward, redemption_count
from tests.tiers.test_service import LADDER
from tests.web.conftest import Browser, app_as

FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


@pytest.fixture
async def shop(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, tiers=LADDER)


@pytest.fixture
async def sapi(api: Api, engine: AsyncEngine, shop: ProgramContext) -> Api:
    return Api(api.client, await make_key(engine, shop, "admin"))


async def form_key(browser: Browser, shop: ProgramContext, key: str) -> str:
    page = await browser.get(f"/app/{shop.slug}/rewards/{key}/redeem")
    assert page.status_code == 200, page.text
    found = FORM_KEY.search(page.text)
    assert found, "the confirmation carries its form's key"
    return found.group(1)


async def signed_in(
    browser: Browser, engine: AsyncEngine, shop: ProgramContext, member: str
) -> None:
    await app_as(browser, engine, shop, UUID(member))


async def test_the_catalog_shows_what_the_member_may_see_and_can_afford(
    sapi: Api, browser: Browser, engine: AsyncEngine, shop: ProgramContext
) -> None:
    anna = await new_member(sapi, points=300)
    cheap = await new_reward(sapi, name="Paper cup", price=100, stock=3)
    dear = await new_reward(sapi, name="Espresso machine", price=5_000)
    silver = await new_reward(
        sapi, name="Silver mug", price=200, tier_prices={"silver": 150}, min_tier="silver"
    )
    await new_reward(sapi, name="Gold spoon", price=10, min_tier="gold")
    await new_reward(sapi, name="Old poster", price=10, status="archived")
    later = (clock.now() + timedelta(days=3)).isoformat()
    await new_reward(sapi, name="Winter scarf", price=10, available_from=later)
    await new_reward(sapi, name="Sold-out hat", price=10, stock=0)
    await signed_in(browser, engine, shop, anna)

    page = (await browser.get(f"/app/{shop.slug}/rewards")).text
    assert "You have 300 points." in page
    assert "Paper cup" in page and "Espresso machine" in page and "3 left" in page
    assert "Not enough points yet" in page
    for hidden in ("Silver mug", "Gold spoon", "Old poster", "Winter scarf", "Sold-out hat"):
        assert hidden not in page
    affordable = (await browser.get(f"/app/{shop.slug}/rewards", affordable="true")).text
    assert "Paper cup" in affordable and "Espresso machine" not in affordable

    # Silver members see their own price; a reward for gold and above stays hidden.
    boris = await new_member(sapi, points=300, tier="silver")
    await signed_in(browser, engine, shop, boris)
    page = (await browser.get(f"/app/{shop.slug}/rewards")).text
    assert "Silver mug" in page and "150 points" in page and "Gold spoon" not in page
    assert (await browser.get(f"/app/{shop.slug}/rewards/{silver['key']}")).status_code == 200
    hidden = await browser.get(f"/app/{shop.slug}/rewards/{silver['key']}x")
    assert hidden.status_code == 404
    await signed_in(browser, engine, shop, anna)
    assert (await browser.get(f"/app/{shop.slug}/rewards/{silver['key']}")).status_code == 404
    detail = await browser.get(f"/app/{shop.slug}/rewards/{dear['key']}")
    assert detail.status_code == 200
    assert "You do not have enough points for this reward yet." in detail.text
    assert f"/rewards/{dear['key']}/redeem" not in detail.text
    assert (
        f"/rewards/{cheap['key']}/redeem"
        in (await browser.get(f"/app/{shop.slug}/rewards/{cheap['key']}")).text
    )


async def test_redeeming_twice_with_one_form_spends_the_points_once(
    sapi: Api, browser: Browser, engine: AsyncEngine, shop: ProgramContext
) -> None:
    anna = await new_member(sapi, points=1_000)
    reward = await new_reward(sapi, "digital", name="Cinema ticket", price=300, stock=5)
    await signed_in(browser, engine, shop, anna)
    confirm = await browser.get(f"/app/{shop.slug}/rewards/{reward['key']}/redeem")
    assert "Redeem Cinema ticket?" in confirm.text and "700 points" in confirm.text
    key = FORM_KEY.search(confirm.text)
    assert key
    form = {"form_key": key.group(1)}
    path = f"/app/{shop.slug}/rewards/{reward['key']}/redeem"

    first = await browser.post(path, form)
    again = await browser.post(path, form)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert await available(sapi, anna) == 700
    assert await redemption_count(engine, shop) == 1
    mine = (await sapi.get(f"/v1/members/{anna}/reward-redemptions")).json()["items"]
    assert len(mine) == 1 and first.headers["location"].endswith(mine[0]["id"])

    result = await browser.client.get(first.headers["location"])
    assert result.status_code == 200
    assert mine[0]["code"] in result.text and "700 points" in result.text
    assert "Done: the reward is yours." in result.text

    # A new confirmation is a new redemption.
    second = await browser.post(path, {"form_key": await form_key(browser, shop, reward["key"])})
    assert second.status_code == 303 and await available(sapi, anna) == 400


async def test_not_enough_points_or_no_stock_refuses_and_changes_nothing(
    sapi: Api, browsers: Any, engine: AsyncEngine, shop: ProgramContext
) -> None:
    anna, boris = await new_member(sapi, points=250), await new_member(sapi, points=250)
    last = await new_reward(sapi, name="Last teapot", price=200, stock=1)
    annas, boriss = browsers(), browsers()
    await signed_in(annas, engine, shop, anna)
    await signed_in(boriss, engine, shop, boris)
    path = f"/app/{shop.slug}/rewards/{last['key']}/redeem"
    annas_form = {"form_key": await form_key(annas, shop, last["key"])}
    boriss_form = {"form_key": await form_key(boriss, shop, last["key"])}

    taken = await boriss.post(path, boriss_form)
    assert taken.status_code == 303
    refused = await annas.post(path, annas_form)
    assert refused.status_code == 422
    assert "Sorry, this reward is out of stock." in refused.text
    assert await available(sapi, anna) == 250 and await redemption_count(engine, shop) == 1

    # Boris has 50 points left: a 200-point reward is refused the same way.
    dear = await new_reward(sapi, name="Big teapot", price=200)
    form = {"form_key": await form_key(annas, shop, dear["key"])}  # Anna may; Boris now can't
    poor = await boriss.post(f"/app/{shop.slug}/rewards/{dear['key']}/redeem", form)
    assert poor.status_code == 422
    assert "You do not have enough points for this reward yet." in poor.text
    assert await available(sapi, boris) == 50 and await redemption_count(engine, shop) == 1
    no_key = await annas.post(f"/app/{shop.slug}/rewards/{dear['key']}/redeem", {})
    assert no_key.status_code == 422 and await redemption_count(engine, shop) == 1


async def test_a_member_sees_only_their_own_redemptions(
    sapi: Api, browsers: Any, engine: AsyncEngine, shop: ProgramContext
) -> None:
    anna, boris = await new_member(sapi, points=500), await new_member(sapi, points=500)
    mug = await new_reward(sapi, name="Red mug", price=100)
    pen = await new_reward(sapi, "digital", name="Blue pen", price=100)
    annas, boriss = browsers(), browsers()
    await signed_in(annas, engine, shop, anna)
    await signed_in(boriss, engine, shop, boris)
    for who, reward in ((annas, mug), (boriss, pen)):
        form = {"form_key": await form_key(who, shop, reward["key"])}
        done = await who.post(f"/app/{shop.slug}/rewards/{reward['key']}/redeem", form)
        assert done.status_code == 303
    boris_redemption = (await sapi.get(f"/v1/members/{boris}/reward-redemptions")).json()
    boris_id = boris_redemption["items"][0]["id"]

    mine = await annas.get(f"/app/{shop.slug}/my-rewards")
    assert "Red mug" in mine.text and "Being prepared" in mine.text and "Blue pen" not in mine.text
    theirs = await annas.get(f"/app/{shop.slug}/my-rewards/{boris_id}")
    assert theirs.status_code == 404 and boris_redemption["items"][0]["code"] not in theirs.text
    assert (await boriss.get(f"/app/{shop.slug}/my-rewards/{boris_id}")).status_code == 200
