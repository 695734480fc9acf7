"""The console's dashboard: its figures beside their charts, the period, who may see it."""

import re

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from tests.analytics.dataset import NOW, build
from tests.conftest import Api
from tests.web.conftest import Browser, console_as


def figure(page: str, label: str) -> str:
    """The figure shown on the card labelled ``label``."""
    found = re.search(
        r'<div class="figure">([^<]*)</div>\s*<div class="figure-label">' + re.escape(label),
        page,
    )
    assert found, f"no figure labelled {label!r}"
    return found.group(1)


async def test_the_dashboard_shows_the_hand_worked_figures(
    browser: Browser, engine: AsyncEngine, api: Api
) -> None:
    data = await build(engine, api)
    await console_as(browser, engine, data.program, Role.ANALYST)
    with clock.frozen(NOW):
        page = await browser.get("/console/")
        year = await browser.get("/console/", days="365")
    assert page.status_code == 200, page.text
    text = page.text
    assert figure(text, "Members") == "4" and "1 blocked" in text
    assert figure(text, "Bought in the last 30 days") == "2"
    assert figure(text, "Bought in the last 90 days") == "3"
    assert figure(text, "Outstanding points") == "550"
    assert [figure(text, x) for x in ("Issued", "Redeemed", "Expired", "Adjusted by staff")] == [
        "600",
        "100",
        "500",
        "50",
    ]
    assert figure(year.text, "Issued") == "1,100"
    # Charts are SVG drawn on the server, their numbers in a table beside them.
    assert text.count('<svg class="chart"') == 3
    week = re.search(r"<th scope=\"row\">3/9/26</th>(.*?)</tr>", text, re.S)
    assert week
    cells = re.findall(r'<td class="num">([^<]*)</td>', week[1])
    assert [cell.replace("\xa0", "") for cell in cells] == ["2", "RUB400.00", "RUB200.00"]
    tiers = re.findall(r'<th scope="row">(Base|Silver|VIP)</th>\s*<td class="num">(\d+)</td>', text)
    assert tiers == [("Base", "3"), ("Silver", "0"), ("VIP", "1")]
    assert " style=" not in text and "<script>" not in text


async def test_the_period_selector_offers_the_four_periods_and_refuses_others(
    browser: Browser, engine: AsyncEngine, api: Api
) -> None:
    data = await build(engine, api)
    await console_as(browser, engine, data.program, Role.MARKETING)
    with clock.frozen(NOW):
        page = await browser.get("/console/", days="90")
        odd = await browser.get("/console/", days="31")
        junk = await browser.get("/console/", days="many")
    assert re.findall(r'<option value="(\d+)"', page.text) == ["7", "30", "90", "365"]
    assert '<option value="90" selected>' in page.text
    assert odd.status_code == 422 and "days must be one of 7, 30, 90, 365" in odd.text
    assert junk.status_code == 422


@pytest.mark.parametrize(
    ("role", "home"),
    [
        (Role.SUPPORT, "/console/members"),
        (Role.CASHIER, "/console/members"),
        (Role.STORE_MANAGER, "/console/members"),
    ],
)
async def test_a_role_without_analytics_is_sent_to_its_first_section(
    browser: Browser, engine: AsyncEngine, api: Api, role: Role, home: str
) -> None:
    data = await build(engine, api)
    await console_as(browser, engine, data.program, role)
    landing = await browser.get("/console/")
    assert landing.status_code == 303 and landing.headers["location"] == home


async def test_the_dashboard_needs_a_session(browser: Browser) -> None:
    landing = await browser.get("/console/")
    assert landing.status_code == 303
    assert landing.headers["location"].startswith("/console/sign-in")


async def test_russian_figures_and_texts(browser: Browser, engine: AsyncEngine, api: Api) -> None:
    data = await build(engine, api)
    await console_as(browser, engine, data.program, Role.OWNER)
    with clock.frozen(NOW):
        page = await browser.client.get(
            "/console/", params={"days": "365"}, headers={"accept-language": "ru"}
        )
    assert "Сводка" in page.text and "1\xa0100" in page.text
