"""Campaign budgets and program-wide limits under concurrent purchases on PostgreSQL: the
budget is never overspent, whatever the interleaving."""

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.factories import member_body, purchase_body
from tests.ledger.test_concurrency import _api
from tests.purchases.test_endpoints import assert_ledger_sound

pytestmark = pytest.mark.postgres

BASE = [{"id": "base", "type": "per_amount", "points": 1, "per": 100}]


async def test_thirty_purchases_racing_for_a_budget_of_ten_bonuses(pg_engine: AsyncEngine) -> None:
    launch = {
        "id": "launch",
        "effects": [{"type": "points", "amount": 100}],
        "limits": {"budget": 1_000},
    }
    daily = {
        "id": "first-five-today",
        "effects": [{"type": "points", "amount": 1}],
        "limits": {"periods": [{"per": "program", "period": "day", "times": 5}]},
    }
    api, program, client = await _api(pg_engine, earning=BASE, rules=[launch, daily])
    async with client:
        bodies = [member_body() for _ in range(30)]
        for body in bodies:
            assert (await api.post("/v1/members", body)).status_code == 201
        responses = await asyncio.gather(
            *(api.post("/v1/purchases", purchase_body(b["external_id"], 5_000)) for b in bodies)
        )
    assert [r.status_code for r in responses] == [201] * 30
    bonuses = [
        sum(e["amount"] for e in r.json()["earned"] if e["rule_id"] == rule)
        for rule in ("launch", "first-five-today")
        for r in responses
    ]
    launch_bonuses, daily_bonuses = bonuses[:30], bonuses[30:]
    assert sorted(launch_bonuses) == [0] * 20 + [100] * 10  # exactly the budget, no more
    assert sum(daily_bonuses) == 5
    await assert_ledger_sound(pg_engine, program)
