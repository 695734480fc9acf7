"""The console's analytics pages show the API's figures: the KPIs of the hand-worked data
set (``tests/analytics/kpis_dataset.py``), the tier table, cohorts, the RFM grid, CLV,
liability and experiments; bad input is a readable error; the CSV holds every figure."""

import csv
import io
import re

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
from kopilka.kit.clock import clock
from tests.analytics.kpis_dataset import NOW, build
from tests.conftest import Api
from tests.web.conftest import Browser, console_as

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def figure(page: str, label: str) -> str:
    found = re.search(
        r'<div class="figure">([^<]*)</div>\s*<div class="figure-label">' + re.escape(label), page
    )
    assert found, f"no figure labelled {label!r}"
    return found.group(1)


async def test_every_analytics_page_shows_the_hand_worked_figures(
    browser: Browser, engine: AsyncEngine, api: Api
) -> None:
    data = await build(engine, api)
    await console_as(browser, engine, data.program, Role.ANALYST)
    with clock.frozen(NOW):
        kpis = await browser.get("/console/analytics", **MARCH)
        months = await browser.get("/console/analytics", **MARCH, by="month")
        tiers = await browser.get("/console/analytics/tiers", **MARCH)
        cohorts = await browser.get("/console/analytics/cohorts", to="2026-03-31")
        others = {
            path: await browser.get(path)
            for path in (
                "/console/analytics/rfm",
                "/console/analytics/clv",
                "/console/analytics/liability",
                "/console/analytics/experiments",
            )
        }
        download = await browser.get("/console/analytics/kpis.csv", **MARCH, by="store")
    for page in (kpis, months, tiers, cohorts, *others.values(), download):
        assert page.status_code == 200, page.text[-800:]
    # March: 6 checks, 5 of them with a card (the claimed one counts as a member's).
    assert figure(kpis.text, "Purchases") == "6"
    assert figure(kpis.text, "Participants") == "4"
    assert months.text.count('<svg class="chart"') == 2
    # The seed's table: the base tier made 4 of the 6 checks … as the API says.
    base = re.search(r'<th scope="row">base</th>(.*?)</tr>', tiers.text, re.S)
    assert base and re.findall(r'<td class="num">([^<]*)</td>', base[1])[0] == "3"
    assert "Without a card" in tiers.text
    assert "2026-03" in cohorts.text
    assert "No member has been scored yet" in others["/console/analytics/rfm"].text
    assert "have not been fitted yet" in others["/console/analytics/clv"].text
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [r["kind"] for r in rows] == ["total", "store", "store"]
    assert rows[0]["purchases"] == "6" and rows[0]["from"] == "2026-03-01"


async def test_a_bad_period_is_a_readable_error_and_a_till_role_is_refused(
    browser: Browser, engine: AsyncEngine, api: Api
) -> None:
    data = await build(engine, api)
    await console_as(browser, engine, data.program, Role.ANALYST)
    with clock.frozen(NOW):
        reversed_ = await browser.get(
            "/console/analytics", **{"from": "2026-03-31", "to": "2026-03-01"}
        )
        not_a_day = await browser.get("/console/analytics/tiers", to="31.03.2026")
        unknown = await browser.get("/console/analytics", by="weather")
        no_experiment = await browser.get("/console/analytics/experiments/nothing-like-it")
        far = [
            await browser.get(path, **params)
            for path in ("/console/analytics", "/console/analytics/kpis.csv")
            for params in ({"to": "9999-12-31"}, {"from": "0001-01-01", "to": "0001-01-02"})
        ]
        tiers_on_the_kpi_page = await browser.get("/console/analytics", by="tier")
    assert reversed_.status_code == 422 and "from" in reversed_.text
    assert not_a_day.status_code == 422 and "31.03.2026" in not_a_day.text
    assert unknown.status_code == 422 and "by" in unknown.text
    assert no_experiment.status_code == 404
    assert [page.status_code for page in far] == [422] * 4
    assert (
        tiers_on_the_kpi_page.status_code == 200 and "Without a card" in tiers_on_the_kpi_page.text
    )
    cashier = await console_as(browser, engine, data.program, Role.CASHIER)
    assert (await cashier.get("/console/analytics")).status_code == 403
