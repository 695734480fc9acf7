"""The member import on SQLite and PostgreSQL: every column, bad rows, re-runs, lots and
their expiry, tiers, consents, and a dry run."""

import asyncio
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, transaction
from kopilka.imports.member_batch import Batch
from kopilka.imports.member_rows import MemberCsv
from kopilka.imports.members import MemberImportReport, member_import_service
from kopilka.kit.clock import as_utc, clock, zone_named
from kopilka.ledger.audit import verify
from kopilka.ledger.service import ledger_service
from kopilka.ledger.tasks import expire_points
from kopilka.members.schemas import MemberCreate, MemberRef
from kopilka.members.service import member_service
from kopilka.messaging.consents import consent_service
from kopilka.models import JournalEntry, Lot
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from kopilka.tiers.service import tier_service
from tests.conftest import make_program
from tests.fixtures.factories import unique

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
MOSCOW = zone_named("Europe/Moscow")
LADDER = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 1_500_000}},
        {"id": "vip", "name": "VIP", "invitation_only": True},
    ],
    "review": {"kind": "anniversary"},
}
SETTINGS: dict[str, Any] = {
    "timezone": "Europe/Moscow",
    "expiry": {"policy": "days", "days": 365},
    "member_attributes": {
        "shoe_size": {"type": "integer"},
        "newsletter": {"type": "boolean"},
        "segment": {"type": "choice", "values": ["a", "b"]},
    },
    "tiers": LADDER,
}
HEADER = (
    "external_id,card,phone,email,name,birthday,language,gender,city,address,preferred_store,"
    "preferred_channel,registered_at,tags,attr.shoe_size,attr.newsletter,attr.segment,"
    "consent.email.marketing,consent.email.marketing.at,consent.email.marketing.version,"
    "consent.sms.service,consent.sms.service.at,points,balance.cashback,tier,tier_since"
)
entries_t = table(JournalEntry)
PHONES = itertools.count(5_000_000)  # phone numbers no other test of this module uses
lots_t = table(Lot)


async def tiered_program(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, **SETTINGS)


def layout(program: ProgramContext) -> MemberCsv:
    zone = zone_named(program.settings.timezone)
    assert zone is not None
    return MemberCsv(zone=zone, attributes=program.settings.member_attributes)


def row(**cells: str) -> str:
    columns = HEADER.split(",")
    unknown = set(cells) - {c.replace(".", "_") for c in columns}
    assert not unknown, unknown
    return ",".join(cells.get(c.replace(".", "_"), "") for c in columns)


async def run(
    engine: AsyncEngine,
    program: ProgramContext,
    rows: list[str],
    *,
    batch_size: int = 1000,
    dry_run: bool = False,
) -> MemberImportReport:
    lines = [HEADER + "\n", *(r + "\n" for r in rows)]
    return await member_import_service.import_file(
        engine, program, layout(program).rows(lines), batch_size=batch_size, dry_run=dry_run
    )


async def member_id(engine: AsyncEngine, program: ProgramContext, **ref: str) -> UUID:
    async with reading(engine) as conn:
        found, _ = await member_service.resolve(conn, program, MemberRef.model_validate(ref))
    return found


async def books_balance(engine: AsyncEngine, program: ProgramContext) -> None:
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert problems == {name: [] for name in problems}


async def entry_count(engine: AsyncEngine, program: ProgramContext) -> int:
    async with reading(engine) as conn:
        query = select(func.count()).where(entries_t.c.program_id == program.id)
        return int((await conn.execute(query)).scalar_one())


def anna(ext: str, phone: str, email: str) -> str:
    return row(
        external_id=ext,
        phone=phone,
        email=email,
        name="Anna",
        birthday="1990-05-01",
        language="ru",
        gender="female",
        city="Moscow",
        address="Tverskaya 1",
        preferred_store="S1",
        preferred_channel="email",
        registered_at="2020-01-15",
        tags="gold-club;early",
        attr_shoe_size="38",
        attr_newsletter="true",
        attr_segment="b",
        consent_email_marketing="granted",
        consent_email_marketing_at="2020-01-15T10:00:00+03:00",
        consent_email_marketing_version="v3",
        consent_sms_service="denied",
        consent_sms_service_at="2021-02-01",
        points="500@2031-03-31;200@2031-06-30;100;50@2031-03-01",
        balance_cashback="1000@2031-12-31",
        tier="silver",
        tier_since="2029-06-01",
    )


