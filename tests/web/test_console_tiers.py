"""The console's tiers page: the ladder in words, members per tier (counted by the tiers
service, one program only), and where the ladder is edited."""

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.tiers.service import tier_service
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.tiers.test_service import LADDER
from tests.web.conftest import Browser, console_as

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
async def laddered(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, tiers=LADDER)


async def members_with_spend(api: Api, *spends: int) -> None:
    """A member per amount, each with one purchase of it (before ``T0``)."""
    for spend in spends:
        body = member_body()
        assert (await api.post("/v1/members", body)).status_code == 201
        if spend:
            moment = (T0 - timedelta(days=3)).isoformat()
            purchase = purchase_body(body["external_id"], spend, occurred_at=moment)
            assert (await api.post("/v1/purchases", purchase)).status_code == 201


def counts(page: httpx.Response) -> dict[str, int]:
    table = re.search(r'<table id="tier-counts">(.*?)</table>', page.text, re.S)
    assert table, "the page has the table of members per tier"
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td class="num">([^<]+)</td>', table.group(1)
    )
    return {name: int(number.replace(",", "")) for name, number in rows}


async def test_the_ladder_in_words_and_members_per_tier(
    browser: Browser, http: httpx.AsyncClient, engine: AsyncEngine, laddered: ProgramContext
) -> None:
    api = Api(http, await make_key(engine, laddered, "admin"))
    other = await make_program(engine, tiers=LADDER)
    with clock.frozen(T0):
        await members_with_spend(api, 0, 20_000, 150_000, 600_000)
        await members_with_spend(Api(http, await make_key(engine, other, "admin")), 600_000)
        await console_as(browser, engine, laddered, Role.ANALYST)
        page = await browser.get("/console/tiers")
        russian = await browser.client.get("/console/tiers", headers={"accept-language": "ru"})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "spend RUB1,000.00 or make 10 purchases" in text  # silver
    assert "earns ×1.25" in text and "earns ×1.5, free delivery" in text
    assert "By invitation only" in text and "What counts: the last 12 months" in text
    assert counts(page) == {"Base": 2, "Silver": 1, "Gold": 1, "VIP": 0, "All members": 4}
    assert '<svg class="chart"' in page.text
    assert "changed in the draft" in text
    assert 'href="/console/program/draft">Edit the ladder' not in page.text  # analyst: no edit
    assert "Только по приглашению" in russian.text and "Участники по уровням" in russian.text


async def test_the_service_counts_each_rung_of_one_program(
    http: httpx.AsyncClient, engine: AsyncEngine, laddered: ProgramContext
) -> None:
    api = Api(http, await make_key(engine, laddered, "admin"))
    with clock.frozen(T0):
        await members_with_spend(api, 150_000, 150_000, 0)
    async with reading(engine) as conn:
        found = await tier_service.members_per_tier(conn, laddered)
        assert found == {"base": 1, "silver": 2, "gold": 0, "vip": 0}
        plain = await make_program(engine)
        assert await tier_service.members_per_tier(conn, plain) == {}


async def test_a_program_without_a_ladder_says_where_to_add_one(
    browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    await console_as(browser, engine, program, Role.MARKETING)
    page = await browser.get("/console/tiers")
    assert page.status_code == 200
    assert "The program has no tier ladder." in html.unescape(page.text)
    assert 'href="/console/program/draft">Edit the ladder in the draft' in page.text


async def test_the_tiers_page_needs_a_signed_in_staff_member(browser: Browser) -> None:
    page = await browser.get("/console/tiers")
    assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in")
