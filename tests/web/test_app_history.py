"""The member's history in the app: purchases with their lines, earned and returned points,
paged; every movement of points with its reason and what expires next; never another
member's."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique
from tests.web.conftest import Browser, app_as

T0 = datetime(2031, 5, 6, 10, 0, tzinfo=UTC)


async def enrol(api: Api, **fields: Any) -> tuple[UUID, str]:
    """A new member: their id and external id."""
    body = member_body(**fields)
    made = await api.post("/v1/members", body)
    assert made.status_code == 201, made.text
    return UUID(made.json()["id"]), body["external_id"]


async def buy(api: Api, external_id: str, total: int, **fields: Any) -> dict[str, Any]:
    body = purchase_body(external_id, total, occurred_at=clock.now().isoformat(), **fields)
    made = await api.post("/v1/purchases", body)
    assert made.status_code == 201, made.text
    answer: dict[str, Any] = made.json()
    answer["external_id"] = body["external_id"]
    return answer


async def test_purchases_show_lines_what_they_earned_and_returns(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna, anna_ext = await enrol(api)
        _, boris_ext = await enrol(api)
        first = await buy(api, anna_ext, 12_300)
        lines = [
            {"sku": "TEA-7", "name": "Green tea", "quantity": 2, "unit_price": 4_500},
            {"sku": "CUP-1", "name": "Blue mug", "quantity": 1, "unit_price": 9_000},
        ]
        with clock.frozen(T0 + timedelta(hours=1)):
            second = await buy(api, anna_ext, 18_000, lines=lines)
            back = await api.post(
                "/v1/returns",
                {
                    "external_id": unique("r"),
                    "purchase_external_id": second["external_id"],
                    "occurred_at": clock.now().isoformat(),
                    "lines": [{"sku": "CUP-1", "quantity": 1}],
                },
            )
            assert back.status_code == 201, back.text
        await buy(
            api,
            boris_ext,
            77_700,
            lines=[{"sku": "X", "name": "Boris's bike", "quantity": 1, "unit_price": 77_700}],
        )
    await app_as(browser, engine, program, anna)
    page = await browser.get(f"/app/{program.slug}/history")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Green tea" in text and "Blue mug" in text and "returned: 1" in text
    assert "+123 points" in text and "+180 points" in text  # 1 point per rouble
    assert "Taken back for the return" in text and "−90" not in text
    assert "-90 points" in text
    assert text.index("Green tea") < text.index("Coffee")  # newest first
    assert "Boris" not in text and "777" not in text
    assert first["external_id"] not in text  # the till's ids are not the member's business


async def test_purchases_are_paged(
    api: Api, browser: Browser, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna, anna_ext = await enrol(api)
        for n in range(21):
            with clock.frozen(T0 + timedelta(minutes=n)):
                await buy(api, anna_ext, 100 * (n + 1))
    await app_as(browser, engine, program, anna)
    page = await browser.get(f"/app/{program.slug}/history")
    assert page.text.count('class="card purchase"') == 20
    assert "+21 points" in page.text and "+1 point<" not in page.text
    link = page.text.split('class="pager"')[1].split('href="')[1].split('"')[0]
    rest = await browser.client.get(link.replace("&amp;", "&"))
    assert rest.status_code == 200
    assert rest.text.count('class="card purchase"') == 1 and "+1 point" in rest.text
    assert 'class="pager"' not in rest.text


async def test_points_tab_lists_every_movement_with_its_reason_and_expiry(
    engine: AsyncEngine, browser: Browser, api: Api
) -> None:
    program = await make_program(engine, expiry={"policy": "days", "days": 30})
    api = Api(api.client, await make_key(engine, program, "admin"))
    with clock.frozen(T0):
        anna, anna_ext = await enrol(api)
        boris, _ = await enrol(api)
        await buy(api, anna_ext, 50_000)
        credit = {"member": {"id": str(anna)}, "amount": 40, "reason": "Sorry for the queue"}
        assert (await api.post("/v1/adjustments", credit)).status_code == 201
        other = {"member": {"id": str(boris)}, "amount": 999, "reason": "Boris's bonus"}
        assert (await api.post("/v1/adjustments", other)).status_code == 201
    with clock.frozen(T0 + timedelta(days=1)):
        await app_as(browser, engine, program, anna)
        page = await browser.get(f"/app/{program.slug}/history", tab="points")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Sorry for the queue" in text and "Correction" in text and "Earned" in text
    assert "+500 points" in text and "+40 points" in text
    assert "540 points" in text  # available now
    assert "540 points expire on Jun 5, 2031" in text  # 30 days after they were earned
    assert "Boris" not in text and "999" not in text


async def test_history_needs_a_signed_in_member(browser: Browser, program: ProgramContext) -> None:
    page = await browser.get(f"/app/{program.slug}/history")
    assert page.status_code == 303
    assert page.headers["location"].startswith(f"/app/{program.slug}/sign-in")
