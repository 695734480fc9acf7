"""An automated accessibility check (axe-core) of the main pages: no serious or critical
violation (labels, contrast, names of buttons and links, landmarks, headings…)."""

from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

from tests.e2e.conftest import Site, richest_member_with_email, sign_in_member
from tests.e2e.test_console_browser import sign_in

CONSOLE_PAGES = [
    "/console/",
    "/console/members",
    "/console/program",
    "/console/program/draft",
    "/console/tiers",
    "/console/rewards",
    "/console/coupons",
    "/console/stores",
    "/console/segments",
    "/console/templates",
    "/console/broadcasts",
    "/console/tickets",
    "/console/surveys",
    "/console/audit",
]
APP_PAGES = [
    "/app/demo/",
    "/app/demo/history",
    "/app/demo/rewards",
    "/app/demo/coupons",
    "/app/demo/offers",
    "/app/demo/inbox",
    "/app/demo/stores",
    "/app/demo/support",
    "/app/demo/profile",
]
SERIOUS = ("serious", "critical")


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    results = await Axe().run(page)
    return [
        {
            "page": page.url,
            "rule": v["id"],
            "impact": v["impact"],
            "nodes": len(v["nodes"]),
            "first": v["nodes"][0]["html"][:200] if v["nodes"] else "",
            "why": v["nodes"][0].get("failureSummary", "")[:300] if v["nodes"] else "",
        }
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


async def test_the_sign_in_pages_have_no_serious_violations(page: Page) -> None:
    found = []
    for path in ("/console/sign-in", "/app/demo/sign-in", "/app/demo/sign-up"):
        await page.goto(path)
        found += await serious_violations(page)
    assert not found, "\n".join(map(str, found))


async def test_the_consoles_main_pages_have_no_serious_violations(page: Page) -> None:
    await sign_in(page, "owner@demo-cafe.example")
    found = []
    for path in CONSOLE_PAGES:
        answer = await page.goto(path)
        assert answer is not None and answer.status == 200, path
        found += await serious_violations(page)
    assert not found, "\n".join(map(str, found))


async def test_the_apps_main_pages_have_no_serious_violations(page: Page, site: Site) -> None:
    _, email = richest_member_with_email(site)
    await sign_in_member(page, site, email)
    found = []
    for path in APP_PAGES:
        answer = await page.goto(path)
        assert answer is not None and answer.status == 200, path
        found += await serious_violations(page)
    assert not found, "\n".join(map(str, found))


PHONE = {"width": 390, "height": 844}


async def too_wide(page: Page, paths: list[str]) -> list[tuple[str, int]]:
    found = []
    for path in paths:
        await page.goto(path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"] + 1:
            found.append((path, width))
    return found


async def test_the_main_pages_fit_a_phone_screen(chromium: Any, site: Site) -> None:
    context = await chromium.new_context(base_url=site.url, locale="ru-RU", viewport=PHONE)
    try:
        staff = await context.new_page()
        await staff.goto("/console/sign-in")
        await staff.locator("#f-email").fill("owner@demo-cafe.example")
        await staff.locator("#f-password").fill("kopilka-demo-2026")
        await staff.locator("form button[type=submit]").click()
        found = await too_wide(staff, CONSOLE_PAGES)
        member = await context.new_page()
        _, email = richest_member_with_email(site)
        await sign_in_member(member, site, email)
        found += await too_wide(member, [*APP_PAGES, "/app/demo/rules"])
    finally:
        await context.close()
    assert not found, found
