"""LedgerService.grant_opening_balances on SQLite and PostgreSQL: points brought over from
another system, lot by lot with their expiry."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading, transaction
from kopilka.errors import InvalidInput
from kopilka.ledger.audit import verify
from kopilka.ledger.service import OpeningLot, ledger_service
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


async def test_lots_keep_their_expiry_and_are_spent_soonest_first(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    later, sooner = T0 + timedelta(days=90), T0 + timedelta(days=10)
    async with transaction(engine) as conn:
        member = await member_service.register(conn, program, MemberCreate(name="Old"), T0)
        credited = await ledger_service.grant_opening_balances(
            conn,
            program,
            {
                member.id: [
                    OpeningLot("points", 300, later, "a"),
                    OpeningLot("points", 200, sooner, "b"),
                    OpeningLot("points", 50, None, "c"),
                    OpeningLot("cashback", 700, None, "d"),
                ]
            },
            T0,
        )
    assert credited == 1250
    async with reading(engine, snapshot=True) as conn:
        balances = await ledger_service.balances(conn, program, member.id)
        expiring = await ledger_service.next_expiring(conn, member.id)
        [(entry, postings)] = await ledger_service.history(conn, member.id, limit=5, before=None)
        problems = await verify(conn, program.id)
    assert (balances["points"].available, balances["cashback"].available) == (550, 700)
    assert [(c, a, at) for c, a, at in expiring] == [
        ("points", 200, sooner),
        ("points", 300, later),
    ]
    assert (entry.kind, entry.reference_type) == ("opening", "import")
    assert {p.account for p in postings} == {"adjustments", "available"}
    assert problems == {name: [] for name in problems}


async def test_an_expired_lot_or_an_unknown_currency_is_refused(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    async with transaction(engine) as conn:
        member = await member_service.register(conn, program, MemberCreate(name="Old"), T0)
    for lot, field in [
        (OpeningLot("points", 10, T0, "x"), "expires_at"),
        (OpeningLot("miles", 10, None, "x"), "currency"),
        (OpeningLot("points", 0, None, "x"), "amount"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            async with transaction(engine) as conn:
                await ledger_service.grant_opening_balances(conn, program, {member.id: [lot]}, T0)
        assert refused.value.field == field
