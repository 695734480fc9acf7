"""An analyst reads the console's analytics in a real browser: the KPIs by month with their
charts, the tier table, the demo's experiment with its interval, the RFM grid — with no
script or style refused by the pages' Content-Security-Policy."""

from playwright.async_api import ConsoleMessage, Page, expect

from tests.e2e.test_console_browser import sign_in


async def test_an_analyst_reads_kpis_tiers_and_the_experiment(page: Page) -> None:
    problems: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", note)
    await sign_in(page, "analyst@demo-cafe.example")
    nav = page.get_by_role("navigation", name="Console sections")
    await nav.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_role("heading", name="Participants")).to_be_visible()
    await page.get_by_label("Rows").select_option("month")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("svg.chart")).to_have_count(2)
    await expect(page.get_by_role("link", name="Download CSV")).to_be_visible()

    await page.get_by_role("link", name="By tier").click()
    await expect(page.get_by_role("row", name="Without a card")).to_be_visible()

    await page.get_by_role("link", name="Experiments").click()
    await page.get_by_role("link", name="weekend-bonus").click()
    await expect(page.get_by_role("heading", name="test against control")).to_be_visible()
    await expect(page.get_by_text("Plain (Welch)")).to_be_visible()

    await page.get_by_role("link", name="RFM").click()
    await expect(page.get_by_role("heading", name="RFM grid")).to_be_visible()
    assert problems == []
