"""A member in the app, in a real browser: nearest stores, the card, rewards, support."""

import re

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.e2e.conftest import (
    Site,
    code_sent_to,
    mail_ids,
    richest_member_with_email,
    sign_in_member,
)

# Near the demo's stores in Moscow: Red Square.
RED_SQUARE = {"latitude": 55.7539, "longitude": 37.6208}


async def test_the_nearest_stores_come_from_the_browsers_position(
    chromium: Browser, site: Site
) -> None:
    context = await chromium.new_context(
        base_url=site.url, locale="en-US", geolocation=RED_SQUARE, permissions=["geolocation"]
    )
    try:
        page = await context.new_page()
        await page.goto("/app/demo/stores")
        await page.get_by_role("button", name="Use my location").click()
        await expect(page.get_by_role("heading", name="Nearest to you")).to_be_visible()
        with site.api() as api:
            nearest = api.get(
                "/v1/stores/nearest",
                params={"lat": RED_SQUARE["latitude"], "lon": RED_SQUARE["longitude"]},
            ).json()
        expected = [store["name"] for store in nearest["items"]]
        shown = await page.locator("article.store-card h3").all_inner_texts()
        assert shown[: len(expected)] == expected[: len(shown)]
        assert shown, "the page lists stores"
        first = page.locator("article.store-card").first
        await expect(first.get_by_role("link", name="Open in maps")).to_have_attribute(
            "href", re.compile(r"^geo:55\.\d+,37\.\d+")
        )
        await expect(first.locator(".badge").first).to_have_text(re.compile(r"^\s*[\d.,]+ k?m\s*$"))
    finally:
        await context.close()


async def test_a_member_signs_in_with_the_emailed_code_redeems_a_reward_and_writes_to_support(
    page: Page, site: Site
) -> None:
    member_id, email = richest_member_with_email(site)
    with site.api() as api:
        profile = api.get(f"/v1/members/{member_id}").json()
        balance = api.get(f"/v1/members/{member_id}/balance").json()
        rewards = api.get("/v1/rewards", params={"member_id": member_id}).json()["items"]
    reward = next(r for r in rewards if r["can_redeem"] and r["currency"] == "points")

    await page.goto("/app/demo/")  # not signed in: sent to sign in
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    already = mail_ids(site, email)
    await page.get_by_label("Phone or e-mail").fill(email)
    await page.get_by_role("button", name="Send me a code").click()
    code = await code_sent_to(site, email, already)
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Sign in").click()

    # The number is shown in groups of digits, as on a plastic card; a member who took
    # over a duplicate's profile has its card too.
    await expect(page.locator(".card-number")).to_be_visible()
    shown = (await page.locator(".card-number").inner_text()).replace(" ", "")
    assert shown in {i["value"] for i in profile["identifiers"] if i["kind"] == "card"}
    grouped = " ".join(shown[i : i + 4] for i in range(0, len(shown), 4))
    await expect(page.get_by_role("img", name=f"QR code of card {grouped}")).to_be_visible()

    available = next(b for b in balance["balances"] if b["currency"] == "points")["available"]
    price = reward["member_price"] if reward["member_price"] is not None else reward["price"]
    await page.goto(f"/app/demo/rewards/{reward['key']}")
    await page.get_by_role("button", name="Redeem").click()
    await page.get_by_role("button", name=re.compile("^Yes, spend")).click()
    left = available - price
    await expect(page.get_by_text("Your balance now")).to_be_visible()
    with site.api() as api:
        after = api.get(f"/v1/members/{member_id}/balance").json()
    assert next(b for b in after["balances"] if b["currency"] == "points")["available"] == left

    await page.goto("/app/demo/support/new")
    await page.get_by_label("Subject").fill("Lost receipt")
    await page.get_by_label("Your message").fill("My points for Tuesday did not arrive.")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_text("My points for Tuesday did not arrive.")).to_be_visible()
    ticket_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    with site.api() as api:
        replied = api.post(
            f"/v1/tickets/{ticket_id}/replies", json={"body": "Added by hand, sorry!"}
        )
        assert replied.status_code in (200, 201), replied.text
    await page.reload()
    await expect(page.get_by_text("Added by hand, sorry!")).to_be_visible()


async def test_the_card_opens_without_a_connection_once_seen(
    page: Page, context: BrowserContext, site: Site
) -> None:
    _, email = richest_member_with_email(site)
    await sign_in_member(page, site, email)
    await expect(page.locator(".card-number")).to_be_visible()
    # The service worker takes the page once it controls it: wait for it, open the card again.
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    await page.reload()
    await expect(page.locator(".card-number")).to_be_visible()
    number = await page.locator(".card-number").inner_text()
    await context.set_offline(True)
    try:
        await page.reload()
        await expect(page.locator(".card-number")).to_have_text(number)
        await expect(page.get_by_role("img", name=f"QR code of card {number}")).to_be_visible()
    finally:
        await context.set_offline(False)
