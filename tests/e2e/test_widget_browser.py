"""The web-shop widget in a real browser, on a shop's page served from another origin: the
customer sees their points, pays part of the order with them, the page gets the hold's id
and, once the shop's server has captured it, the balance has dropped."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from playwright.async_api import Page, expect

from tests.e2e.conftest import Site
from tests.fixtures.local_http import serving

# What a shop's own script does with the widget's event: hand the hold's id to its checkout
# (here: show it, as a shop would put it in the order's form).
SHOP_JS = """
document.getElementById("kopilka-widget").addEventListener("kopilka:hold", function (event) {
  document.getElementById("hold-id").textContent = event.detail.id;
  document.getElementById("hold-points").textContent = String(event.detail.points);
});
"""
# The shop's style is not the widget's: a page that restyles every paragraph and button
# must not reach inside it.
SHOP_CSS = "p, button, span { color: rgb(255, 0, 0) !important; font-size: 40px; }"


@dataclass
class Shop:
    url: str
    token: str = ""
    max_points: int = 0


def shop_page(site: Site, shop: Shop) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Checkout — Test shop</title>
  <link rel="stylesheet" href="/shop.css">
  <script src="/shop.js" defer></script>
</head>
<body>
  <h1>Checkout</h1>
  <div id="kopilka-widget"></div>
  <p>Hold: <output id="hold-id"></output> (<output id="hold-points"></output> points)</p>
  <script src="{site.url}/widget/demo/widget.js" data-token="{shop.token}"
          data-lang="en" data-max-points="{shop.max_points}" async></script>
</body>
</html>"""


@pytest.fixture
async def shop(site: Site) -> AsyncIterator[Shop]:
    """A shop's checkout page on a port of its own (another origin than Kopilka's)."""
    current = Shop("")

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=shop_page(site, current), content_type="text/html")

    async def script(_request: web.Request) -> web.Response:
        return web.Response(text=SHOP_JS, content_type="text/javascript")

    async def style(_request: web.Request) -> web.Response:
        return web.Response(text=SHOP_CSS, content_type="text/css")

    app = web.Application()
    app.router.add_get("/checkout", page)
    app.router.add_get("/shop.js", script)
    app.router.add_get("/shop.css", style)
    async with serving(app) as url:
        current.url = url
        yield current


async def test_a_customer_pays_part_of_the_order_with_points_on_the_shop_s_page(
    page: Page, site: Site, shop: Shop
) -> None:
    with site.api() as api:
        origins = api.get("/v1/widget/settings").json()["allowed_origins"]
        saved = api.put("/v1/widget/settings", json={"allowed_origins": [*origins, shop.url]})
        assert saved.status_code == 200, saved.text
        member = api.post("/v1/members", json={"name": "Widget Shopper"}).json()
        given = api.post(
            "/v1/adjustments",
            json={"member": {"id": member["id"]}, "amount": 1234, "reason": "welcome"},
        )
        assert given.status_code == 201, given.text
        session = api.post(f"/v1/members/{member['id']}/widget-sessions", json={"max_points": 500})
        assert session.status_code == 201, session.text
    shop.token, shop.max_points = session.json()["token"], 300

    await page.goto(f"{shop.url}/checkout")
    widget = page.locator("#kopilka-widget")
    await expect(widget.get_by_role("heading", name="Your points")).to_be_visible()
    amount = widget.locator(".kw-amount")
    await expect(amount).to_have_text("1,234")
    # Its own style, not the shop's.
    assert await amount.evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"

    # At most what the tag allows (300), below the session's 500 and the balance.
    field = widget.get_by_label("Points to pay")
    await expect(field).to_have_value("300")
    await expect(widget.get_by_text("At most 300 for this order.")).to_be_visible()
    await field.fill("200")
    await widget.get_by_role("button", name="Pay 200 points").click()

    hold_id = page.locator("#hold-id")
    await expect(hold_id).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    await expect(page.locator("#hold-points")).to_have_text("200")
    await expect(widget.get_by_role("status")).to_have_text("Points reserved for this order: 200.")
    await expect(amount).to_have_text("1,034")
    await expect(widget.get_by_text("Reserved: 200")).to_be_visible()

    # The shop's server captures the hold once the order is paid.
    with site.api() as api:
        captured = api.post(f"/v1/redemptions/{await hold_id.text_content()}/capture")
        assert captured.status_code == 200, captured.text
        balance = api.get(f"/v1/members/{member['id']}/balance").json()["balances"]
    points = next(b for b in balance if b["currency"] == "points")
    assert (points["available"], points["held"]) == (1034, 0)

    await page.reload()
    await expect(amount).to_have_text("1,034")
    await expect(widget.get_by_text("Reserved:")).to_have_count(0)
