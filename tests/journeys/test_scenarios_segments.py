"""The shipped ready journeys that start when a member enters a segment, each run as
shipped over a small history worked out by hand (SQLite and PostgreSQL): double points
for the inactive, winning back those likely to leave, the regulars' club and a free
sample of the new blend."""

from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.clv_domain import Outcome, Predictions
from kopilka.analytics.clv_figures import FitStatus
from kopilka.analytics.clv_service import Refit, clv_service
from kopilka.db import transaction
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from tests.journeys.scenario_support import Scenario, scenario, utc
from tests.journeys.support import T0

DAY = timedelta(days=1)


async def test_inactive_for_a_month_get_double_points_and_a_reminder(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Ivan and Olga (outside the 10 % holdout) buy 100.00 on day 0, Rita on day 21. The
    # refresh on day 31 puts Ivan and Olga (31 days since) in `inactive-30`, not Rita (10).
    # Each gets a boost (×2, 14 days) and "Double points for you". Ivan buys 100.00 on
    # day 35: 200 points, the boost used, his run converted (no reminder). Olga gets
    # "Three days left" on day 42 (11 days after), not a minute before; her boost has
    # expired by day 46.
    s = await scenario(engine, http)
    await s.segment("inactive-30", {"type": "days_since_last_purchase", "min": 30})
    key = await s.ready("inactive-double-points")
    (ivan, olga), _ = await s.split(key, 10, treated=2, held=0)
    rita = await s.member()
    for member, day in ((ivan, 0), (olga, 0), (rita, 21)):
        await s.buy(member, T0 + day * DAY)
        await s.work(T0 + day * DAY)
    assert await s.runs(key) == []

    day31 = T0 + 31 * DAY
    for _ in range(2):
        await s.refresh(day31)
        await s.advance(day31)
    assert {r["member_id"] for r in await s.runs(key)} == {ivan, olga}
    told = "Double points for you"
    for member in (ivan, olga):
        offers = await s.benefits(member, day31)
        assert [(b["kind"], b["payload"], b["status"], b["source"]) for b in offers] == [
            ("boost", {"factor_percent": 200}, "active", "journey")
        ]
        assert offers[0]["expires_at"] == utc(day31 + 14 * DAY)
        assert await s.inbox(member) == [told]
    assert await s.benefits(rita, day31) == [] and await s.inbox(rita) == []

    day35 = T0 + 35 * DAY
    answer = await s.buy(ivan, day35)
    assert answer["points_earned"] == 200
    assert [(b["kind"], b["source"], b["amount"]) for b in answer["applied_benefits"]] == [
        ("boost", "journey", 100)
    ]
    await s.work(day35)
    used = (await s.benefits(ivan, day35))[0]
    assert (used["status"], used["used_by"]) == ("used", answer["id"])

    await s.advance(T0 + 42 * DAY - timedelta(minutes=1))
    assert await s.inbox(olga) == [told]
    await s.advance(T0 + 42 * DAY)
    await s.advance(T0 + 42 * DAY)
    assert await s.inbox(olga) == [told, "Three days left"]
    assert await s.inbox(ivan) == [told]
    assert [b["status"] for b in await s.benefits(olga, T0 + 46 * DAY)] == ["expired"]
    assert (await s.balance(ivan), await s.balance(olga), await s.balance(rita)) == (300, 100, 100)
    runs = {r["member_id"]: r for r in await s.runs(key)}
    assert (runs[ivan]["status"], runs[olga]["status"]) == ("converted", "exited")
    stats = await s.stats(key)
    assert (stats["entered"], stats["held_out"], stats["converted"]) == (2, 0, 1)
    assert await s.outcomes(key) == {
        "double": {"offered": 2},
        "tell": {"sent": 2},
        "pause": {"waiting": 2},
        "remind": {"sent": 1},
    }


async def predict(s: Scenario, at: datetime, churn_risk: dict[str, int]) -> None:
    """A customer-lifetime refit at ``at`` whose predictions give these members these
    churn risks, stored as the analytics service stores a fitted refit."""
    members = list(churn_risk)
    risk = np.array([churn_risk[m] for m in members], dtype=np.int64)
    predictions = Predictions(
        members=members,
        p_alive=(100 - risk) / 100.0,
        churn_risk=risk,
        expected_purchases=np.ones(len(members)),
        expected_spend=np.full(len(members), 10_000, dtype=np.int64),
        clv=np.full(len(members), 10_000, dtype=np.int64),
    )
    outcome = Outcome(
        FitStatus.FITTED,
        customers=len(members),
        repeat_customers=0,
        models=[],
        model="bgnbd",
        predictions=predictions,
    )
    refit = Refit(new_id(), s.program.id, at, at.date(), 52, 10, outcome, 0.0)
    async with transaction(s.engine) as conn:
        await clv_service.store(conn, refit)


async def test_churn_winback_codes_and_two_messages_for_the_treated(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Tanya, Tom (treated) and Hana (in the 20 % holdout) are predicted at 80 % churn risk
    # on day 60, Lev at 30 %; all four bought on day 0. The refresh that day puts the first
    # three in `churn-risk`. Tanya and Tom each get one `winback` code (30 days) and
    # "We miss you"; Hana nothing; Lev does not enter. Tanya buys with her code on day 65
    # (10 % off 100.00: 90 points): converted, so no reminder. Tom gets "Your discount ends
    # soon" on day 74, 14 days after the first. Hana buys on day 95, after the goal's 30
    # days: not counted. Conversion 1/2 treated, 0/1 held out.
    s = await scenario(engine, http)
    await s.campaign("winback")
    await s.segment("churn-risk", {"type": "churn_risk", "min": 60})
    key = await s.ready("churn-winback")
    (tanya, tom), (hana,) = await s.split(key, 20, treated=2, held=1)
    lev = await s.member()
    for member in (tanya, tom, hana, lev):
        await s.buy(member, T0)
    await s.work(T0)
    day60 = T0 + 60 * DAY
    await predict(s, day60, {tanya: 80, tom: 80, hana: 80, lev: 30})
    for _ in range(2):
        await s.refresh(day60)
        await s.advance(day60)

    runs = {r["member_id"]: r["status"] for r in await s.runs(key)}
    assert runs == {tanya: "waiting", tom: "waiting", hana: "held_out"}
    missed = "We miss you"
    for member in (tanya, tom):
        codes = await s.coupons(member)
        assert [(c["campaign"], c["status"]) for c in codes] == [("winback", "active")]
        assert codes[0]["valid_until"] == utc(day60 + 30 * DAY)
        assert await s.inbox(member) == [missed]
    for member in (hana, lev):
        assert await s.coupons(member) == [] and await s.messages(member) == []

    day65 = T0 + 65 * DAY
    code = (await s.coupons(tanya))[0]["code"]
    answer = await s.buy(tanya, day65, coupon_codes=[code])
    assert answer["payment"]["discount"] == 1_000 and answer["points_earned"] == 90
    await s.work(day65)
    day74 = T0 + 74 * DAY
    await s.advance(day74 - timedelta(minutes=1))
    assert await s.inbox(tom) == [missed]
    await s.advance(day74)
    await s.advance(day74)
    await s.buy(hana, T0 + 95 * DAY)
    await s.work(T0 + 95 * DAY)

    assert await s.inbox(tanya) == [missed]
    reminded = [m for m in await s.messages(tom) if m["channel"] == "inbox"]
    assert [(m["subject"], m["created_at"]) for m in reminded] == [
        (missed, utc(day60)),
        ("Your discount ends soon", utc(day74)),
    ]
    runs = {r["member_id"]: r["status"] for r in await s.runs(key)}
    assert runs == {tanya: "converted", tom: "exited", hana: "held_out"}
    stats = await s.stats(key)
    assert (stats["entered"], stats["held_out"], stats["converted"]) == (2, 1, 1)
    assert (stats["conversion"], stats["holdout_conversion"]) == (0.5, 0.0)
    assert await s.outcomes(key) == {
        "offer": {"issued": 2},
        "tell": {"sent": 2},
        "pause": {"waiting": 2},
        "remind": {"sent": 1},
    }


async def regulars(s: Scenario) -> tuple[str, str, str]:
    """Rosa buys 100.00 on days 1, 15, 30 and 45, Sam on days 1, 15 and 30; the journey
    `regulars` runs after each purchase. Returns the journey's key, Rosa and Sam."""
    await s.segment("regulars", {"type": "purchases", "min": 4, "last_days": 60})
    key = await s.ready("regulars")
    rosa, sam = await s.member(), await s.member()
    for day in (1, 15, 30, 45):
        for member in (rosa, sam) if day < 45 else (rosa,):
            await s.buy(member, T0 + day * DAY)
        for _ in range(2):
            await s.work(T0 + day * DAY)
            await s.advance(T0 + day * DAY)
    return key, rosa, sam


async def test_regulars_are_tagged_and_told_once(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Rosa's fourth purchase within 60 days (day 45) puts her in `regulars`: she is tagged
    # `regular` and told, once. Sam, with three, is neither.
    s = await scenario(engine, http)
    key, rosa, sam = await regulars(s)
    assert await s.tags(rosa) == ["regular"] and await s.tags(sam) == []
    assert await s.inbox(rosa) == ["You are one of our regulars"]
    assert await s.messages(sam) == []
    assert [r["member_id"] for r in await s.runs(key)] == [rosa]
    assert await s.outcomes(key) == {"mark": {"tagged": 1}, "tell": {"sent": 1}}


async def test_a_regulars_exclusive_reward_is_open_to_the_tagged_only(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # As above; a reward `exclusive_tag: regular` at 100 points is then in Rosa's catalog
    # and she redeems it (400 − 100 = 300 points); Sam does not see it and is refused.
    s = await scenario(engine, http)
    _, rosa, sam = await regulars(s)
    at = T0 + 46 * DAY
    with clock.frozen(at):
        made = await s.api.post(
            "/v1/rewards",
            {
                "key": "regulars-mug",
                "name": "The regulars' mug",
                "kind": "physical",
                "price": 100,
                "exclusive_tag": "regular",
            },
        )
    assert made.status_code == 201, made.text
    seen = {m: await catalog(s, m, at) for m in (rosa, sam)}
    assert seen[rosa] == {"regulars-mug": True} and seen[sam] == {}
    for member, status in ((rosa, 201), (sam, 409)):
        with clock.frozen(at):
            taken = await s.api.post(
                "/v1/rewards/regulars-mug/redemptions", {"member": {"id": member}}
            )
        assert taken.status_code == status, taken.text
    assert (await s.balance(rosa), await s.balance(sam)) == (300, 300)


async def catalog(s: Scenario, member: str, at: datetime) -> dict[str, Any]:
    """The rewards the member sees → whether they may take each now."""
    found = await s.read("/v1/rewards", at, member_id=member)
    return {r["key"]: r["can_redeem"] for r in found["items"]}


async def test_free_sample_for_coffee_buyers_who_never_had_the_new_blend(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    # Fay buys coffee (SKU-1) on day 1 and enters `coffee-not-new-blend`; Gus buys the new
    # blend itself and does not. Fay gets a free sample (30 days) and "Try our new blend".
    # Her purchase on day 3 carries the sample (its answer lists it) and uses it; her
    # purchase on day 5 carries nothing. The run entered once and converted on day 3.
    s = await scenario(engine, http)
    await s.segment(
        "coffee-not-new-blend",
        {
            "all": [
                {"type": "bought", "categories": ["coffee"], "last_days": 60},
                {"type": "bought", "skus": ["NEW-BLEND"], "never": True},
            ]
        },
    )
    key = await s.ready("free-sample")
    fay, gus = await s.member(), await s.member()
    day1 = T0 + DAY
    await s.buy(fay, day1)
    await s.buy(gus, day1, sku="NEW-BLEND")
    for _ in range(2):
        await s.work(day1)
        await s.advance(day1)
    sample = {"sku": "NEW-BLEND-SAMPLE", "name": "New blend, 50 g"}
    offers = await s.benefits(fay, day1)
    assert [(b["kind"], b["payload"], b["status"]) for b in offers] == [
        ("free_sample", sample, "active")
    ]
    assert offers[0]["expires_at"] == utc(day1 + 30 * DAY)
    assert offers[0]["title"] == "A free sample at your next visit"
    assert await s.inbox(fay) == ["Try our new blend"]
    assert await s.benefits(gus, day1) == [] and await s.messages(gus) == []

    day3 = T0 + 3 * DAY
    answer = await s.buy(fay, day3)
    assert [(b["id"], b["kind"], b["payload"]) for b in answer["applied_benefits"]] == [
        (offers[0]["id"], "free_sample", sample)
    ]
    await s.work(day3)
    used = (await s.benefits(fay, day3))[0]
    assert (used["status"], used["used_by"]) == ("used", answer["id"])
    day5 = T0 + 5 * DAY
    again = await s.buy(fay, day5)
    assert again["applied_benefits"] == []
    await s.work(day5)
    await s.advance(day5)

    assert [b["status"] for b in await s.benefits(fay, day5)] == ["used"]
    assert await s.inbox(fay) == ["Try our new blend"]
    runs = await s.runs(key)
    assert [(r["member_id"], r["converted_at"]) for r in runs] == [(fay, utc(day3))]
    stats = await s.stats(key)
    assert (stats["entered"], stats["converted"], stats["conversion"]) == (1, 1, 1.0)
    assert await s.outcomes(key) == {"sample": {"offered": 1}, "tell": {"sent": 1}}
    assert (await s.balance(fay), await s.balance(gus)) == (300, 100)
