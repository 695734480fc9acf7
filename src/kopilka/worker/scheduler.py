"""Scheduled jobs inside the worker: the existing job functions, on a schedule, for every
program, each run by exactly one worker.

Frequent jobs (release-pending, expire, release-holds, support-sla, journeys-advance) run
every ``KOPILKA_JOBS_FREQUENT_SECONDS``; daily ones (birthdays, tier-review,
giftcard-expiry, points-expiring, crm-facts, clv-refit, liability-snapshot,
recommendations-build, segments-refresh, journeys-entries, privacy-retention,
outbox-retention) once per local day of each program, from ``KOPILKA_JOBS_DAILY_AT`` in its
time zone. On PostgreSQL a session-level advisory lock per job admits one worker at a
time; ``job_runs`` records each (job, program)'s last period, start, finish and outcome,
so a second worker that gets the lock later finds the period done and does not repeat it.
A run that died half-way (outcome still ``running`` once the lock is free) runs again:
every job is resumable and idempotent.
"""

import logging
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.activities.tasks import celebrate_birthdays
from kopilka.analytics.tasks import refit_program, snapshot_program
from kopilka.crm.tasks import daily_facts
from kopilka.db import reading, run_in_transaction, transaction
from kopilka.giftcards.tasks import expire_gift_cards
from kopilka.journeys.tasks import advance_program, enter_daily
from kopilka.kit.clock import clock
from kopilka.ledger import tasks as ledger_tasks
from kopilka.messaging.tasks import remind_expiring
from kopilka.privacy.tasks import purge_expired
from kopilka.programs.service import program_service
from kopilka.recommendations.tasks import build_line, build_program
from kopilka.segments.tasks import refresh_segments
from kopilka.tiers.tasks import review_tiers
from kopilka.worker.delivery_repository import outbox_repository
from kopilka.worker.repository import JobRunRow, job_run_repository

logger = logging.getLogger("kopilka.worker")

# The program key of a job that is not per program (outbox retention).
EVERY_PROGRAM = UUID(int=0)

