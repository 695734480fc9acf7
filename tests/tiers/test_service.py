"""Tiers through the API and the jobs, on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.ledger.audit import verify
from kopilka.programs.service import ProgramContext
from kopilka.tiers.tasks import requalify_tiers, review_tiers
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body, unique

# Spend in kopecks over a rolling 12 months; invitation-only VIP on top.
LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {
            "id": "silver",
            "name": "Silver",
            "qualify": {"spend": 100_000, "visits": 10},
            "benefits": {"earn_rate_percent": 125},
        },
        {
            "id": "gold",
            "name": "Gold",
            "qualify": {"spend": 500_000},
            "benefits": {"earn_rate_percent": 150, "free_delivery": True},
        },
        {"id": "vip", "name": "VIP", "invitation_only": True},
    ],
    "window": {"kind": "rolling", "months": 12},
}
TIER_RATE_RULE = {
    "id": "tier-rate",
    "effects": [{"type": "tier_multiplier", "of": ["base"]}],
}


@pytest.fixture
async def tiered(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, tiers=LADDER, rules=[TIER_RATE_RULE])


@pytest.fixture
async def tapi(api: Api, engine: AsyncEngine, tiered: ProgramContext) -> Api:
    return Api(api.client, await make_key(engine, tiered, "admin"))


async def new_member(api: Api) -> dict[str, Any]:
    body = member_body()
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return response.json() | {"external_id": body["external_id"]}


async def buy(api: Api, member: dict[str, Any], total: int, **extra: Any) -> dict[str, Any]:
    response = await api.post("/v1/purchases", purchase_body(member["external_id"], total, **extra))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def outbox_topics(engine: AsyncEngine, member_id: str) -> list[str]:
    async with reading(engine) as conn:
        rows = await conn.execute(
            text("SELECT topic FROM outbox_events WHERE member_id = :m ORDER BY id"),
            {"m": member_id.replace("-", "") if engine.dialect.name == "sqlite" else member_id},
        )
        return [r[0] for r in rows if r[0].startswith("tier.")]


async def test_crossing_the_threshold_upgrades_in_the_purchase(
    tapi: Api, engine: AsyncEngine
) -> None:
    member = await new_member(tapi)
    first = await buy(tapi, member, 99_999)
    assert first["tier"] == {"tier": "base", "changed": False, "from_tier": None, "reason": None}
    second = await buy(tapi, member, 1)  # exactly at the threshold
    assert second["tier"] == {
        "tier": "silver",
        "changed": True,
        "from_tier": "base",
        "reason": "upgrade",
    }
    # The upgrade counts from the next purchase: 100 points, +25 % at silver.
    third = await buy(tapi, member, 10_000)
    assert [(e["rule_id"], e["amount"]) for e in third["earned"]] == [
        ("base", 100),
        ("tier-rate", 25),
    ]
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert view["tier"]["id"] == "silver"
    assert view["metrics"] == {"spend": 110_000, "visits": 3}
    assert view["next"]["tier"]["id"] == "gold"
    assert view["next"]["requirements"] == [
        {"metric": "spend", "threshold": 500_000, "current": 110_000, "missing": 390_000}
    ]
    assert view["next"]["message"].startswith("Spend 3,900.00 RUB more to reach Gold by ")
    assert [(h["from_tier"], h["to_tier"], h["reason"]) for h in view["history"]] == [
        ("base", "silver", "upgrade")
    ]
    # What bought silver does not also keep it: only the third purchase counts so far.
    assert (view["review"]["would_be"], view["review"]["keeps"]) == ("base", False)
    assert await outbox_topics(engine, member["id"]) == ["tier.upgraded"]
    balance = (await tapi.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["tier"] == "silver"
    assert balance["tier_progress"]["next"]["tier"]["id"] == "gold"


async def test_visits_or_spend_either_qualifies(tapi: Api) -> None:
    member = await new_member(tapi)
    for n in range(9):
        assert (await buy(tapi, member, 100))["tier"]["tier"] == "base", n
    assert (await buy(tapi, member, 100))["tier"]["tier"] == "silver"  # the tenth visit


async def test_a_return_of_the_qualifying_purchase_undoes_the_upgrade(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    await buy(tapi, member, 50_000)
    big = await buy(tapi, member, 460_000)
    assert big["tier"]["tier"] == "gold"
    response = await tapi.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": big["external_id"],
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["tier"] == {
        "tier": "base",
        "changed": True,
        "from_tier": "gold",
        "reason": "return",
    }
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, tiered.id)
    assert problems == {name: [] for name in problems}


async def test_a_return_of_another_purchase_leaves_the_tier_to_the_review(tapi: Api) -> None:
    member = await new_member(tapi)
    small = await buy(tapi, member, 50_000)
    assert (await buy(tapi, member, 460_000))["tier"]["tier"] == "gold"
    response = await tapi.post(
        "/v1/returns",
        {
            "external_id": unique("r"),
            "purchase_external_id": small["external_id"],
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    )
    assert response.json()["tier"]["tier"] == "gold"


async def test_manual_vip_is_a_floor_until_it_ends(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    until = datetime.now(UTC) + timedelta(days=30)
    response = await tapi.post(
        f"/v1/members/{member['id']}/tier/manual",
        {"tier": "vip", "reason": "opening night guest", "until": until.isoformat()},
    )
    assert response.status_code == 200, response.text
    view = response.json()
    assert (view["tier"]["id"], view["earned_tier"]) == ("vip", "base")
    assert view["manual"]["reason"] == "opening night guest"
    # Earning gold underneath changes nothing while VIP lasts.
    assert (await buy(tapi, member, 600_000))["tier"]["tier"] == "vip"
    report = await review_tiers(engine, tiered.id, (until + timedelta(days=1)).date())
    assert report.outcomes["manual_ended"] == 1
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert (view["tier"]["id"], view["manual"]) == ("gold", None)
    assert [h["reason"] for h in view["history"]] == ["manual_ended", "manual"]


async def test_ending_a_manual_tier_by_hand_gives_back_the_earned_one(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    assert (await buy(tapi, member, 100_000))["tier"]["tier"] == "silver"
    manual = f"/v1/members/{member['id']}/tier/manual"
    pos = Api(tapi.client, await make_key(engine, tiered, "pos"))
    assert (await pos.delete(manual)).status_code == 403
    nothing = await tapi.delete(manual)
    assert nothing.status_code == 404, nothing.text
    assert nothing.json()["errors"][0]["field"] == "member_id"
    given = await tapi.post(manual, {"tier": "gold", "reason": "goodwill"})
    assert given.status_code == 200, given.text
    assert (given.json()["tier"]["id"], given.json()["manual"]["tier"]) == ("gold", "gold")
    # Gold's rate while the manual tier lasts: 1,000 points and half as much again.
    assert (await buy(tapi, member, 100_000))["points_earned"] == 1_500
    ended = await tapi.delete(manual)
    assert ended.status_code == 200, ended.text
    view = ended.json()
    assert (view["tier"]["id"], view["earned_tier"], view["manual"]) == ("silver", "silver", None)
    assert [h["reason"] for h in view["history"]] == ["manual_ended", "manual", "upgrade"]
    assert view["history"][0]["from_tier"] == "gold" and view["history"][0]["to_tier"] == "silver"
    # From now on the member earns at the tier they earned: silver's 125 %.
    assert (await buy(tapi, member, 100_000))["points_earned"] == 1_250
    assert (await tapi.get(f"/v1/members/{member['id']}/tier")).json()["manual"] is None
    again = await tapi.delete(manual)
    assert again.status_code == 404
    assert await outbox_topics(engine, member["id"]) == [
        "tier.upgraded",
        "tier.upgraded",
        "tier.downgraded",
    ]
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, tiered.id)
    assert problems == {name: [] for name in problems}


async def test_manual_tier_must_be_on_the_ladder(tapi: Api) -> None:
    member = await new_member(tapi)
    response = await tapi.post(
        f"/v1/members/{member['id']}/tier/manual", {"tier": "diamond", "reason": "typo"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "tier"
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert view["manual"] is None and view["history"] == []


async def test_review_downgrades_and_running_again_changes_nothing(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    await buy(tapi, member, 600_000, occurred_at=long_ago.isoformat())
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert view["tier"]["id"] == "gold"
    review_on = date.fromisoformat(view["review"]["date"])
    assert view["review"] == {
        "date": review_on.isoformat(),
        "would_be": "base",
        "keeps": False,
        "loses": view["tier"]["benefits"],
    }
    report = await review_tiers(engine, tiered.id, review_on)
    assert (report.members, report.outcomes["downgraded"]) == (1, 1)
    again = await review_tiers(engine, tiered.id, review_on)
    assert again.members == 0
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert view["tier"]["id"] == "base" and view["review"] is None
    assert await outbox_topics(engine, member["id"]) == ["tier.upgraded", "tier.downgraded"]


async def test_requalify_after_a_ladder_change_with_a_dry_run(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    await buy(tapi, member, 200_000)  # silver under the ladder in force
    stricter = {**LADDER, "levels": [dict(level) for level in LADDER["levels"]]}
    stricter["levels"][1]["qualify"] = {"spend": 300_000}
    draft = (await tapi.get("/v1/program/draft")).json()
    document = draft["document"] | {"tiers": stricter}
    assert (await tapi.put("/v1/program/draft", document)).status_code == 200
    assert (await tapi.post("/v1/program/publish", {})).status_code in (200, 201)
    dry = await requalify_tiers(engine, tiered.id, write=False)
    assert dry.moves == {("silver", "base"): 1}
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert view["tier"]["id"] == "silver"
    done = await requalify_tiers(engine, tiered.id, write=True)
    assert done.moves == {("silver", "base"): 1}
    view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert view["tier"]["id"] == "base"
    assert view["history"][0]["reason"] == "requalify"


async def test_a_batch_sees_the_upgrade_of_an_earlier_purchase(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    bodies = [purchase_body(member["external_id"], total) for total in (100_000, 10_000)]
    response = await tapi.post("/v1/purchases/batch", {"purchases": bodies})
    assert response.status_code == 200, response.text
    results = [item["purchase"] for item in response.json()["results"]]
    assert [r["tier"]["tier"] for r in results] == ["silver", "silver"]
    assert [r["points_earned"] for r in results] == [1_000, 125]
    async with transaction(engine) as conn:
        rows = await conn.execute(text("SELECT count(*) FROM tier_changes"))
        assert rows.scalar_one() >= 1


async def test_an_ended_manual_tier_ends_at_the_next_purchase_without_the_job(
    tapi: Api, engine: AsyncEngine
) -> None:
    member = await new_member(tapi)
    start = clock.now()
    soon = start + timedelta(hours=1)
    with clock.frozen(start):
        given = await tapi.post(
            f"/v1/members/{member['id']}/tier/manual",
            {"tier": "gold", "reason": "trial", "until": soon.isoformat()},
        )
    assert given.status_code == 200, given.text
    later = soon + timedelta(minutes=5)
    with clock.frozen(later):
        result = await buy(tapi, member, 1_000, occurred_at=later.isoformat())
        assert result["tier"]["tier"] == "base"
        assert result["points_earned"] == 10  # no gold rate once the trial is over
        view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert [h["reason"] for h in view["history"]] == ["manual_ended", "manual"]


async def test_a_club_ladder_upgrades_by_tenure_in_the_review_job(
    tapi: Api, engine: AsyncEngine
) -> None:
    club = await make_program(
        engine,
        tiers={
            "levels": [
                {"id": "member", "name": "Member"},
                {"id": "silver", "name": "Silver", "qualify": {"tenure_months": 12}},
                {"id": "gold", "name": "Gold", "qualify": {"tenure_months": 36}},
            ],
            "window": {"kind": "lifetime"},
        },
    )
    api = Api(tapi.client, await make_key(engine, club, "admin"))
    veteran, newcomer = await new_member(api), await new_member(api)
    joined = datetime.now(UTC) - timedelta(days=3 * 366)
    async with transaction(engine) as conn:
        await conn.execute(
            text("UPDATE members SET created_at = :t WHERE id = :m"),
            {
                "t": joined,
                "m": veteran["id"].replace("-", "")
                if engine.dialect.name == "sqlite"
                else veteran["id"],
            },
        )
    report = await review_tiers(engine, club.id, datetime.now(UTC).date())
    assert report.outcomes["tenure_upgraded"] == 1
    assert (await api.get(f"/v1/members/{veteran['id']}/tier")).json()["tier"]["id"] == "gold"
    view = (await api.get(f"/v1/members/{newcomer['id']}/tier")).json()
    assert view["tier"]["id"] == "member"
    assert view["next"]["message"] == "Stay 12 more months to reach Silver"


async def test_a_draft_with_a_ladder_is_simulated_with_tiers(api: Api) -> None:
    member = await new_member(api)
    await buy(api, member, 100_000)  # reaches silver under the draft
    await buy(api, member, 10_000)  # then earns the silver rate: +25
    draft = (await api.get("/v1/program/draft")).json()["document"]
    document = draft | {"tiers": LADDER, "rules": [TIER_RATE_RULE]}
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    response = await api.post("/v1/program/simulate", {"since": since, "document": document})
    assert response.status_code == 200, response.text
    report = response.json()
    rate = next(r for r in report["rules"] if r["rule_id"] == "tier-rate")
    assert (rate["published"], rate["draft"]) == ({"points": 0}, {"points": 25})
    assert report["tiers"] == {"draft": {"silver": 1}}


async def test_the_review_job_does_not_let_what_bought_the_tier_buy_it_back(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    bought = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
    with clock.frozen(bought):
        result = await buy(tapi, member, 600_000, occurred_at=bought.isoformat())
    assert result["tier"]["tier"] == "gold"
    # The job runs early on the review date, before the hour of that purchase a year ago:
    # the rolling window from now still holds it, but it bought the tier and cannot keep it.
    with clock.frozen(datetime(2027, 3, 4, 3, 0, tzinfo=UTC)):
        report = await review_tiers(engine, tiered.id, date(2027, 3, 4))
        view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert report.outcomes == {"downgraded": 1}
    assert view["tier"]["id"] == "base"


async def test_the_job_ends_a_manual_tier_only_once_its_end_has_come(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    member = await new_member(tapi)
    day = datetime(2027, 1, 10, tzinfo=UTC)
    with clock.frozen(day + timedelta(hours=1)):
        await tapi.post(
            f"/v1/members/{member['id']}/tier/manual",
            {"tier": "gold", "reason": "launch", "until": (day + timedelta(hours=18)).isoformat()},
        )
    with clock.frozen(day + timedelta(hours=2)):  # the nightly run, hours before the end
        early = await review_tiers(engine, tiered.id, day.date())
        view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert early.members == 0 and view["tier"]["id"] == "gold"
    with clock.frozen(day + timedelta(hours=19)):
        late = await review_tiers(engine, tiered.id, day.date())
    assert late.outcomes == {"manual_ended": 1}


async def test_a_purchase_reaching_the_till_late_still_completes_the_total(tapi: Api) -> None:
    member = await new_member(tapi)
    now = datetime.now(UTC)
    await buy(tapi, member, 60_000, occurred_at=now.isoformat())
    # Dated an hour earlier (an offline till syncing), recorded after: 110,000 in all.
    late = await buy(tapi, member, 50_000, occurred_at=(now - timedelta(hours=1)).isoformat())
    assert late["tier"] == {
        "tier": "silver",
        "changed": True,
        "from_tier": "base",
        "reason": "upgrade",
    }


async def test_an_activity_writes_the_end_of_a_manual_tier_it_saw(
    engine: AsyncEngine, api: Api
) -> None:
    """Activities run the same rules pipeline as purchases: a manual tier found ended while
    the rules looked at the member is written, as a purchase would write it."""
    program = await make_program(
        engine,
        tiers=LADDER,
        rules=[
            TIER_RATE_RULE,
            {
                "id": "review-bonus",
                "trigger": "review",
                "effects": [{"type": "points", "amount": 50}],
            },
        ],
    )
    tapi = Api(api.client, await make_key(engine, program, "admin"))
    member = await new_member(tapi)
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    with clock.frozen(start):
        response = await tapi.post(
            f"/v1/members/{member['id']}/tier/manual",
            {"tier": "gold", "reason": "trial", "until": (start + timedelta(days=1)).isoformat()},
        )
        assert response.status_code == 200, response.text
    with clock.frozen(start + timedelta(days=2)):
        review = await tapi.post(
            "/v1/events",
            {
                "member": {"id": member["id"]},
                "external_id": unique("review"),
                "type": "review",
                "occurred_at": (start + timedelta(days=2)).isoformat(),
            },
        )
        assert review.status_code == 201, review.text
        assert review.json()["earned"][0]["amount"] == 50
        view = (await tapi.get(f"/v1/members/{member['id']}/tier")).json()
    assert (view["tier"]["id"], view["manual"]) == ("base", None)
    assert [h["reason"] for h in view["history"]] == ["manual_ended", "manual"]
    assert await outbox_topics(engine, member["id"]) == ["tier.upgraded", "tier.downgraded"]
