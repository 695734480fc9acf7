"""Tiers under concurrency on PostgreSQL: purchases crossing a threshold at once, a manual
assignment racing a purchase, the review job racing a purchase."""

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.tiers.tasks import review_tiers
from tests.fixtures.factories import member_body, purchase_body
from tests.ledger.test_concurrency import _api
from tests.purchases.test_endpoints import assert_ledger_sound
from tests.tiers.test_service import LADDER, TIER_RATE_RULE

pytestmark = pytest.mark.postgres


async def changes(engine: AsyncEngine, member_id: str) -> list[tuple[str, str, str]]:
    async with reading(engine) as conn:
        rows = await conn.execute(
            text(
                "SELECT from_tier, to_tier, reason FROM tier_changes WHERE member_id = :m "
                "ORDER BY at, created_at"
            ),
            {"m": member_id},
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_purchases_crossing_the_threshold_at_once_upgrade_once(
    pg_engine: AsyncEngine,
) -> None:
    api, program, client = await _api(pg_engine, tiers=LADDER, rules=[TIER_RATE_RULE])
    async with client:
        body = member_body()
        member = (await api.post("/v1/members", body)).json()
        await api.post("/v1/purchases", purchase_body(body["external_id"], 90_000))
        # Ten tills at once, each purchase enough to cross 100,000 with the first one.
        responses = await asyncio.gather(
            *(
                api.post("/v1/purchases", purchase_body(body["external_id"], 20_000))
                for _ in range(10)
            )
        )
        assert [r.status_code for r in responses] == [201] * 10
        tiers = [r.json()["tier"] for r in responses]
        assert sum(t["changed"] for t in tiers) == 1
        assert all(t["tier"] == "silver" for t in tiers)
        # Exactly the purchases after the upgrade earned the silver rate (+25 of 200).
        rated = sorted(len(r.json()["earned"]) for r in responses)
        assert rated == [1] + [2] * 9
        assert await changes(pg_engine, member["id"]) == [("base", "silver", "upgrade")]
    await assert_ledger_sound(pg_engine, program)


async def test_a_manual_tier_racing_a_purchase_ends_as_one_order_or_the_other(
    pg_engine: AsyncEngine,
) -> None:
    """For each of twenty members, a purchase that crosses the silver threshold and an
    administrator's manual gold, at once. Whichever goes first, nothing is lost: the member
    ends on gold by hand over silver earned, and the purchase earned at the rate of the tier
    it saw: gold's 150 % if the manual tier came first, else base's (the purchase that
    reaches silver earns at the rate before it)."""
    api, program, client = await _api(pg_engine, tiers=LADDER, rules=[TIER_RATE_RULE])
    manual_first = [("base", "gold", "manual")]
    purchase_first = [("base", "silver", "upgrade"), ("silver", "gold", "manual")]
    async with client:
        members = []
        for _ in range(20):
            body = member_body()
            member = (await api.post("/v1/members", body)).json()
            await api.post("/v1/purchases", purchase_body(body["external_id"], 90_000))
            members.append((member["id"], body["external_id"]))

        def race(n: int, member_id: str, external_id: str) -> list[Awaitable[httpx.Response]]:
            buy = api.post("/v1/purchases", purchase_body(external_id, 20_000))
            give = api.post(
                f"/v1/members/{member_id}/tier/manual", {"tier": "gold", "reason": "goodwill"}
            )
            return [buy, give] if n % 2 else [give, buy]  # each gets to start first

        racing = [race(n, *member) for n, member in enumerate(members)]
        results = await asyncio.gather(*(call for pair in racing for call in pair))
        # Back in (purchase, manual) order per member.
        pairs = [results[2 * n : 2 * n + 2][:: 1 if n % 2 else -1] for n in range(len(members))]
        responses = [r for pair in pairs for r in pair]
        for (member_id, _), bought in zip(members, responses[::2], strict=True):
            history = await changes(pg_engine, member_id)
            earned = bought.json()["points_earned"]
            seen = bought.json()["tier"]["tier"]
            if history == manual_first:
                assert (seen, earned) == ("gold", 300)
            else:
                assert history == purchase_first
                assert (seen, earned) == ("silver", 200)
            view = (await api.get(f"/v1/members/{member_id}/tier")).json()
            assert (view["tier"]["id"], view["earned_tier"]) == ("gold", "silver")
            assert view["manual"]["tier"] == "gold"
            assert view["metrics"]["spend"] == 110_000
    await assert_ledger_sound(pg_engine, program)


async def test_review_job_racing_purchases_loses_nothing(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine, tiers=LADDER)
    async with client:
        body = member_body()
        member = (await api.post("/v1/members", body)).json()
        long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
        await api.post(
            "/v1/purchases", purchase_body(body["external_id"], 600_000, occurred_at=long_ago)
        )
        view = (await api.get(f"/v1/members/{member['id']}/tier")).json()
        review_on = datetime.fromisoformat(view["review"]["date"]).date()
        buys = [
            api.post("/v1/purchases", purchase_body(body["external_id"], 200_000)) for _ in range(5)
        ]
        _, *responses = await asyncio.gather(review_tiers(pg_engine, program.id, review_on), *buys)
        assert [r.status_code for r in responses] == [201] * 5
        view = (await api.get(f"/v1/members/{member['id']}/tier")).json()
        # Whatever the order, the member ends on gold: 1,000,000 spent in the last year.
        assert view["tier"]["id"] == "gold"
        history = await changes(pg_engine, member["id"])
        assert history[0] == ("base", "gold", "upgrade")
        # However the job and the tills interleave, the review's downgrade is made good by
        # what was bought since: back on gold, by a purchase or by the job itself.
        assert ("gold", "base", "review") in history
        assert sum(to == "gold" for _, to, _ in history) == 2
    await assert_ledger_sound(pg_engine, program)
