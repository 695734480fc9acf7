"""Sign-in codes and sign-up on SQLite and PostgreSQL: a code is kept only as a hash, one
live code per member, every try counted — also when tries race on PostgreSQL."""

import asyncio
import re
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction, transaction
from kopilka.kit.clock import clock
from kopilka.memberaccess.domain import CODE_TRIES, CodeCheck, CodeOutcome, parse_address
from kopilka.memberaccess.repository import member_access_repository
from kopilka.memberaccess.service import member_access_service
from kopilka.members.schemas import MemberCreate
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext
from tests.conftest import make_program

CODE = re.compile(r"\b(\d{6})\b")


async def register(engine: AsyncEngine, program: ProgramContext, email: str) -> UUID:
    async with transaction(engine) as conn:
        addresses = await member_access_service.sign_up(
            conn, program, MemberCreate(name="Anna", email=email), [], clock.now()
        )
    assert [a.value for a in addresses] == [email]
    async with transaction(engine) as conn:
        found = await member_access_service._active_member(conn, program, addresses[0])
    assert found is not None
    return found


async def sent_code(engine: AsyncEngine, program: ProgramContext, member_id: UUID) -> str:
    async with transaction(engine) as conn:
        rows = await messaging_service.page(
            conn, program, limit=5, before=None, member_id=member_id, kind="sign_in_code"
        )
    found = CODE.search(rows[0].body)
    assert found
    return found.group(1)


async def test_a_code_is_kept_as_a_hash_and_a_new_one_replaces_it(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    anna = await register(engine, program, "anna.codes@shop.example")
    first = await sent_code(engine, program, anna)
    address = parse_address("anna.codes@shop.example")
    async with transaction(engine) as conn:
        assert await member_access_service.request_code(conn, program, address, clock.now())
    second = await sent_code(engine, program, anna)
    async with transaction(engine) as conn:
        kept = await member_access_repository.codes_of(conn, program.id, [anna])
    assert len(kept) == 1 and second not in kept[0].code_hash and first not in kept[0].code_hash
    async with transaction(engine) as conn:
        check = await member_access_service.verify_code(
            conn, program, [address], second, clock.now()
        )
    assert check == CodeCheck(CodeOutcome.ACCEPTED, anna)


async def test_an_unknown_address_makes_no_code(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    address = parse_address("nobody.here@shop.example")
    async with transaction(engine) as conn:
        assert not await member_access_service.request_code(conn, program, address, clock.now())
        check = await member_access_service.verify_code(
            conn, program, [address], "123456", clock.now()
        )
    assert check.outcome is CodeOutcome.NO_CODE and not check.accepted


async def test_an_address_of_another_program_is_no_one_here(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    await register(engine, program, "anna.elsewhere@shop.example")
    other = await make_program(engine)
    address = parse_address("anna.elsewhere@shop.example")
    async with transaction(engine) as conn:
        assert not await member_access_service.request_code(conn, other, address, clock.now())


async def test_parallel_wrong_tries_never_pass_the_limit(pg_engine: AsyncEngine) -> None:
    program = await make_program(pg_engine)
    anna = await register(pg_engine, program, "anna.race@shop.example")
    right = await sent_code(pg_engine, program, anna)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    address = parse_address("anna.race@shop.example")

    async def attempt() -> CodeOutcome:
        async def work(conn: AsyncConnection) -> CodeCheck:
            return await member_access_service.verify_code(
                conn,
                program,
                [address],
                wrong,
                clock.now(),
            )

        return (await run_in_transaction(pg_engine, work)).outcome

    outcomes = await asyncio.gather(*(attempt() for _ in range(12)))
    assert outcomes.count(CodeOutcome.WRONG) == CODE_TRIES
    assert set(outcomes) == {CodeOutcome.WRONG, CodeOutcome.TOO_MANY}
    async with pg_engine.connect() as conn:
        [kept] = await member_access_repository.codes_of(conn, program.id, [anna])
    assert kept.attempts == CODE_TRIES


async def test_parallel_right_tries_sign_in_once(pg_engine: AsyncEngine) -> None:
    program = await make_program(pg_engine)
    anna = await register(pg_engine, program, "anna.twice@shop.example")
    right = await sent_code(pg_engine, program, anna)
    address = parse_address("anna.twice@shop.example")

    async def attempt() -> str | None:
        async def work(conn: AsyncConnection) -> str | None:
            signed = await member_access_service.sign_in(
                conn,
                program,
                [address],
                right,
                clock.now(),
            )
            return signed.token

        return await run_in_transaction(pg_engine, work)

    tokens = await asyncio.gather(*(attempt() for _ in range(6)))
    assert len([t for t in tokens if t]) == 1
