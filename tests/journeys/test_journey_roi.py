"""A journey's cost and return (SQLite and PostgreSQL, and the pure figures): the points its
steps credited valued as analytics values a point, the discounts of its coupons used, the
value of its offers used; the treated members' revenue over the goal's window against the
held-out members', and ROI = (incremental revenue − cost) ÷ cost — null, with the reason,
without a holdout or a cost."""

from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.liability import PointRate
from kopilka.db import reading
from kopilka.journeys import domain
from kopilka.journeys.repository import journey_repository
from kopilka.journeys.returns import journey_cost, journey_return
from kopilka.kit.clock import clock
from tests.fixtures.factories import purchase_body, unique
from tests.journeys.support import T0, Setup, setup

# A point is worth 10 kopecks to the books (analytics.point_value).
TEN_KOPECKS = {"point_value": {"points": 1, "money": 10}}


async def stats_at(s: Setup, key: str, at: Any) -> dict[str, Any]:
    with clock.frozen(at):
        found = await s.api.get(f"/v1/journeys/{key}/stats")
    assert found.status_code == 200, found.text
    return dict(found.json())


async def buy(s: Setup, external_id: str, at: Any, total: int, **extra: Any) -> dict[str, Any]:
    with clock.frozen(at):
        made = await s.api.post(
            "/v1/purchases", purchase_body(external_id, total, occurred_at=at.isoformat(), **extra)
        )
    assert made.status_code == 201, made.text
    return dict(made.json())


async def test_roi_compares_the_treated_with_the_held_out_over_the_goals_window(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http, analytics=TEN_KOPECKS)
    document = {
        "name": "Welcome",
        "entry": {"type": "event", "event": "member.registered"},
        "goal": {"event": "purchase.recorded", "within_days": 14},
        "holdout_percent": 50,
        "steps": [{"id": "gift", "type": "points", "amount": 100}],
    }
    key = await s.journey(document)
    async with reading(engine) as conn:
        row = await journey_repository.journey(conn, s.program.id, key)
    assert row is not None
    treated: list[str] = []
    held: list[str] = []
    # Members until each side has two (the hash decides; a fixed count could leave one empty).
    while len(treated) < 2 or len(held) < 2:
        external = unique("m")
        member = await s.member(external_id=external)
        (held if domain.held_out(row.id, UUID(member), 50) else treated).append(external)
    await s.deliver()
    await s.advance(T0)
    for external in treated:
        await buy(s, external, T0 + timedelta(days=1), 10_000)
    for external in held:
        await buy(s, external, T0 + timedelta(days=2), 4_000)
    # After the goal's window: not the journey's doing.
    await buy(s, treated[0], T0 + timedelta(days=20), 50_000)
    stats = await stats_at(s, key, T0 + timedelta(days=30))
    n = len(treated)
    assert stats["cost"] == {
        "money_currency": "RUB",
        "points": [{"currency": "points", "points": 100 * n, "value": 1_000 * n}],
        "points_value": 1_000 * n,
        "coupons_used": 0,
        "coupon_discounts": 0,
        "offers_used": {},
        "offers_value": 0,
        "offers_unvalued": 0,
        "total": 1_000 * n,
    }
    roi = stats["roi"]
    assert (roi["window_days"], roi["treated"], roi["held_out"]) == (14, n, len(held))
    assert (roi["treated_revenue_per_member"], roi["held_out_revenue_per_member"]) == (
        10_000,
        4_000,
    )
    assert roi["incremental_revenue"] == 6_000 * n
    assert roi["roi"] == pytest.approx(5.0)  # (6,000 − 1,000) ÷ 1,000
    assert roi["reason"] is None
    interval = roi["incremental_revenue_interval"]
    assert interval["low"] == pytest.approx(6_000 * n) == interval["high"]  # no spread
    # Before anybody bought, the difference is nothing: ROI is −100 %.
    early = await stats_at(s, key, T0 + timedelta(hours=1))
    assert early["roi"]["incremental_revenue"] == 0 and early["roi"]["roi"] == pytest.approx(-1)


