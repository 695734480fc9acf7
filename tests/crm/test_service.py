"""Member facts from purchases and returns, kept by the consumer and rebuilt set-wise, on
both databases; RFM scores by the daily job."""

from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.crm.service import crm_service
from kopilka.crm.tasks import daily_facts, rebuild_program
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.models import MemberFact
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.crm.support import buy, give_back, new_member, worker

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def facts(engine: AsyncEngine, program: ProgramContext, member: dict[str, object]):  # type: ignore[no-untyped-def]
    async with reading(engine) as conn:
        return await crm_service.facts(conn, program, UUID(str(member["id"])), clock.now())


async def test_the_consumer_keeps_facts_from_purchases_and_returns(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna = await new_member(api)
        old = await buy(api, anna, 10_000, T0 - timedelta(days=400), category="tea", store="s1")
        await buy(api, anna, 30_000, T0 - timedelta(days=10), category="coffee", store="s2")
        whole = await buy(api, anna, 5_000, T0 - timedelta(days=5), category="cake", store="s2")
        part = await buy(api, anna, 8_000, T0 - timedelta(days=3), category="coffee", store="s3")
        await give_back(api, whole, T0 - timedelta(days=4))
        await give_back(api, part, T0 - timedelta(days=2), amount=2_000)
        await worker(engine).drain()
        found = await facts(engine, program, anna)
        # The whole return is not counted; the partial one lowers spend.
        assert found.purchases == 3
        assert found.spend == 10_000 + 30_000 + 6_000
        assert found.returns == 2 and found.returned == 5_000 + 2_000
        assert found.purchases_12m == 2 and found.spend_12m == 36_000
        assert found.average_check == 46_000 // 3
        assert found.first_purchase_at == T0 - timedelta(days=400)
        assert found.last_purchase_at == T0 - timedelta(days=3)
        assert found.days_since_last_purchase == 3
        assert [(c.key, c.spend) for c in found.favourite_categories] == [
            ("coffee", 36_000),
            ("tea", 10_000),
        ]
        assert [s.key for s in found.favourite_stores] == ["s2", "s1", "s3"]
        assert old["external_id"]
        # The event delivered again (a rebuild of the same member) changes nothing.
        async with transaction(engine) as conn:
            await crm_service.refresh(conn, program.id, [UUID(anna["id"])], clock.now())
        assert await facts(engine, program, anna) == found
    # Time passes with no event: the 12-month figures move at read time.
    with clock.frozen(T0 + timedelta(days=370)):
        later = await facts(engine, program, anna)
        assert later.purchases_12m == 0 and later.spend_12m == 0
        assert later.days_since_last_purchase == 373


async def test_rebuild_and_the_daily_job_score_rfm(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        members = [await new_member(api) for _ in range(5)]
        for n, member in enumerate(members):
            for k in range(n + 1):
                await buy(api, member, 1_000 * (n + 1), T0 - timedelta(days=50 - 10 * n + k))
        nobody = await new_member(api)
        async with transaction(engine) as conn:
            report = await crm_service.refresh(conn, program.id, None, clock.now())
        assert report.facts == 5
        job = await daily_facts(engine, program.id, clock.now())
        assert job.scored == 5
        best = await facts(engine, program, members[-1])
        worst = await facts(engine, program, members[0])
        assert best.rfm is not None and worst.rfm is not None
        assert (best.rfm.recency, best.rfm.frequency, best.rfm.monetary) == (5, 5, 5)
        assert best.rfm.group == "champions"
        assert (worst.rfm.recency, worst.rfm.frequency, worst.rfm.monetary) == (1, 1, 1)
        assert worst.rfm.group == "lost"
        assert (await facts(engine, program, nobody)).rfm is None
        # Rebuilding again is idempotent and keeps the scores.
        async with transaction(engine) as conn:
            await crm_service.refresh(conn, program.id, None, clock.now())
        assert await facts(engine, program, members[-1]) == best


async def stored_windows(engine: AsyncEngine, member: dict[str, object]) -> dict[str, object]:
    f = table(MemberFact).c
    async with reading(engine) as conn:
        row = (
            await conn.execute(
                select(
                    f.purchases_30d,
                    f.spend_30d,
                    f.purchases_90d,
                    f.spend_90d,
                    f.purchases_12m,
                    f.spend_12m,
                    f.windows_on,
                    f.windows_until,
                ).where(f.member_id == UUID(str(member["id"])))
            )
        ).one()
    return dict(row._mapping)


async def test_stored_windows_stay_exact_until_a_day_leaves_them(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        anna = await new_member(api)
        for days, total in ((10, 10_000), (50, 20_000), (200, 40_000)):
            await buy(api, anna, total, T0 - timedelta(days=days))
        await worker(engine).drain()
        today = T0.date()
        assert await stored_windows(engine, anna) == {
            "purchases_30d": 1,
            "spend_30d": 10_000,
            "purchases_90d": 2,
            "spend_90d": 30_000,
            "purchases_12m": 3,
            "spend_12m": 70_000,
            "windows_on": today,
            # The 10-day-old purchase leaves the 30-day window first.
            "windows_until": today + timedelta(days=20),
        }
        # Nothing is due yet: the job leaves every row alone.
        assert (await daily_facts(engine, program.id, clock.now())).windows == 0
    later = T0 + timedelta(days=25)
    with clock.frozen(later):
        assert (await daily_facts(engine, program.id, clock.now())).windows == 1
        moved = await stored_windows(engine, anna)
        assert moved == {
            "purchases_30d": 0,
            "spend_30d": 0,
            "purchases_90d": 2,
            "spend_90d": 30_000,
            "purchases_12m": 3,
            "spend_12m": 70_000,
            "windows_on": later.date(),
            "windows_until": T0.date() + timedelta(days=40),
        }
        # The same as working them out afresh that day.
        async with transaction(engine) as conn:
            await crm_service.refresh(conn, program.id, [UUID(anna["id"])], clock.now())
        assert await stored_windows(engine, anna) == moved
    much_later = T0 + timedelta(days=400)
    with clock.frozen(much_later):
        assert (await daily_facts(engine, program.id, clock.now())).windows == 1
        emptied = await stored_windows(engine, anna)
        assert emptied["spend_12m"] == 0 and emptied["windows_until"] is None


async def test_a_rebuild_goes_batch_by_batch_and_on_after_a_stop(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    with clock.frozen(T0):
        members = [await new_member(api) for _ in range(5)]
        for n, member in enumerate(members):
            await buy(api, member, 1_000 * (n + 1), T0 - timedelta(days=n + 1))
        await worker(engine).drain()
        kept = {m["id"]: await facts(engine, program, m) for m in members}
        ids = sorted(UUID(m["id"]) for m in members)
        async with transaction(engine) as conn:
            await conn.execute(
                delete(table(MemberFact)).where(table(MemberFact).c.program_id == program.id)
            )
        seen: list[tuple[str, UUID]] = []
        # A rebuild stopped after the first two members goes on from there…
        report = await rebuild_program(
            engine,
            program.id,
            clock.now(),
            after=ids[1],
            size=2,
            progress=lambda phase, _, upto: seen.append((phase, upto)),
        )
        assert report.facts == 3
        assert [upto for phase, upto in seen if phase == "facts"] == [ids[3], ids[4]]
        assert (await facts(engine, program, {"id": str(ids[0])})).purchases == 0
        # …and a whole one finds the facts the consumer kept, RFM included.
        report = await rebuild_program(engine, program.id, clock.now(), size=2)
        assert (report.facts, report.scored) == (5, 5)
        for member_id, before in kept.items():
            after = await facts(engine, program, {"id": member_id})
            assert after.model_copy(update={"rfm": None}) == before.model_copy(update={"rfm": None})
            assert after.rfm is not None
