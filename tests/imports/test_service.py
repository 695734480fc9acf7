"""The import service on SQLite and PostgreSQL: batches in flight, new members, refusals."""

import json

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.imports.domain import ParsedPurchase
from kopilka.imports.service import import_service
from kopilka.ledger.audit import verify
from kopilka.programs.service import ProgramContext
from tests.conftest import make_program
from tests.fixtures.factories import purchase_body, unique


def rows(bodies: list[dict[str, object]]) -> list[ParsedPurchase]:
    return [
        ParsedPurchase(n, body, body["member"]["external_id"])  # type: ignore[index]
        for n, body in enumerate(bodies, start=2)
    ]


async def members_named(engine: AsyncEngine, program: ProgramContext, value: str) -> int:
    async with reading(engine) as conn:
        found = await conn.execute(
            text(
                "SELECT count(*) FROM member_identifiers WHERE program_id = :p "
                "AND kind = 'external_id' AND value = :v"
            ),
            {"p": program.id.hex if engine.dialect.name == "sqlite" else program.id, "v": value},
        )
        return int(found.scalar_one())


async def test_a_new_member_spread_over_batches_in_flight_is_registered_once(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    # One purchase per batch: every batch names the same new member as the one in flight
    # beside it, which is where two batches would race to register it.
    customer = unique("c")
    bodies = [purchase_body(customer, total=1_000 * (n + 1)) for n in range(6)]
    report = await import_service.import_purchases(engine, program, rows(bodies), batch_size=1)
    assert (report.imported, report.already_there, report.failed) == (6, 0, [])
    assert report.retried == 0
    assert report.earned == {"points": 10 + 20 + 30 + 40 + 50 + 60}
    assert await members_named(engine, program, customer) == 1
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert problems == {name: [] for name in problems}


async def test_a_refused_purchase_registers_nobody(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    customer = unique("c")
    wrong_currency = purchase_body(customer, currency="EUR")
    report = await import_service.import_purchases(engine, program, rows([wrong_currency]))
    assert report.imported == 0
    assert [e.message for e in report.failed] == ["line 2: currency EUR is not the program's RUB"]
    assert await members_named(engine, program, customer) == 0


async def test_members_of_the_batch_in_flight_wait_for_a_later_batch_in_file_order(
    engine: AsyncEngine,
) -> None:
    # a, a, b, a, b with batches of two: the second batch would share "a" with the first,
    # so a's rows are held back; a's purchases still land in file order, which the rule on
    # the third purchase shows.
    third = {
        "id": "third",
        "conditions": [{"type": "nth_purchase", "n": 3}],
        "effects": [{"type": "points", "amount": 50}],
    }
    program = await make_program(engine, rules=[third])
    a, b = unique("c"), unique("c")
    bodies = [purchase_body(m, total=100 * (n + 1)) for n, m in enumerate([a, a, b, a, b])]
    report = await import_service.import_purchases(engine, program, rows(bodies), batch_size=2)
    assert (report.imported, report.retried, report.failed) == (5, 0, [])
    async with reading(engine) as conn:
        found = await conn.execute(
            text(
                "SELECT p.total, p.earned FROM purchases p JOIN member_identifiers i "
                "ON i.member_id = p.member_id WHERE i.value = :v"
            ),
            {"v": a},
        )
        earned = {total: json_dict(points) for total, points in found}
    assert earned == {100: {"points": 1}, 200: {"points": 2}, 400: {"points": 54}}


def json_dict(value: object) -> dict[str, int]:
    return json.loads(value) if isinstance(value, str) else dict(value)  # type: ignore[arg-type]
