"""A staff member in the console, in a real browser."""

import json

from playwright.async_api import Page, expect

from tests.e2e.conftest import DEMO_PASSWORD, Site


async def sign_in(page: Page, email: str) -> None:
    await page.goto("/console/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_wrong_password_says_so_and_the_right_one_opens_the_console(page: Page) -> None:
    await page.goto("/console/sign-in")
    await page.get_by_label("E-mail").fill("owner@demo-cafe.example")
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail, password or code.")
    await sign_in(page, "owner@demo-cafe.example")
    await expect(page.get_by_role("navigation", name="Console sections")).to_be_visible()
    await expect(page.get_by_role("link", name="Audit log")).to_be_visible()


async def test_a_cashier_sees_only_what_the_role_allows(page: Page) -> None:
    await sign_in(page, "cashier01@demo-cafe.example")
    nav = page.get_by_role("navigation", name="Console sections")
    await expect(nav.get_by_role("link", name="Members")).to_be_visible()
    await expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    await expect(nav.get_by_role("link", name="Program")).to_be_visible()


async def test_a_marketer_edits_the_draft_sees_the_error_at_its_line_simulates_and_publishes(
    page: Page, site: Site
) -> None:
    with site.api() as api:
        before = api.get("/v1/program").json()["version"]
    await sign_in(page, "owner@demo-cafe.example")
    await page.goto("/console/program/draft")
    editor = page.get_by_label("The program document (JSON)")
    document = json.loads(await editor.input_value())

    document["pending_days"] = -5
    broken = json.dumps(document, indent=2, ensure_ascii=False)
    line = next(n for n, text in enumerate(broken.splitlines(), 1) if '"pending_days"' in text)
    await editor.fill(broken)
    await page.get_by_role("button", name="Save the draft").click()
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text(f"line {line}")
    await expect(alert).to_contain_text("pending_days")
    await expect(editor).to_have_value(broken)  # the text is kept, nothing saved

    document["pending_days"] = 1
    await editor.fill(json.dumps(document, indent=2, ensure_ascii=False))
    await page.get_by_role("button", name="Save the draft").click()
    await expect(page.get_by_role("alert")).to_have_count(0)

    await page.goto("/console/program/simulate")
    await page.get_by_label("Days of history").fill("30")
    await page.get_by_role("button", name="Run the simulation").click()
    await expect(page.get_by_role("heading", name="Per rule")).to_be_visible()
    await expect(page.locator("svg.chart").first).to_be_visible()

    await page.goto("/console/program/publish")
    await expect(page.get_by_role("heading", name="What members will notice")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name=f"Publish version {before + 1}").click()
    await expect(page.get_by_role("status")).to_be_visible()
    with site.api() as api:
        program = api.get("/v1/program").json()
    assert program["version"] == before + 1
    assert program["document"]["pending_days"] == 1
