"""Paying with points at the till, on both databases: the quote, the purchase, the order of
spending and earning, returns, and coupons with points on one basket."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.simulation import simulate
from kopilka.purchases.domain import PointsTerms
from tests.conftest import BASE_SETTINGS, Api, make_key, make_program
from tests.coupons.test_endpoints import new_campaign, new_codes
from tests.fixtures.factories import member_body, purchase_body, unique
from tests.purchases.test_endpoints import assert_ledger_sound
from tests.rules.test_simulation import live_earned

PAY = {
    "points": 1,
    "money": 100,  # a point pays a rouble
    "min_points": 50,
    "max_share_percent": 50,
    "excluded_categories": ["tobacco"],
}


@pytest.fixture
async def till(engine: AsyncEngine, http: httpx.AsyncClient) -> tuple[Api, Any]:
    program = await make_program(engine, points_payment=PAY)
    return Api(http, await make_key(engine, program)), program


async def member_with(api: Api, points: int) -> dict[str, Any]:
    body = member_body()
    member = (await api.post("/v1/members", body)).json()
    if points:
        credit = {"member": {"id": member["id"]}, "currency": "points", "amount": points}
        response = await api.post(
            "/v1/adjustments", {**credit, "reason": "welcome"}, **{"Idempotency-Key": unique("k")}
        )
        assert response.status_code == 201, response.text
    return {**member, "external_id": body["external_id"]}


def basket(member: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """1,000 ₽ of coffee and 200 ₽ of cigarettes."""
    body = purchase_body(
        member["external_id"],
        120_000,
        lines=[
            {"sku": "COF", "category": "coffee", "quantity": 4, "unit_price": 25_000},
            {"sku": "CIG", "category": "tobacco", "quantity": 1, "unit_price": 20_000},
        ],
    )
    body.update(overrides)
    return body


async def points_of(api: Api, member: dict[str, Any]) -> int:
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    return int(next(b["available"] for b in balance["balances"] if b["currency"] == "points"))


def test_terms_round_to_whole_minor_units() -> None:
    terms = PointsTerms(
        points=3, money=2, min_points=0, max_share_percent=100, excluded=frozenset()
    )
    assert terms.step == 3 and terms.value(9) == 6
    assert terms.refusal(4, [None], [100], 1000) == "points_to_spend must be a multiple of 3"
    assert terms.max_points([None], [100], 1000) == 150  # 150 points pay the whole 100
    assert terms.max_points([None], [100], 100) == 99


async def test_the_quote_says_how_many_points_may_pay(till: tuple[Api, Any]) -> None:
    api, _ = till
    rich, poor = await member_with(api, 2_000), await member_with(api, 300)
    quote = (await api.post("/v1/purchases/quote", basket(rich))).json()
    # Half of the 1,000 ₽ of coffee; cigarettes never.
    assert quote["points_payment"] == {
        "currency": "points",
        "available": 2_000,
        "min_points": 50,
        "max_points": 500,
        "max_value": 50_000,
        "step": 1,
        "points": 1,
        "money": 100,
        "refused": None,
    }
    assert quote["payment"] is None
    assert (await api.post("/v1/purchases/quote", basket(poor))).json()["points_payment"][
        "max_points"
    ] == 300
    broke = await member_with(api, 40)
    assert (await api.post("/v1/purchases/quote", basket(broke))).json()["points_payment"][
        "max_points"
    ] == 0


async def test_points_pay_part_of_the_basket_and_earn_on_the_money_paid(
    till: tuple[Api, Any], engine: AsyncEngine
) -> None:
    api, program = till
    member = await member_with(api, 1_000)
    response = await api.post("/v1/purchases", basket(member, points_to_spend=400))
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["payment"] == {
        "coupons": [],
        "discount": 0,
        "points_currency": "points",
        "points_spent": 400,
        "points_value": 40_000,
        "paid": 80_000,
        "earn_base": 80_000,
    }
    assert result["points_earned"] == 800
    assert await points_of(api, member) == 1_000 - 400 + 800
    history = (await api.get(f"/v1/members/{member['id']}/history")).json()["items"]
    kinds = [(e["kind"], e["reference_type"]) for e in history]
    assert ("redeem", "purchase") in kinds
    await assert_ledger_sound(engine, program)


@pytest.mark.parametrize(
    ("points", "available", "message"),
    [
        (600, 2_000, "at most 500"),
        (40, 2_000, "at least 50"),
        (400, 300, "has 300 points"),
    ],
)
async def test_points_the_basket_cannot_take_refuse_the_purchase(
    till: tuple[Api, Any], points: int, available: int, message: str
) -> None:
    api, _ = till
    member = await member_with(api, available)
    response = await api.post("/v1/purchases", basket(member, points_to_spend=points))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "points_to_spend"
    assert message in response.json()["detail"]
    assert await points_of(api, member) == available
    assert (await api.get(f"/v1/members/{member['id']}/history")).json()["items"][0][
        "kind"
    ] == "adjust"


async def test_a_program_without_points_at_the_till_refuses_them(api: Api) -> None:
    body = member_body()
    await api.post("/v1/members", body)
    response = await api.post(
        "/v1/purchases", purchase_body(body["external_id"], 10_000, points_to_spend=10)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "points_to_spend"


async def test_a_blocked_member_cannot_pay_with_points(till: tuple[Api, Any]) -> None:
    api, _ = till
    member = await member_with(api, 1_000)
    blocked = await api.post(f"/v1/members/{member['id']}/block", {"reason": "fraud check"})
    assert blocked.status_code == 200, blocked.text
    response = await api.post("/v1/purchases", basket(member, points_to_spend=100))
    assert response.status_code == 403
    assert await points_of(api, member) == 1_000


async def test_points_earned_on_a_purchase_never_pay_for_it(till: tuple[Api, Any]) -> None:
    api, _ = till
    member = await member_with(api, 100)
    # The purchase earns 1,100 points, but only the 100 held before it may pay.
    response = await api.post("/v1/purchases", basket(member, points_to_spend=200))
    assert response.status_code == 422
    assert "has 100 points" in response.json()["detail"]


async def test_coupons_apply_first_then_points_on_what_is_left(till: tuple[Api, Any]) -> None:
    api, _ = till
    campaign = await new_campaign(api, discount={"kind": "fixed", "value": 40_000})
    [code] = await new_codes(api, campaign["key"])
    member = await member_with(api, 2_000)
    quote = (await api.post("/v1/purchases/quote", basket(member, coupon_codes=[code]))).json()
    # 1,200 ₽ less the 400 ₽ coupon (shared 1000:200 over coffee and cigarettes): coffee
    # 666.67 ₽ left, half of it may be paid with points.
    assert quote["payment"]["discount"] == 40_000
    assert quote["points_payment"]["max_points"] == 333
    result = (
        await api.post("/v1/purchases", basket(member, coupon_codes=[code], points_to_spend=333))
    ).json()
    assert result["payment"]["paid"] == 120_000 - 40_000 - 33_300
    assert result["points_earned"] == 467


async def test_earn_on_total_counts_the_whole_basket(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program = await make_program(engine, points_payment=PAY, earn_on="total")
    api = Api(http, await make_key(engine, program))
    member = await member_with(api, 1_000)
    result = (await api.post("/v1/purchases", basket(member, points_to_spend=500))).json()
    assert result["payment"]["earn_base"] == 120_000
    assert result["points_earned"] == 1_200


async def test_a_return_gives_back_the_points_that_paid_in_proportion(
    till: tuple[Api, Any], engine: AsyncEngine
) -> None:
    api, program = till
    member = await member_with(api, 1_000)
    purchase = basket(member, points_to_spend=500)
    assert (await api.post("/v1/purchases", purchase)).status_code == 201
    after_purchase = await points_of(api, member)  # 1,000 − 500 + 700 earned on 700 ₽ paid

    async def give_back(**amount: int) -> dict[str, Any]:
        response = await api.post(
            "/v1/returns",
            {
                "external_id": unique("r"),
                "purchase_external_id": purchase["external_id"],
                "occurred_at": purchase["occurred_at"],
                **amount,
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    quarter = await give_back(amount=30_000)
    assert quarter["points_refunded"] == 125
    assert quarter["reversed"][0]["reversed"] == 175  # a quarter of the 700 earned
    rest = await give_back()
    assert rest["points_refunded"] == 375
    assert await points_of(api, member) == after_purchase + 500 - 700
    assert await points_of(api, member) == 1_000
    await assert_ledger_sound(engine, program)


async def test_a_retried_purchase_spends_its_points_once(till: tuple[Api, Any]) -> None:
    api, _ = till
    member = await member_with(api, 1_000)
    body = basket(member, points_to_spend=300)
    first, second = [await api.post("/v1/purchases", body) for _ in range(2)]
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert await points_of(api, member) == 1_000 - 300 + 900


async def test_a_batch_keeps_the_good_purchases_and_refuses_the_overspent(
    till: tuple[Api, Any],
) -> None:
    api, _ = till
    member = await member_with(api, 500)
    items = [basket(member, points_to_spend=300), basket(member, points_to_spend=300)]
    response = await api.post("/v1/purchases/batch", {"purchases": items})
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    assert statuses == [201, 422]
    assert await points_of(api, member) == 500 - 300 + 900


async def test_a_simulation_sees_the_basket_as_the_rules_saw_it_live(
    till: tuple[Api, Any], engine: AsyncEngine
) -> None:
    api, program = till
    campaign = await new_campaign(api, discount={"kind": "percent", "value": 20}, stackable=True)
    codes = await new_codes(api, campaign["key"], count=3)
    member = await member_with(api, 5_000)
    start = datetime.now(UTC) - timedelta(days=3)
    bodies = [
        basket(member, coupon_codes=[codes[0]]),
        basket(member, points_to_spend=450),
        basket(member, coupon_codes=[codes[1]], points_to_spend=100),
        purchase_body(member["external_id"], 33_333, lines=[], coupon_codes=[codes[2]]),
        basket(member),
    ]
    for index, body in enumerate(bodies):
        body["occurred_at"] = (start + timedelta(hours=index)).isoformat()
        assert (await api.post("/v1/purchases", body)).status_code == 201
    live = await live_earned(engine, program.id)
    settings = ProgramSettings.model_validate({**BASE_SETTINGS, "points_payment": PAY})
    async with reading(engine) as conn:
        report = await simulate(
            conn, program.id, settings, settings, start, datetime.now(UTC) + timedelta(days=1)
        )
    replayed = {
        (rule["rule_id"], currency): amount
        for rule in report["rules"]
        for currency, amount in rule["draft"].items()
        if amount
    }
    assert report["purchases"] == 5
    assert replayed == {key: value for key, value in live.items() if key[0] == "base"}
    whole = ProgramSettings.model_validate(
        {**BASE_SETTINGS, "points_payment": PAY, "earn_on": "total"}
    )
    async with reading(engine) as conn:
        on_total = await simulate(
            conn, program.id, settings, whole, start, datetime.now(UTC) + timedelta(days=1)
        )
    base = next(r for r in on_total["rules"] if r["rule_id"] == "base")
    assert base["draft"]["points"] == 4 * 1_200 + 333  # every basket whole


async def test_with_cap_at_available_a_return_refunds_before_it_claws_back(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program = await make_program(engine, points_payment=PAY, clawback="cap_at_available")
    api = Api(http, await make_key(engine, program))
    member = await member_with(api, 100)
    body = purchase_body(member["external_id"], 20_000, points_to_spend=100)
    result = (await api.post("/v1/purchases", body)).json()
    assert result["points_earned"] == 100 and await points_of(api, member) == 100
    spend = {"member": {"id": member["id"]}, "amount": 100}
    assert (await api.post("/v1/redemptions", spend)).status_code == 201
    back = await api.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": body["occurred_at"],
        },
    )
    answer = back.json()
    assert answer["points_refunded"] == 100
    assert answer["reversed"] == [{"currency": "points", "reversed": 100, "not_clawed_back": 0}]
    assert await points_of(api, member) == 0  # nothing made out of the return
    await assert_ledger_sound(engine, program)


async def test_returned_lines_give_back_only_the_points_that_paid_for_them(
    till: tuple[Api, Any], engine: AsyncEngine
) -> None:
    api, program = till
    member = await member_with(api, 1_000)
    shoes = {"sku": "SHOE", "category": "shoes", "quantity": 1, "unit_price": 100_000}
    cigarettes = {"sku": "CIG", "category": "tobacco", "quantity": 1, "unit_price": 100_000}
    body = purchase_body(
        member["external_id"], 200_000, lines=[shoes, cigarettes], points_to_spend=500
    )
    assert (await api.post("/v1/purchases", body)).json()["points_earned"] == 1_500

    async def give_back(sku: str) -> dict[str, Any]:
        response = await api.post(
            "/v1/returns",
            {
                "external_id": unique("r"),
                "purchase_external_id": body["external_id"],
                "occurred_at": body["occurred_at"],
                "lines": [{"sku": sku, "quantity": 1}],
            },
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    tobacco = await give_back("CIG")
    # The cigarettes took none of the points and paid 1,000 of the 1,500 ₽ earned on.
    assert tobacco["points_refunded"] == 0
    assert tobacco["reversed"][0]["reversed"] == 1_000
    shoes_back = await give_back("SHOE")
    assert shoes_back["points_refunded"] == 500
    assert shoes_back["reversed"][0]["reversed"] == 500
    assert await points_of(api, member) == 1_000
    await assert_ledger_sound(engine, program)


async def test_a_quote_reports_points_it_would_refuse(till: tuple[Api, Any]) -> None:
    api, _ = till
    member = await member_with(api, 100)
    quote = await api.post("/v1/purchases/quote", basket(member, points_to_spend=5_000))
    assert quote.status_code == 200, quote.text
    assert quote.json()["points_payment"]["refused"] == "the member has 100 points available"
    assert quote.json()["points_earned"] == 1_200  # as if no points were spent
