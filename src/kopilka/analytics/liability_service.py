"""Liability and breakage of a program: outstanding points by expiry month and their value,
breakage by earning cohort, the breakage expected of open points and the liability left
after it; daily snapshots of those figures, which ``kpi_totals`` reads instead of every
lot, and their history (``docs/analytics.md``). Never commits."""

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import liability
from kopilka.analytics.liability import (
    BREAKAGE_COHORTS,
    MAX_HISTORY_DAYS,
    Breakage,
    Cohort,
    ExpiryMonth,
    LotSums,
    PointRate,
    Snapshot,
)
from kopilka.analytics.liability_repository import LiabilityRepository, liability_repository
from kopilka.errors import InvalidInput
from kopilka.programs.service import ProgramContext

MAX_COHORTS = 120


@dataclass(frozen=True)
class CurrencyLiability:
    """One currency's outstanding points, their value and expected breakage. Values are
    minor units of the program's money; None where the currency has no known value."""

    currency: str
    kind: str
    point_value: PointRate | None
    outstanding_points: int
    pending_points: int
    overdue_points: int
    outstanding_value: int | None
    by_expiry: list[ExpiryMonth]
    cohorts: list[Cohort]
    breakage: Breakage
    liability_after_breakage: int | None


@dataclass(frozen=True)
class LiabilityReport:
    as_of: datetime
    money_currency: str
    timezone: str
    currencies: list[CurrencyLiability]


@dataclass(frozen=True)
class LiabilityTotals:
    """The main points currency in four numbers (the KPIs show them), as worked out at
    ``as_of``."""

    outstanding_points: int
    outstanding_value: int
    breakage_rate: float | None
    liability_after_breakage: int
    as_of: datetime


@dataclass(frozen=True)
class LiabilityHistory:
    """The stored snapshots of the program's days ``start..end``, by day and currency."""

    start: date
    end: date
    money_currency: str
    timezone: str
    snapshots: list[Snapshot]


