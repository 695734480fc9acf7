"""Scheduled jobs in the worker: every program, once per period (the program's local day
for daily jobs), one worker per job on PostgreSQL, recorded in job_runs."""

import asyncio
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.worker.repository import job_run_repository
from kopilka.worker.scheduler import JobOutcome, Scheduler
from tests.conftest import make_program

T0 = datetime(2032, 6, 1, 12, 0, tzinfo=UTC)
FREQUENT = {"release-pending", "expire", "release-holds", "support-sla", "journeys-advance"}
DAILY = {
    "birthdays",
    "tier-review",
    "giftcard-expiry",
    "points-expiring",
    "crm-facts",
    "clv-refit",
    "liability-snapshot",
    "recommendations-build",
    "segments-refresh",
    "journeys-entries",
    "privacy-retention",
}


def ours(outcomes: list[JobOutcome], program: ProgramContext) -> dict[str, str]:
    return {o.job: o.outcome for o in outcomes if o.program_id == program.id}


async def test_each_job_once_per_period_in_the_programs_time_zone(engine: AsyncEngine) -> None:
    utc = await make_program(engine)
    vladivostok = await make_program(engine, timezone="Asia/Vladivostok")  # UTC+10
    scheduler = Scheduler(engine, frequent_seconds=300, daily_at=time(3, 0))
    with clock.frozen(T0):
        first = await scheduler.run_due()
    assert set(ours(first, utc)) == FREQUENT | DAILY
    assert set(ours(first, utc).values()) == {"ok"}
    assert set(ours(first, vladivostok)) == FREQUENT | DAILY

    with clock.frozen(T0 + timedelta(seconds=299)):
        assert ours(await scheduler.run_due(), utc) == {}
    with clock.frozen(T0 + timedelta(seconds=300)):
        assert set(ours(await scheduler.run_due(), utc)) == FREQUENT

    # 17:00 UTC is 03:00 of the next day in Vladivostok: its daily jobs run again, the UTC
    # program's day has not turned.
    with clock.frozen(T0 + timedelta(hours=5)):
        later = await scheduler.run_due()
    assert set(ours(later, vladivostok)) == FREQUENT | DAILY
    assert set(ours(later, utc)) == FREQUENT
    async with reading(engine) as conn:
        run = await job_run_repository.get(conn, "birthdays", vladivostok.id)
    assert run is not None and run.period == "2032-06-02" and run.outcome == "ok"
    assert run.runs == 2 and run.detail == "no birthday rules"


async def test_disabled_jobs_do_not_run(engine: AsyncEngine, program: ProgramContext) -> None:
    scheduler = Scheduler(engine, disabled=frozenset(FREQUENT | {"tier-review"}))
    with clock.frozen(T0 + timedelta(days=30)):
        ran = ours(await scheduler.run_due(), program)
    assert set(ran) == DAILY - {"tier-review"}
    with pytest.raises(ValueError, match="unknown job"):
        Scheduler(engine, disabled=frozenset({"birthday"}))


@pytest.mark.postgres
async def test_two_workers_run_each_job_once(pg_engine: AsyncEngine) -> None:
    program = await make_program(pg_engine)
    schedulers = [Scheduler(pg_engine, frequent_seconds=3600) for _ in range(3)]
    with clock.frozen(T0 + timedelta(days=60)):
        results = await asyncio.gather(*(s.run_due() for s in schedulers))
    runs: dict[str, int] = {}
    for outcomes in results:
        for job in ours(outcomes, program):
            runs[job] = runs.get(job, 0) + 1
    assert runs == {job: 1 for job in FREQUENT | DAILY}
