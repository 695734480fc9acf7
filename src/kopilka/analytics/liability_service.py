"""Liability and breakage of a program: outstanding points by expiry month and their value,
breakage by earning cohort, the breakage expected of open points and the liability left
after it (``docs/analytics.md``). Reads only; never commits."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import liability
from kopilka.analytics.liability import (
    BREAKAGE_COHORTS,
    Breakage,
    Cohort,
    ExpiryMonth,
    LotSums,
    PointRate,
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
    """The main points currency in four numbers (the KPIs show them)."""

    outstanding_points: int
    outstanding_value: int
    breakage_rate: float | None
    liability_after_breakage: int


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
        """The program's main points currency: outstanding points, their value, the
        expected breakage rate (None: no mature cohort yet) and the liability after it."""
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
        )

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


liability_service = LiabilityService()