async def test_a_file_with_every_column(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    ext, email = unique("A"), f"{unique('anna')}@example.com"
    with clock.frozen(T0):
        report = await run(engine, program, [anna(ext, "+79161112201", email)])
    assert (report.created, report.already_imported, report.failed) == (1, 0, [])
    assert report.credited == {"points": 800, "cashback": 1000}
    # The lot whose last day had passed is left out, and said so.
    assert report.expired == {"points": 50} and report.expired_lots == 1
    assert (report.consents, report.tiers) == (2, 1)

    found = await member_id(engine, program, external_id=ext)
    async with reading(engine) as conn:
        member = await member_service.get(conn, program, found)
        assert (member.name, member.phone, member.email) == ("Anna", "+79161112201", email)
        assert (member.birthday, member.language, member.gender) == (
            date(1990, 5, 1),
            "ru",
            "female",
        )
        assert (member.city, member.address, member.preferred_store) == (
            "Moscow",
            "Tverskaya 1",
            "S1",
        )
        assert member.preferred_channel == "email"
        assert member.tags == ["early", "gold-club"]
        assert member.attributes == {"shoe_size": 38, "newsletter": True, "segment": "b"}
        assert as_utc(member.created_at).astimezone(MOSCOW) == datetime(2020, 1, 15, tzinfo=MOSCOW)
        assert member.consents.model_dump() == {"email": True, "sms": False, "push": False}
        assert {(i.kind, i.value) for i in member.identifiers} >= {
            ("external_id", ext),
            ("phone", "+79161112201"),
            ("email", email),
        }

        balances = await ledger_service.balances(conn, program, found)
        assert (balances["points"].available, balances["cashback"].available) == (800, 1000)
        lots = (
            await conn.execute(
                select(lots_t.c.currency, lots_t.c.amount, lots_t.c.expires_at)
                .where(lots_t.c.member_id == found)
                .order_by(lots_t.c.currency, lots_t.c.amount)
            )
        ).all()
        expiries = {
            (c, a): (e.replace(tzinfo=e.tzinfo or UTC).astimezone(MOSCOW) if e else None)
            for c, a, e in lots
        }
        # Points last through their last day, in the program's time zone.
        assert expiries == {
            ("cashback", 1000): datetime(2032, 1, 1, tzinfo=MOSCOW),
            ("points", 100): None,
            ("points", 200): datetime(2031, 7, 1, tzinfo=MOSCOW),
            ("points", 500): datetime(2031, 4, 1, tzinfo=MOSCOW),
        }

        views, history = await consent_service.of(conn, program, found)
        marketing = next(v for v in views if (v.channel, v.purpose) == ("email", "marketing"))
        assert (marketing.status, marketing.source, marketing.text_version) == (
            "granted",
            "import",
            "v3",
        )
        sms = next(v for v in views if (v.channel, v.purpose) == ("sms", "service"))
        assert (sms.status, sms.allowed) == ("withdrawn", False)
        dated = {(h.channel, h.source, h.recorded_at.astimezone(MOSCOW)) for h in history}
        assert dated == {
            ("email", "import", datetime(2020, 1, 15, 10, 0, tzinfo=MOSCOW)),
            ("sms", "import", datetime(2021, 2, 1, tzinfo=MOSCOW)),
        }

        tier = await tier_service.member_tier(conn, program, found, T0)
    assert (tier["tier"]["id"], tier["earned_tier"], tier["manual"]) == ("silver", "silver", None)
    assert as_utc(tier["since"]).astimezone(MOSCOW) == datetime(2029, 6, 1, tzinfo=MOSCOW)
    # Kept until the first anniversary review after the import.
    assert tier["review"]["date"] == date(2031, 6, 1)
    assert [(h["reason"], h["to_tier"]) for h in tier["history"]] == [("import", "silver")]
    await books_balance(engine, program)


async def test_bad_rows_are_reported_by_line_and_the_good_ones_imported(
    engine: AsyncEngine,
) -> None:
    program = await tiered_program(engine)
    good, dup = unique("G"), unique("D")
    rows = [
        row(external_id=good, name="Good", points="100"),
        row(external_id=unique("B"), phone="not a phone"),
        row(external_id=unique("B"), email="nobody@"),
        row(external_id=unique("B"), card="1234"),
        row(external_id=unique("B"), attr_shoe_size="big"),
        row(external_id=unique("B"), attr_segment="c"),
        row(external_id=unique("B"), consent_email_marketing="maybe"),
        row(external_id=unique("B"), consent_email_marketing="granted"),
        row(external_id=unique("B"), points="ten"),
        row(external_id=unique("B"), balance_cashback="5@31.12.2031"),
        row(external_id=unique("B"), tier="gold"),
        row(external_id=unique("B"), birthday="1990-13-01"),
        row(external_id=unique("B"), gender="unknown"),
        row(external_id=unique("B"), registered_at="2040-01-01"),
        row(external_id=unique("B"), tags="has space"),
        row(name="No identifier"),
        row(external_id=dup, name="First"),
        row(external_id=dup, name="Second"),
        HEADER.split(",")[0] + ",too,few",
    ]
    with clock.frozen(T0):
        report = await run(engine, program, rows)
    assert (report.created, report.already_imported) == (2, 0)
    assert [(e.line_no, e.field) for e in report.failed] == [
        (3, "phone"),
        (4, "email"),
        (5, "card"),
        (6, "attr.shoe_size"),
        (7, "attr.segment"),
        (8, "consent.email.marketing"),
        (9, "consent.email.marketing.at"),
        (10, "points"),
        (11, "balance.cashback"),
        (12, "tier"),
        (13, "birthday"),
        (14, "gender"),
        (15, "registered_at"),
        (16, "tags"),
        (17, "external_id"),
        (19, "external_id"),
        (20, "row"),
    ]
    assert report.failed[-2].reason.startswith("the same external_id as line 18")
    assert "must be a whole number" in report.failed[3].message
    assert report.failed[3].message.startswith("line 6: attr.shoe_size: ")
    assert report.credited == {"points": 100}
    await member_id(engine, program, external_id=good)


async def test_running_the_same_file_again_changes_nothing(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    rows = [anna(unique("A"), f"+7916111{n:04d}", f"{unique('r')}@example.com") for n in range(5)]
    with clock.frozen(T0):
        first = await run(engine, program, rows, batch_size=2)
        entries = await entry_count(engine, program)
        again = await run(engine, program, rows, batch_size=3)
    assert (first.created, first.already_imported, first.failed) == (5, 0, [])
    assert (again.created, again.already_imported, again.failed) == (0, 5, [])
    assert first.credited == {"points": 4000, "cashback": 5000}
    assert again.credited == {} and again.consents == 0 and again.tiers == 0
    assert await entry_count(engine, program) == entries
    await books_balance(engine, program)


async def test_a_rerun_with_changed_data_leaves_members_as_they_are(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    ext = unique("A")
    with clock.frozen(T0):
        await run(engine, program, [row(external_id=ext, name="Anna", points="500@2031-12-31")])
        changed = await run(
            engine,
            program,
            [row(external_id=ext, name="Anya", points="600@2031-12-31;70@2032-01-31")],
        )
    assert (changed.created, changed.already_imported) == (0, 1)
    # The new lot is granted; the one imported before is not granted again or changed.
    assert changed.credited == {"points": 70}
    assert any("imported before as 500" in note for note in changed.notes)
    found = await member_id(engine, program, external_id=ext)
    async with reading(engine) as conn:
        assert (await member_service.get(conn, program, found)).name == "Anna"
        assert (await ledger_service.balances(conn, program, found))["points"].available == 570
    await books_balance(engine, program)


async def test_members_already_in_the_program_are_matched_in_order(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    phone, card = "+79162220011", "7700000000000008"
    with clock.frozen(T0):
        async with transaction(engine) as conn:
            by_phone = await member_service.register(conn, program, MemberCreate(phone=phone), T0)
            by_card = await member_service.register(conn, program, MemberCreate(card=card), T0)
        report = await run(
            engine,
            program,
            [
                # external id unknown, phone known: the member registered by phone.
                row(external_id=unique("X"), phone=phone, points="300"),
                # card before phone: the card's member, though the phone is another's.
                row(card=card, phone="+79162220099", points="40"),
            ],
        )
        again = await run(engine, program, [row(card=card, phone="+79162220099", points="40")])
    assert (report.created, report.already_imported, report.failed) == (0, 2, [])
    assert again.credited == {}
    async with reading(engine) as conn:
        assert (await ledger_service.balances(conn, program, by_phone.id))[
            "points"
        ].available == 300
        assert (await ledger_service.balances(conn, program, by_card.id))["points"].available == 40
    await books_balance(engine, program)


async def test_lots_keep_their_expiry_and_expire_through_the_job(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    ext = unique("E")
    with clock.frozen(T0):
        await run(engine, program, [row(external_id=ext, points="500@2031-03-31;200@2031-06-30")])
    found = await member_id(engine, program, external_id=ext)
    # 1 April in Moscow: the first lot's last day is over.
    with clock.frozen(T0 + timedelta(days=30)):
        job = await expire_points(engine, program.id, datetime(2031, 4, 1, tzinfo=MOSCOW))
    assert (job.members, job.amount) == (1, 500)
    async with reading(engine) as conn:
        assert (await ledger_service.balances(conn, program, found))["points"].available == 200
    await books_balance(engine, program)


async def test_a_dry_run_checks_everything_and_writes_nothing(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    good = unique("G")
    rows = [
        anna(good, "+79163330001", f"{unique('d')}@example.com"),
        row(external_id=unique("B"), tier="x"),
    ]
    with clock.frozen(T0):
        report = await run(engine, program, rows, dry_run=True)
    assert (report.created, [e.line_no for e in report.failed]) == (1, [3])
    assert report.credited == {"points": 800, "cashback": 1000}
    assert await entry_count(engine, program) == 0
    async with reading(engine) as conn:
        found = await member_service.resolve_many(conn, program, [MemberRef(external_id=good)])
    assert found == [None]


async def test_imported_tiers_hold_until_the_review_and_vip_is_manual(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    silver, vip = unique("S"), unique("V")
    with clock.frozen(T0):
        await run(
            engine,
            program,
            [
                row(external_id=silver, tier="silver", tier_since="2030-09-10"),
                row(external_id=vip, tier="vip", registered_at="2019-01-01"),
            ],
        )
    silver_id = await member_id(engine, program, external_id=silver)
    vip_id = await member_id(engine, program, external_id=vip)
    async with transaction(engine) as conn:
        # The day before the anniversary nothing is due; on it, without purchases, the
        # member drops to what they qualify for.
        kept = await tier_service.review_members(conn, program, [silver_id], date(2031, 9, 9), T0)
        assert sum(kept.values()) == 0
        assert await tier_service.current_tier(conn, program, silver_id, T0) == "silver"
        reviewed = await tier_service.review_members(
            conn, program, [silver_id], date(2031, 9, 10), T0
        )
        assert reviewed["downgraded"] == 1
        assert await tier_service.current_tier(conn, program, silver_id, T0) == "base"
        view = await tier_service.member_tier(conn, program, vip_id, T0)
    assert (view["tier"]["id"], view["earned_tier"]) == ("vip", "base")
    assert view["manual"]["until"] is None


async def test_a_member_in_two_batches_is_found_by_the_later_one(engine: AsyncEngine) -> None:
    program = await tiered_program(engine)
    ext = unique("T")
    rows = [
        row(external_id=ext, name="Anna", points="500@2031-12-31"),
        row(external_id=unique("O"), name="Other"),
        row(external_id=ext, name="Anya", points="500@2031-12-31;70@2032-01-31"),
    ]
    with clock.frozen(T0):
        # The third row's batch is read and prepared while the first one is written.
        report = await run(engine, program, rows, batch_size=1)
    assert (report.created, report.already_imported, report.failed) == (2, 1, [])
    assert report.credited == {"points": 570}
    assert report.notes == [
        "line 4: 70 points expiring 2032-02-01T00:00:00+03:00 granted (not imported before)"
    ]
    found = await member_id(engine, program, external_id=ext)
    async with reading(engine) as conn:
        assert (await member_service.get(conn, program, found)).name == "Anna"
        assert (await ledger_service.balances(conn, program, found))["points"].available == 570
    await books_balance(engine, program)


async def test_a_batch_runs_the_same_statements_however_many_members(
    engine: AsyncEngine,
) -> None:
    program = await tiered_program(engine)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    executed = []
    # The first import also makes the program's messaging settings: not counted.
    for size in (1, 2, 25):
        rows = [
            anna(unique("S"), f"+7916{next(PHONES):07d}", f"{unique('s')}@example.com")
            for _ in range(size)
        ]
        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            with clock.frozen(T0):
                report = await run(engine, program, rows)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        assert (report.created, report.consents, report.tiers) == (size, 2 * size, size)
        executed.append(len(statements))
        statements.clear()
    # One statement per table and look-up for the batch: none per member, lot or consent.
    # (SQLite shows every statement here; on PostgreSQL the look-ups and COPY go to the
    # driver directly and only the rest is seen.)
    assert executed[1] == executed[2]
    await books_balance(engine, program)


async def test_a_batch_that_meets_another_writer_runs_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = await tiered_program(engine)
    write = member_import_service.write
    calls: list[int] = []

    async def conflicting(conn: AsyncConnection, program: ProgramContext, batch: Batch) -> None:
        calls.append(len(batch.prepared))
        await write(conn, program, batch)
        if len(calls) == 1:
            raise IntegrityError("INSERT", None, Exception("duplicate key"))

    monkeypatch.setattr(member_import_service, "write", conflicting)
    rows = [anna(unique("R"), f"+7916{next(PHONES):07d}", f"{unique('r')}@example.com")]
    with clock.frozen(T0):
        report = await run(engine, program, [*rows, row(external_id=unique("R"), points="5")])
    # The first run was rolled back; the second prepared the records again and wrote them.
    assert calls == [2, 2] and report.retried == 1
    assert (report.created, report.already_imported, report.consents) == (2, 0, 2)
    assert report.credited == {"points": 805, "cashback": 1000}
    await books_balance(engine, program)


async def test_a_member_of_the_batch_being_written_waits_for_the_next(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = await tiered_program(engine)
    write = member_import_service.write

    async def slow(conn: AsyncConnection, program: ProgramContext, batch: Batch) -> None:
        await write(conn, program, batch)
        # Each transaction stays open a while: the next batch starts before it commits.
        await asyncio.sleep(0.2)

    monkeypatch.setattr(member_import_service, "write", slow)
    ext, phone = unique("W"), f"+7916{next(PHONES):07d}"
    # Each row a batch; each second row names the member of the batch before it, which
    # PostgreSQL is still writing when it comes (two batches at once).
    rows = [
        row(external_id=ext, name="Anna", points="500@2031-12-31"),
        row(external_id=ext, name="Anya", points="500@2031-12-31;70@2032-01-31"),
        row(external_id=unique("W"), phone=phone, name="Boris"),
        row(external_id=unique("W"), phone=phone, name="Boris again", points="9"),
        row(external_id=unique("W"), name="Vera", points="1"),
    ]
    with clock.frozen(T0):
        report = await run(engine, program, rows, batch_size=1)
    assert (report.created, report.already_imported, report.failed) == (3, 2, [])
    assert report.credited == {"points": 580}
    assert report.retried == 0  # no batch met the other's rows: nothing ran twice
    async with reading(engine) as conn:
        anna = await member_id(engine, program, external_id=ext)
        boris = await member_id(engine, program, phone=phone)
        assert (await member_service.get(conn, program, anna)).name == "Anna"
        assert (await member_service.get(conn, program, boris)).name == "Boris"
        assert (await ledger_service.balances(conn, program, anna))["points"].available == 570
        assert (await ledger_service.balances(conn, program, boris))["points"].available == 9
    await books_balance(engine, program)