# (engine, program, now, the program's local date) → a one-line report
JobFunction = Callable[[AsyncEngine, UUID, datetime, datetime], Awaitable[str]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    daily: bool
    run: JobFunction
    per_program: bool = True


async def _release_pending(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    report = await ledger_tasks.release_pending(engine, program, now)
    return f"{report.members} members, {report.amount} points released"


async def _expire(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    report = await ledger_tasks.expire_points(engine, program, now)
    return f"{report.members} members, {report.amount} points expired"


async def _release_holds(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    report = await ledger_tasks.release_holds(engine, program, now)
    return f"{report.members} holds, {report.amount} points released"


async def _birthdays(engine: AsyncEngine, program: UUID, _: datetime, local: datetime) -> str:
    report = await celebrate_birthdays(engine, program, local.date())
    if not report.ran:
        return "no birthday rules"
    return f"{report.members} members, {report.points} points"


async def _tier_review(engine: AsyncEngine, program: UUID, _: datetime, local: datetime) -> str:
    async with reading(engine) as conn:
        if (await program_service.get(conn, program)).settings.tiers is None:
            return "no tier ladder"
    report = await review_tiers(engine, program, local.date())
    outcomes = ", ".join(f"{n} {what}" for what, n in sorted(report.outcomes.items()))
    return f"{report.members} members" + (f" ({outcomes})" if outcomes else "")


async def _giftcard_expiry(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    report = await expire_gift_cards(engine, program, now)
    return f"{report.cards} cards, {report.amount} taken"


async def _points_expiring(
    engine: AsyncEngine, program: UUID, now: datetime, local: datetime
) -> str:
    report = await remind_expiring(engine, program, local.date(), now)
    if not report.ran:
        return "reminder off"
    return f"{report.members} members, {report.messages} messages"


async def _crm_facts(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    report = await daily_facts(engine, program, now)
    return f"{report.windows} windows moved, {report.scored} members scored"


async def _clv_refit(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    return (await refit_program(engine, program, now)).line()


async def _liability_snapshot(
    engine: AsyncEngine, program: UUID, now: datetime, _: datetime
) -> str:
    return (await snapshot_program(engine, program, now)).line()


async def _recommendations_build(
    engine: AsyncEngine, program: UUID, now: datetime, _: datetime
) -> str:
    return build_line(await build_program(engine, program, now))


async def _segments_refresh(engine: AsyncEngine, program: UUID, _: datetime, __: datetime) -> str:
    report = await refresh_segments(engine, program)
    return f"{report.segments} segments, {report.entered} entered, {report.left} left"


async def _privacy_retention(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    purged = await purge_expired(engine, program, now)
    return f"{purged.messages} messages, {purged.interactions} interactions deleted"


def _retention(days: int) -> JobFunction:
    async def run(engine: AsyncEngine, _: UUID, now: datetime, __: datetime) -> str:
        if days <= 0:
            return "retention off"
        deleted = 0
        while True:
            chunk = await run_in_transaction(
                engine,
                lambda conn: outbox_repository.delete_published(
                    conn, now - timedelta(days=days), 5000
                ),
            )
            deleted += chunk
            if chunk < 5000:
                return f"{deleted} delivered events deleted"

    return run


async def _journeys_entries(
    engine: AsyncEngine, program: UUID, now: datetime, local: datetime
) -> str:
    report = await enter_daily(engine, program, now, local.date())
    return f"{report.journeys} journeys, {report.entered} members entered"


async def _journeys_advance(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    report = await advance_program(engine, program, now)
    return f"{report.runs} runs, {report.steps} steps, {report.failed} failed"


async def _support_sla(engine: AsyncEngine, program: UUID, now: datetime, _: datetime) -> str:
    from kopilka.support.tasks import check_sla  # support's job, kept with its entry here

    report = await check_sla(engine, program, now)
    return f"{report.tickets} tickets breached their SLA"


def all_jobs(retention_days: int) -> list[JobSpec]:
    return [
        JobSpec("release-pending", False, _release_pending),
        JobSpec("expire", False, _expire),
        JobSpec("release-holds", False, _release_holds),
        JobSpec("birthdays", True, _birthdays),
        JobSpec("tier-review", True, _tier_review),
        JobSpec("giftcard-expiry", True, _giftcard_expiry),
        JobSpec("points-expiring", True, _points_expiring),
        # Facts (RFM) first: segments read them.
        JobSpec("crm-facts", True, _crm_facts),
        # Predictions (churn risk, CLV) next: segments read them too.
        JobSpec("clv-refit", True, _clv_refit),
        # The liability once the expiries above have run: the day's figures for the KPIs.
        JobSpec("liability-snapshot", True, _liability_snapshot),
        JobSpec("recommendations-build", True, _recommendations_build),
        JobSpec("segments-refresh", True, _segments_refresh),
        # After the segments: a schedule enters a segment's members as they are today.
        JobSpec("journeys-entries", True, _journeys_entries),
        JobSpec("privacy-retention", True, _privacy_retention),
        JobSpec("outbox-retention", True, _retention(retention_days), per_program=False),
        JobSpec("support-sla", False, _support_sla),
        JobSpec("journeys-advance", False, _journeys_advance),
    ]


JOB_NAMES = [j.name for j in all_jobs(0)]


def parse_daily_at(value: str) -> time:
    try:
        parsed = time.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"jobs_daily_at {value!r} is not a time of day (HH:MM)") from exc
    return parsed.replace(tzinfo=None)


@dataclass
class JobOutcome:
    job: str
    program_id: UUID
    outcome: str
    detail: str


class Scheduler:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        frequent_seconds: int = 300,
        daily_at: time = time(3, 0),
        disabled: frozenset[str] = frozenset(),
        retention_days: int = 0,
    ) -> None:
        unknown = disabled - set(JOB_NAMES)
        if unknown:
            raise ValueError(
                f"unknown job(s) {', '.join(sorted(unknown))}; jobs are {', '.join(JOB_NAMES)}"
            )
        self.engine = engine
        self.frequent = timedelta(seconds=frequent_seconds)
        self.daily_at = daily_at
        self.jobs = [j for j in all_jobs(retention_days) if j.name not in disabled]

    async def run_due(self) -> list[JobOutcome]:
        """Run every job that is due for some program (one job at a time)."""
        done: list[JobOutcome] = []
        for job in self.jobs:
            done.extend(await self._run_job(job))
        return done

    async def _run_job(self, job: JobSpec) -> list[JobOutcome]:
        key = zlib.crc32(f"kopilka.job.{job.name}".encode())
        async with self.engine.connect() as lock_conn:
            if not await job_run_repository.try_lock(lock_conn, key):
                await lock_conn.rollback()
                return []
            await lock_conn.commit()
            try:
                return await self._run_programs(job)
            finally:
                await job_run_repository.unlock(lock_conn, key)
                await lock_conn.commit()

    async def _run_programs(self, job: JobSpec) -> list[JobOutcome]:
        async with reading(self.engine) as conn:
            programs = await program_service.ids(conn) if job.per_program else [EVERY_PROGRAM]
        outcomes = []
        for program_id in programs:
            now = clock.now()
            local = now.astimezone(await self._zone(program_id))
            period = self._period(job, now, local, await self._last(job, program_id))
            if period is None:
                continue
            async with transaction(self.engine) as conn:
                await job_run_repository.start(conn, job.name, program_id, period, now)
            try:
                detail = await job.run(self.engine, program_id, now, local)
                outcome = "ok"
            except Exception as exc:  # a job's failure is recorded, the worker goes on
                logger.exception("job %s failed for program %s", job.name, program_id)
                detail, outcome = f"{type(exc).__name__}: {exc}", "failed"
            async with transaction(self.engine) as conn:
                await job_run_repository.finish(
                    conn, job.name, program_id, outcome, detail, clock.now()
                )
            logger.info("job %s (%s): %s %s", job.name, program_id, outcome, detail)
            outcomes.append(JobOutcome(job.name, program_id, outcome, detail))
        return outcomes

    async def _zone(self, program_id: UUID) -> ZoneInfo:
        if program_id == EVERY_PROGRAM:
            return ZoneInfo("UTC")
        async with reading(self.engine) as conn:
            program = await program_service.get(conn, program_id)
        return ZoneInfo(program.settings.timezone)

    async def _last(self, job: JobSpec, program_id: UUID) -> JobRunRow | None:
        async with reading(self.engine) as conn:
            return await job_run_repository.get(conn, job.name, program_id)

    def _period(
        self, job: JobSpec, now: datetime, local: datetime, last: JobRunRow | None
    ) -> str | None:
        """The period to run now, or None if the last run covers it."""
        if job.daily:
            if local.time().replace(tzinfo=None) < self.daily_at:
                return None
            period = local.date().isoformat()
            if last is not None and last.period == period and last.outcome == "ok":
                return None
            # A failed run of today is tried again at the next frequent interval.
            if (
                last is not None
                and last.period == period
                and last.outcome == "failed"
                and now - last.started_at < self.frequent
            ):
                return None
            return period
        if last is not None and last.outcome != "running" and now - last.started_at < self.frequent:
            return None
        return now.astimezone(UTC).isoformat(timespec="seconds")