async def test_coupons_used_count_at_their_discount_and_no_holdout_leaves_roi_null(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    campaign = unique("camp").lower()
    with clock.frozen(T0):
        made = await s.api.post(
            "/v1/coupon-campaigns",
            {"key": campaign, "name": "Next", "discount": {"kind": "percent", "value": 10}},
        )
    assert made.status_code == 201, made.text
    document = {
        "name": "Coupon",
        "entry": {"type": "event", "event": "member.registered"},
        "steps": [{"id": "c", "type": "coupon", "campaign": campaign}],
    }
    key = await s.journey(document)
    external = unique("m")
    anna = await s.member(external_id=external)
    await s.member()  # gets a code and never uses it
    await s.deliver()
    await s.advance(T0)
    before = await stats_at(s, key, T0 + timedelta(days=1))
    assert before["cost"]["coupons_used"] == 0 and before["cost"]["total"] == 0
    assert before["roi"]["roi"] is None and before["roi"]["reason"].startswith("no holdout")
    mine = next(r for r in await s.runs(key) if r["member_id"] == anna)
    with clock.frozen(T0):
        detail = (await s.api.get(f"/v1/journeys/{key}/runs/{mine['id']}")).json()
    code = detail["steps"][0]["detail"]["code"]
    await buy(s, external, T0 + timedelta(days=1), 10_000, coupon_codes=[code])
    after = await stats_at(s, key, T0 + timedelta(days=2))
    assert (after["cost"]["coupons_used"], after["cost"]["coupon_discounts"]) == (1, 1_000)
    assert after["cost"]["total"] == 1_000
    assert after["roi"]["roi"] is None and after["roi"]["reason"].startswith("no holdout")


async def test_a_boost_used_costs_its_extra_points(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http, analytics=TEN_KOPECKS)
    document = {
        "name": "Double",
        "entry": {"type": "event", "event": "member.registered"},
        "steps": [
            {"id": "o", "type": "offer", "kind": "boost", "payload": {"factor_percent": 200}}
        ],
    }
    key = await s.journey(document)
    external = unique("m")
    await s.member(external_id=external)
    await s.deliver()
    await s.advance(T0)
    # 100 roubles earn 100 points; the boost doubles them: 100 extra, 10 roubles' worth.
    bought = await buy(s, external, T0 + timedelta(hours=1), 10_000)
    assert bought["points_earned"] == 200
    stats = await stats_at(s, key, T0 + timedelta(days=1))
    assert stats["cost"]["offers_used"] == {"boost": 1}
    assert (stats["cost"]["offers_value"], stats["cost"]["offers_unvalued"]) == (1_000, 0)
    assert stats["cost"]["total"] == 1_000


# --- the figures, pure ------------------------------------------------------------------------


def test_the_cost_values_each_currency_and_is_unknown_with_a_currency_of_no_value() -> None:
    rates = {"points": PointRate(1, 10), "miles": None}
    known = journey_cost("RUB", {"points": 250}, rates, (2, 700), ({"boost": 1}, 300, 1))
    assert (known.points_value, known.total) == (2_500, 2_500 + 700 + 300)
    unknown = journey_cost("RUB", {"points": 250, "miles": 5}, rates, (0, 0), ({}, 0, 0))
    assert unknown.total is None
    returned = journey_return([100, 300], [0, 0], 30, unknown)
    assert returned.roi is None and "miles" in (returned.reason or "")


def test_the_return_is_null_with_its_reason() -> None:
    cost = journey_cost("RUB", {"points": 100}, {"points": PointRate(1, 100)}, (0, 0), ({}, 0, 0))
    assert cost.total == 10_000
    no_holdout = journey_return([5_000, 7_000], [], 14, cost)
    assert no_holdout.roi is None and (no_holdout.reason or "").startswith("no holdout")
    assert no_holdout.incremental_revenue is None and no_holdout.treated_revenue_per_member == 6_000
    nobody = journey_return([], [1_000], 14, cost)
    assert nobody.roi is None and (nobody.reason or "").startswith("no treated run")
    free = journey_cost("RUB", {}, {}, (0, 0), ({}, 0, 0))
    no_cost = journey_return([5_000], [1_000], 14, free)
    assert no_cost.roi is None and (no_cost.reason or "").startswith("no cost")
    assert no_cost.incremental_revenue == 4_000


def test_the_incremental_revenue_is_the_difference_per_run_times_the_treated() -> None:
    cost = journey_cost("RUB", {"points": 10}, {"points": PointRate(1, 100)}, (0, 0), ({}, 0, 0))
    # 3 treated: 4,000 a run; 2 held out: 1,500 a run → 2,500 × 3 = 7,500 beyond them.
    returned = journey_return([3_000, 4_000, 5_000], [1_000, 2_000], 30, cost)
    assert returned.incremental_revenue == 7_500
    assert returned.roi == pytest.approx((7_500 - 1_000) / 1_000)
    interval = returned.incremental_revenue_interval
    assert interval is not None and interval.low < 7_500 < interval.high
    assert journey_return([3_000], [1_000], 30, cost).incremental_revenue_interval is None
