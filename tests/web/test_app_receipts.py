"""The app's "Add a receipt" page: a purchase made without the card becomes the signed-in
member's, with what it earned; refusals say why; failed attempts are limited per member."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.fixtures.factories import member_body, purchase_body
from tests.web.conftest import Browser, app_as

T0 = datetime(2031, 5, 6, 10, 0, tzinfo=UTC)


async def enrol(api: Api) -> UUID:
    made = await api.post("/v1/members", member_body())
    assert made.status_code == 201, made.text
    return UUID(made.json()["id"])


async def anonymous(api: Api, total: int) -> str:
    body = purchase_body("unused", total, occurred_at=T0.isoformat())
    del body["member"]
    assert (await api.post("/v1/purchases", body)).status_code == 201
    receipt: str = body["external_id"]
    return receipt


async def test_a_member_adds_a_receipt_and_sees_what_it_earned(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna, boris = await enrol(api), await enrol(api)
        mine, theirs = await anonymous(api, 12_300), await anonymous(api, 5_000)
        claimed = await api.post(
            "/v1/purchases/claims", {"receipt": theirs, "member": {"id": str(boris)}}
        )
        assert claimed.status_code == 201, claimed.text
    path = f"/app/{program.slug}/history/receipt"
    with clock.frozen(T0 + timedelta(days=2)):
        await app_as(browser, engine, program, anna)
        history = await browser.get(f"/app/{program.slug}/history")
        form = await browser.get(path)
        added = await browser.post(path, {"receipt": f"  {mine} "})
        again = await browser.post(path, {"receipt": mine})
        taken = await browser.post(path, {"receipt": theirs})
        unknown = await browser.post(path, {"receipt": "no-such-receipt"})
        empty = await browser.post(path, {"receipt": ""})
        after = await browser.get(f"/app/{program.slug}/history")
    assert path in history.text
    assert form.status_code == 200 and "Receipt number" in form.text
    assert "30 days after the purchase" in form.text
    assert added.status_code == 200, added.text
    assert "The receipt is on your card now." in added.text and "+123 points" in added.text
    assert again.status_code == 200 and "already on your card" in again.text
    assert taken.status_code == 409 and "already been added to another card" in taken.text
    assert unknown.status_code == 404 and "We found no purchase" in unknown.text
    assert "no-such-receipt" in unknown.text  # the number typed stays in the form
    assert empty.status_code == 422
    assert "+123 points" in after.text


async def test_failed_attempts_are_limited_per_member(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna = await enrol(api)
        receipt = await anonymous(api, 1_000)
    path = f"/app/{program.slug}/history/receipt"
    with clock.frozen(T0 + timedelta(hours=1)):
        await app_as(browser, engine, program, anna)
        tries = [
            (await browser.post(path, {"receipt": f"guess-{n}"})).status_code for n in range(5)
        ]
        refused = await browser.post(path, {"receipt": receipt})
    assert tries == [404] * 5
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "try again in 1 minute" in refused.text
    # The right number, refused while the limit lasts, added nothing.
    balance = (await api.get(f"/v1/members/{anna}/balance")).json()
    assert balance["balances"][0]["available"] == 0


async def test_in_russian(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna = await enrol(api)
        await app_as(browser, engine, program, anna)
        browser.client.cookies.set("kopilka_lang", "ru", domain="kopilka.test")
        page = await browser.get(f"/app/{program.slug}/history/receipt")
    assert page.status_code == 200
    assert "Номер чека" in page.text and "30 дней после покупки" in page.text
