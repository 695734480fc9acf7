"""The consumer's aggregates equal a rebuild's on the same history: random members'
purchases, purchases without a member, returns (whole and partial, before and after a
claim) and claims, through the API, in a time zone that changes to summer time in the
middle of them (SQLite and PostgreSQL)."""

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.kpi_tasks import rebuild_program
from kopilka.kit.clock import clock
from tests.analytics.kpis_dataset import LADDER
from tests.analytics.test_kpis_api import aggregates
from tests.conftest import Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import member_body, purchase_body, unique

# Berlin moves to summer time at 01:00 UTC on 29 March 2026: purchases around it and
# around local midnights test the day each lands on.
START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)


class History:
    """A random history, built through the API in time order."""

    def __init__(self, api: Api, rng: random.Random) -> None:
        self.api, self.rng = api, rng
        self.members: list[dict[str, str]] = []
        self.sold: list[dict[str, Any]] = []  # external id, total, returned, member (or None)
        self.claimed_after_return = 0

    async def at(self, when: datetime, path: str, body: dict[str, Any]) -> int:
        with clock.frozen(when):
            response = await self.api.post(path, body)
        assert response.status_code < 500, response.text
        return response.status_code

    async def join(self, when: datetime) -> None:
        body = member_body()
        with clock.frozen(when):
            created = await self.api.post("/v1/members", body)
        assert created.status_code == 201, created.text
        self.members.append({"id": created.json()["id"], "external_id": body["external_id"]})

    async def step(self, when: datetime) -> None:
        choice = self.rng.random()
        if choice < 0.45 or not self.sold:
            member = self.rng.choice([None, *self.members])
            total = self.rng.randrange(1, 50) * 10_000
            body = purchase_body(
                member["external_id"] if member else "-",
                total,
                occurred_at=when.isoformat(),
                store=self.rng.choice(["s1", "s2"]),
                channel=self.rng.choice(["pos", "web"]),
            )
            if member is None:
                del body["member"]
            assert await self.at(when, "/v1/purchases", body) == 201
            self.sold.append(
                {
                    "external_id": body["external_id"],
                    "total": total,
                    "returned": 0,
                    "member": member["id"] if member else None,
                }
            )
        elif choice < 0.75:
            sale = self.rng.choice(self.sold)
            left = sale["total"] - sale["returned"]
            if left <= 0:
                return
            amount = self.rng.choice([left, max(1, left // 3)])
            body = {
                "external_id": unique("r"),
                "purchase_external_id": sale["external_id"],
                "occurred_at": when.isoformat(),
                "amount": amount,
            }
            assert await self.at(when, "/v1/returns", body) == 201
            sale["returned"] += amount
        else:
            unclaimed = [s for s in self.sold if s["member"] is None and s["returned"] < s["total"]]
            if not unclaimed:
                return
            # Partly returned ones first: their returns move with them.
            unclaimed.sort(key=lambda s: s["returned"] == 0)
            sale, member = unclaimed[0], self.rng.choice(self.members)
            self.claimed_after_return += sale["returned"] > 0
            claim = {"receipt": sale["external_id"], "member": {"id": member["id"]}}
            assert await self.at(when, "/v1/purchases/claims", claim) == 201
            sale["member"] = member["id"]


@pytest.mark.parametrize("seed", [1])
async def test_the_consumer_keeps_what_a_rebuild_works_out(
    engine: AsyncEngine, api: Api, seed: int
) -> None:
    rng = random.Random(seed)
    with clock.frozen(START - timedelta(days=1)):
        program = await make_program(engine, timezone="Europe/Berlin", tiers=LADDER)
    history = History(Api(api.client, await make_key(engine, program, "admin")), rng)
    for n in range(3):
        await history.join(START - timedelta(hours=n + 1))
    moment = START
    for _ in range(30):
        # Steps of 10 minutes to 5 hours: several land on each side of local midnight.
        moment += timedelta(minutes=rng.randrange(10, 300))
        await history.step(moment)
    await worker(engine, "analytics.kpis").drain()
    assert history.claimed_after_return > 0

    class Data:  # what ``aggregates`` reads
        pass

    data: Any = Data()
    data.program = program
    kept = await aggregates(engine, data)
    assert kept[0] and kept[2] and kept[4] and kept[5]
    with clock.frozen(moment):
        await rebuild_program(engine, program, size=2)
    assert await aggregates(engine, data) == kept


async def test_a_return_written_at_the_claims_instant_counts_once(
    engine: AsyncEngine, api: Api
) -> None:
    """A claim and a later return may carry one timestamp (one clock reading in a batch of
    work): the claim moves only the returns that came before it, by the amount it reports."""
    with clock.frozen(START - timedelta(days=1)):
        program = await make_program(engine, timezone="Europe/Berlin", tiers=LADDER)
    history = History(Api(api.client, await make_key(engine, program, "admin")), random.Random(0))
    await history.join(START - timedelta(hours=1))
    member = history.members[0]
    body = purchase_body("-", 100_000, occurred_at=START.isoformat(), store="s1", channel="pos")
    del body["member"]
    assert await history.at(START, "/v1/purchases", body) == 201
    claimed_at = START + timedelta(hours=2)

    async def give_back(when: datetime, amount: int) -> None:
        refund = {
            "external_id": unique("r"),
            "purchase_external_id": body["external_id"],
            "occurred_at": when.isoformat(),
            "amount": amount,
        }
        assert await history.at(when, "/v1/returns", refund) == 201

    await give_back(START + timedelta(hours=1), 10_000)  # before the claim
    claim = {"receipt": body["external_id"], "member": {"id": member["id"]}}
    assert await history.at(claimed_at, "/v1/purchases/claims", claim) == 201
    await give_back(claimed_at, 20_000)  # after it, at the same instant
    await worker(engine, "analytics.kpis").drain()

    class Data:
        pass

    data: Any = Data()
    data.program = program
    kept = await aggregates(engine, data)
    assert all(value >= 0 for row in kept[0] for value in row[6:] if isinstance(value, int))
    with clock.frozen(claimed_at):
        await rebuild_program(engine, program, size=2)
    assert await aggregates(engine, data) == kept
