"""Consents of new members recorded in bulk (a member import): the same states, history
and events as one change at a time, staged in the unit of work, nothing read per member,
and no confirmation message."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.members.schemas import MemberCreate
from kopilka.members.service import member_service
from kopilka.messaging.consents import DatedChange, consent_service
from kopilka.messaging.notifications import Purpose
from kopilka.messaging.schemas import ConsentChange, MessagingSettings
from kopilka.messaging.service import messaging_service
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.service import ProgramContext

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
GIVEN = T0 - timedelta(days=400)
REFUSED = T0 - timedelta(days=30)
outbox_t = table(OutboxEvent)


def change(
    channel: str, purpose: str, granted: bool, version: str | None = None, **extra: Any
) -> ConsentChange:
    return ConsentChange(
        channel=channel,  # type: ignore[arg-type]
        purpose=Purpose(purpose),
        granted=granted,
        source="import",
        text_version=version,
        **extra,
    )


# Oldest first: marketing e-mail given, later marketing SMS refused (never given: no
# record), service SMS withdrawn, push marketing given then withdrawn.
HISTORY = [
    (GIVEN, change("email", "marketing", True, "v3", confirmed=True)),
    (GIVEN, change("push", "marketing", True)),
    (REFUSED, change("sms", "marketing", False)),
    (REFUSED, change("sms", "service", False)),
    (REFUSED, change("push", "marketing", False, "v4")),
]


async def new_members(engine: AsyncEngine, program: ProgramContext, count: int) -> list[UUID]:
    async with transaction(engine) as conn:
        members = [
            await member_service.register(conn, program, MemberCreate(), T0) for _ in range(count)
        ]
    return [m.id for m in members]


async def record(
    conn: AsyncConnection, program: ProgramContext, items: list[DatedChange]
) -> dict[UUID, int]:
    unit = UnitOfWork(T0)
    recorded = await consent_service.record_imported(conn, program, items, unit)
    await unit.flush(conn)
    return recorded


async def state_of(
    engine: AsyncEngine, program: ProgramContext, member_id: UUID
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with reading(engine) as conn:
        views, history = await consent_service.of(conn, program, member_id)
    return (
        [(v.channel, v.purpose, v.status, v.source, v.text_version, v.updated_at) for v in views],
        [
            (h.channel, h.purpose, h.status, h.source, h.text_version, h.recorded_at)
            for h in history
        ],
    )


async def consent_events(engine: AsyncEngine, member_id: UUID) -> list[dict[str, Any]]:
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox_t.c.payload, outbox_t.c.occurred_at)
            .where(outbox_t.c.member_id == member_id, outbox_t.c.topic == "consent.changed")
            .order_by(outbox_t.c.id)
        )
        return [
            {**dict(r.payload), "at": r.occurred_at.replace(tzinfo=r.occurred_at.tzinfo or UTC)}
            for r in rows
        ]


async def test_bulk_consents_match_one_change_at_a_time(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        bulk, one_by_one = await new_members(engine, program, 2)
        async with transaction(engine) as conn:
            recorded = await record(conn, program, [DatedChange(bulk, at, c) for at, c in HISTORY])
        async with transaction(engine) as conn:
            changed = 0
            for at, item in HISTORY:
                changed += await consent_service.change(
                    conn, program, one_by_one, [item], at, sync_profile=False
                )
    assert recorded == {bulk: 4} and changed == 4
    views, history = await state_of(engine, program, bulk)
    assert (views, history) == await state_of(engine, program, one_by_one)
    assert ("email", "marketing", "granted", "import", "v3", GIVEN) in views
    assert ("push", "marketing", "withdrawn", "import", "v4", REFUSED) in views
    assert ("sms", "marketing", "none", None, None, None) in views
    # Newest first, each as of its own date.
    assert [(h[0], h[1], h[2], h[5]) for h in history] == [
        ("push", "marketing", "withdrawn", REFUSED),
        ("sms", "service", "withdrawn", REFUSED),
        ("push", "marketing", "granted", GIVEN),
        ("email", "marketing", "granted", GIVEN),
    ]
    events = await consent_events(engine, bulk)
    assert [(e["channel"], e["status"], e["previous_status"], e["at"]) for e in events] == [
        ("email", "granted", None, GIVEN),
        ("push", "granted", None, GIVEN),
        ("sms", "withdrawn", None, REFUSED),
        ("push", "withdrawn", "granted", REFUSED),
    ]
    assert events == await consent_events(engine, one_by_one)


async def test_the_program_text_version_stands_in_and_double_opt_in_waits(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        async with transaction(engine) as conn:
            await messaging_service.save_settings(
                conn,
                program,
                MessagingSettings(double_opt_in=True, consent_text_version="2030-01"),
                T0,
            )
        (member,) = await new_members(engine, program, 1)
        async with transaction(engine) as conn:
            await record(
                conn, program, [DatedChange(member, GIVEN, change("email", "marketing", True))]
            )
        async with reading(engine) as conn:
            messages = await messaging_service.page(
                conn, program, limit=10, before=None, member_id=member
            )
    views, _ = await state_of(engine, program, member)
    # Not confirmed under double opt-in: pending, and no confirmation is composed.
    assert ("email", "marketing", "pending", "import", "2030-01", GIVEN) in views
    assert messages == []


async def test_nothing_is_read_per_member(engine: AsyncEngine, program: ProgramContext) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    with clock.frozen(T0):
        async with transaction(engine) as conn:
            await messaging_service.ensure_setup(conn, program, T0)
        one = await new_members(engine, program, 1)
        many = await new_members(engine, program, 30)
        executed = []
        for members in (one, many):
            items = [DatedChange(m, at, c) for m in members for at, c in HISTORY]
            async with transaction(engine) as conn:
                unit = UnitOfWork(T0)
                event.listen(engine.sync_engine, "before_cursor_execute", count)
                try:
                    recorded = await consent_service.record_imported(conn, program, items, unit)
                finally:
                    event.remove(engine.sync_engine, "before_cursor_execute", count)
                executed.append(len(statements))
                statements.clear()
                await unit.flush(conn)
            assert set(recorded.values()) == {4} and len(recorded) == len(members)
    # The program's settings only, however many members: the rest waits in the unit.
    assert executed[0] == executed[1] == 1
