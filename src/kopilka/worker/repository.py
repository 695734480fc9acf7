"""Every query of the scheduler: job runs and the locks that keep one worker per job."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.kit.sql import is_postgres
from kopilka.models import JobRun
from kopilka.models.base import table

runs_t = table(JobRun)


@dataclass(frozen=True)
class JobRunRow:
    job: str
    program_id: UUID
    period: str
    outcome: str
    detail: str | None
    started_at: datetime
    finished_at: datetime | None
    runs: int


def _run(row: Any) -> JobRunRow:
    return JobRunRow(
        job=row.job,
        program_id=row.program_id,
        period=row.period,
        outcome=row.outcome,
        detail=row.detail,
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        runs=row.runs,
    )


class JobRunRepository:
    async def try_lock(self, conn: AsyncConnection, key: int) -> bool:
        """A session-level advisory lock on PostgreSQL (released with the connection if the
        worker dies); always granted on SQLite, which serves one worker."""
        if not is_postgres(conn):
            return True
        return bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))

    async def unlock(self, conn: AsyncConnection, key: int) -> None:
        if is_postgres(conn):
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    async def get(self, conn: AsyncConnection, job: str, program_id: UUID) -> JobRunRow | None:
        row = (
            await conn.execute(
                select(runs_t).where(runs_t.c.job == job, runs_t.c.program_id == program_id)
            )
        ).first()
        return _run(row) if row is not None else None

    async def all(self, conn: AsyncConnection) -> list[JobRunRow]:
        rows = await conn.execute(select(runs_t).order_by(runs_t.c.job, runs_t.c.program_id))
        return [_run(r) for r in rows]

    async def start(
        self, conn: AsyncConnection, job: str, program_id: UUID, period: str, now: datetime
    ) -> None:
        known = await self.get(conn, job, program_id)
        values = {
            "period": period,
            "outcome": "running",
            "detail": None,
            "started_at": now,
            "finished_at": None,
        }
        if known is None:
            await conn.execute(
                runs_t.insert().values(job=job, program_id=program_id, runs=1, **values)
            )
        else:
            await conn.execute(
                update(runs_t)
                .where(runs_t.c.job == job, runs_t.c.program_id == program_id)
                .values(runs=runs_t.c.runs + 1, **values)
            )

    async def finish(
        self,
        conn: AsyncConnection,
        job: str,
        program_id: UUID,
        outcome: str,
        detail: str,
        now: datetime,
    ) -> None:
        await conn.execute(
            update(runs_t)
            .where(runs_t.c.job == job, runs_t.c.program_id == program_id)
            .values(outcome=outcome, detail=detail[:2000], finished_at=now)
        )


job_run_repository = JobRunRepository()