class LiabilityService:
    def __init__(self, repository: LiabilityRepository = liability_repository) -> None:
        self.repository = repository

    async def report(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        cohorts: int = BREAKAGE_COHORTS,
    ) -> LiabilityReport:
        """Every currency of the program as of ``now``; the expected breakage from the
        latest ``cohorts`` mature earning months (1 to 120; 422 naming ``cohorts``)."""
        if not 1 <= cohorts <= MAX_COHORTS:
            raise InvalidInput(
                f"cohorts must be between 1 and {MAX_COHORTS}, not {cohorts}", field="cohorts"
            )
        settings = program.settings
        zone = ZoneInfo(settings.timezone)
        open_rows = await self.repository.open_points(conn, program.id)
        sums = await self._lot_sums(conn, program.id)
        found = []
        for currency in settings.currencies:
            code = currency.code
            rate = liability.point_rate(settings, code)
            left = liability.outstanding(
                [r for r in open_rows if r.currency == code], rate, zone, now
            )
            months = liability.cohorts([s for s in sums if s.currency == code], zone, now)
            breakage = liability.expected_breakage(months, cohorts)
            value = rate.value(left.points) if rate is not None else None
            found.append(
                CurrencyLiability(
                    currency=code,
                    kind=currency.kind,
                    point_value=rate,
                    outstanding_points=left.points,
                    pending_points=left.pending,
                    overdue_points=left.overdue,
                    outstanding_value=value,
                    by_expiry=left.by_expiry,
                    cohorts=months,
                    breakage=breakage,
                    liability_after_breakage=(
                        liability.after_breakage(value, breakage.rate)
                        if value is not None
                        else None
                    ),
                )
            )
        return LiabilityReport(now, settings.money_currency, settings.timezone, found)

    async def totals(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> LiabilityTotals:
        """The program's main points currency worked out live, from every lot: outstanding
        points, their value, the expected breakage rate (None: no mature cohort yet) and
        the liability after it."""
        main = program.settings.points_currency()
        report = await self.report(conn, program, now)
        figures = next(c for c in report.currencies if c.currency == main)
        # The main currency always has a value (point_rate falls back to 1 point = 100).
        value = figures.outstanding_value or 0
        return LiabilityTotals(
            outstanding_points=figures.outstanding_points,
            outstanding_value=value,
            breakage_rate=figures.breakage.rate,
            liability_after_breakage=liability.after_breakage(value, figures.breakage.rate),
            as_of=now,
        )

    async def kpi_totals(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> LiabilityTotals:
        """The totals for the KPIs: the main points currency's latest snapshot when it was
        taken on the program's day of ``now`` or the day before (``as_of`` is when it was
        taken), else the live ``totals`` (``as_of`` = ``now``)."""
        zone = ZoneInfo(program.settings.timezone)
        latest = await self.repository.latest_snapshot(
            conn, program.id, program.settings.points_currency(), liability.local_day(now, zone)
        )
        if latest is None or not liability.stands_in(latest, now, zone):
            return await self.totals(conn, program, now)
        return _totals_of(latest)

    async def snapshot(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> list[Snapshot]:
        """Work the report out as of ``now`` and store it as the rows of the program's day
        of ``now``, one per currency; the same day again replaces them."""
        return await self.store_snapshot(conn, program, await self.report(conn, program, now))

    async def store_snapshot(
        self, conn: AsyncConnection, program: ProgramContext, report: LiabilityReport
    ) -> list[Snapshot]:
        """Store a report worked out earlier (with the default ``cohorts``, as the KPIs
        use) as the rows of its day, one per currency."""
        zone = ZoneInfo(program.settings.timezone)
        rows = [_snapshot_of(c, report.as_of, zone) for c in report.currencies]
        await self.repository.save_snapshots(conn, program.id, rows)
        return rows

    async def history(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        start: date,
        end: date,
        currency: str | None = None,
    ) -> LiabilityHistory:
        """The snapshots of days ``start..end`` (both included, program's local dates) of
        one currency or all: 422 naming ``from`` when ``start`` is after ``end`` or the
        range is over ``MAX_HISTORY_DAYS`` days, naming ``currency`` for one the program
        does not have."""
        _check_history(program, start, end, currency)
        rows = await self.repository.snapshots(conn, program.id, start, end, currency)
        settings = program.settings
        return LiabilityHistory(start, end, settings.money_currency, settings.timezone, rows)

    async def _lot_sums(self, conn: AsyncConnection, program_id: UUID) -> list[LotSums]:
        """Lot sums by earning hour, with merged lots carried back to their origin's hour."""
        sums = await self.repository.lot_sums(conn, program_id)
        merged = await self.repository.merged_lots(conn, program_id)
        if not merged:
            return sums
        copies = {lot.id for lot in merged}
        origins = sorted({UUID(lot.origin) for lot in merged if lot.origin not in copies})
        hours = await self.repository.earning_hours(conn, origins)
        return liability.attribute_merged(sums, merged, hours)


def _snapshot_of(figures: CurrencyLiability, taken_at: datetime, zone: ZoneInfo) -> Snapshot:
    return Snapshot(
        currency=figures.currency,
        day=liability.local_day(taken_at, zone),
        taken_at=taken_at,
        outstanding_points=figures.outstanding_points,
        pending_points=figures.pending_points,
        overdue_points=figures.overdue_points,
        outstanding_value=figures.outstanding_value,
        breakage_rate=figures.breakage.rate,
        liability_after_breakage=figures.liability_after_breakage,
    )


def _totals_of(snapshot: Snapshot) -> LiabilityTotals:
    # The main currency always has a value (point_rate falls back to 1 point = 100).
    value = snapshot.outstanding_value or 0
    after = snapshot.liability_after_breakage
    return LiabilityTotals(
        outstanding_points=snapshot.outstanding_points,
        outstanding_value=value,
        breakage_rate=snapshot.breakage_rate,
        liability_after_breakage=after if after is not None else value,
        as_of=snapshot.taken_at,
    )


def _check_history(program: ProgramContext, start: date, end: date, currency: str | None) -> None:
    if start > end:
        raise InvalidInput(f"from ({start}) is after to ({end})", field="from")
    days = (end - start).days + 1
    if days > MAX_HISTORY_DAYS:
        raise InvalidInput(
            f"a history covers at most {MAX_HISTORY_DAYS} days; {start}..{end} covers {days}",
            field="from",
        )
    codes = [c.code for c in program.settings.currencies]
    if currency is not None and currency not in codes:
        raise InvalidInput(
            f"the program has no currency {currency!r} (it has {', '.join(codes)})",
            field="currency",
        )


liability_service = LiabilityService()
