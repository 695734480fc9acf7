"""Analytics' scheduled jobs: customer-lifetime models refitted, members' predictions kept;
the liability's daily snapshot.

The ``clv-refit`` job is daily per program (after ``crm-facts``, before
``segments-refresh``, so segments read the new predictions) but refits only when the last
refit is ``REFIT_DAYS`` or more days old: the models describe buying over months, and a
refit reads the whole purchase history. It reads and fits on a read-only connection (one
snapshot of the history, no write lock held while the models are fitted), then stores the
fit and replaces the predictions in one short transaction.

The ``liability-snapshot`` job is daily per program (after ``clv-refit``, so after the
day's expiries and the members' facts): it works the liability report out on a
read-only connection (every lot read, no write lock held meanwhile) and stores its
figures as the day's rows in one short transaction (``kpi_totals`` reads the latest).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.analytics.clv_schemas import FitOut
from kopilka.analytics.clv_service import clv_service
from kopilka.analytics.liability import Snapshot
from kopilka.analytics.liability_service import liability_service
from kopilka.db import reading, run_in_transaction
from kopilka.programs.service import program_service

REFIT_DAYS = 7


@dataclass(frozen=True)
class RefitReport:
    """What the job did: ``fit`` is None when the last refit was recent enough
    (``last_fitted_at`` says when)."""

    fit: FitOut | None
    last_fitted_at: datetime | None = None

    def line(self) -> str:
        fit = self.fit
        if fit is None:
            when = self.last_fitted_at.isoformat() if self.last_fitted_at else "never"
            return f"refitted less than {REFIT_DAYS} days ago ({when})"
        if fit.status != "fitted":
            return f"skipped ({fit.reason}): {fit.detail}"
        return (
            f"{fit.model} and gammagamma fitted on {fit.customers} members,"
            f" {fit.predictions} predictions stored"
        )


async def refit_program(
    engine: AsyncEngine,
    program_id: UUID,
    now: datetime,
    *,
    force: bool = False,
    pareto_seconds: float | None = None,
) -> RefitReport:
    """Refit the program's models on its history up to ``now`` and store the outcome;
    without ``force``, only if the last refit is at least ``REFIT_DAYS`` days old.
    ``pareto_seconds``: Pareto/NBD's time budget, if not the service's."""
    async with reading(engine, snapshot=True) as conn:
        last = await clv_service.last_fitted_at(conn, program_id)
        if not force and last is not None and now - last < timedelta(days=REFIT_DAYS):
            return RefitReport(None, last)
        program = await program_service.get(conn, program_id)
        refit = await clv_service.prepare(conn, program, now, pareto_seconds)

    async def store(conn: AsyncConnection) -> FitOut:
        return await clv_service.store(conn, refit)

    return RefitReport(await run_in_transaction(engine, store), last)


@dataclass(frozen=True)
class SnapshotReport:
    """The rows the liability snapshot stored, one per currency; ``main`` is the program's
    main points currency."""

    main: str
    rows: list[Snapshot]

    def line(self) -> str:
        row = next(r for r in self.rows if r.currency == self.main)
        after = row.liability_after_breakage
        currencies = ", ".join(r.currency for r in self.rows)
        return (
            f"liability of {row.day} stored for {currencies}; {row.currency}:"
            f" {row.outstanding_points:,} outstanding,"
            f" {'unknown' if after is None else format(after, ',')} after breakage"
        )


async def snapshot_program(engine: AsyncEngine, program_id: UUID, now: datetime) -> SnapshotReport:
    """Work the program's liability out as of ``now`` and store it as the rows of its local
    day (replacing those of an earlier run that day)."""
    async with reading(engine, snapshot=True) as conn:
        program = await program_service.get(conn, program_id)
        report = await liability_service.report(conn, program, now)

    async def store(conn: AsyncConnection) -> list[Snapshot]:
        return await liability_service.store_snapshot(conn, program, report)

    rows = await run_in_transaction(engine, store)
    return SnapshotReport(program.settings.points_currency(), rows)
