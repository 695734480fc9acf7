"""seed_imported on SQLite and PostgreSQL: the tier a member brings from
another system, kept until the next regular review."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import transaction
from kopilka.errors import InvalidInput, NotFound
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.outbox.unit import unit_of_work
from kopilka.tiers.imports import seed_imported
from kopilka.tiers.service import tier_service
from tests.conftest import make_program

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
LADDER = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 100}},
        {"id": "vip", "name": "VIP", "invitation_only": True},
    ],
    "review": {"kind": "fixed", "date": "01-01"},
}


async def test_seeded_tiers_wait_for_the_next_regular_review(engine: AsyncEngine) -> None:
    program = await make_program(engine, tiers=LADDER)
    async with transaction(engine) as conn:
        gold, vip, base = [
            (await member_service.register(conn, program, MemberCreate(), T0)).id for _ in range(3)
        ]
        async with unit_of_work(conn, T0) as unit:
            seeded = seed_imported(
                unit,
                program,
                {
                    gold: ("gold", datetime(2025, 5, 5, tzinfo=UTC)),
                    vip: ("vip", T0),
                    base: ("base", T0),
                },
                T0,
            )
        gold_view = await tier_service.member_tier(conn, program, gold, T0)
        vip_view = await tier_service.member_tier(conn, program, vip, T0)
        base_view = await tier_service.member_tier(conn, program, base, T0)
    assert seeded == 2
    assert (gold_view["tier"]["id"], gold_view["earned_tier"]) == ("gold", "gold")
    assert gold_view["review"]["date"] == date(2032, 1, 1)  # the next 1 January after today
    assert [h["reason"] for h in gold_view["history"]] == ["import"]
    assert (vip_view["tier"]["id"], vip_view["manual"]["tier"]) == ("vip", "vip")
    assert (base_view["tier"]["id"], base_view["history"]) == ("base", [])


async def test_an_unknown_tier_or_no_ladder_is_refused(engine: AsyncEngine) -> None:
    program = await make_program(engine, tiers=LADDER)
    plain = await make_program(engine)
    async with transaction(engine) as conn:
        member = (await member_service.register(conn, program, MemberCreate(), T0)).id
        async with unit_of_work(conn, T0) as unit:
            with pytest.raises(InvalidInput) as unknown:
                seed_imported(unit, program, {member: ("platinum", T0)}, T0)
            with pytest.raises(NotFound) as none:
                seed_imported(unit, plain, {member: ("gold", T0)}, T0)
    assert (unknown.value.field, none.value.field) == ("tier", "tiers")
