"""The program's KPIs answered for a period: as a whole and per tier, store, month or
channel, and retention by monthly cohort (``docs/analytics.md``). Never commits.

Checks, returns and points are summed from the daily aggregates over the period's days;
participants, activity and new buyers from the per-day member sums up to its last day;
buyers and repeat buyers from the per-month buyer sums over its whole months; retention from
the month masks; the liability from the liability report's daily snapshot.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import kpis
from kopilka.analytics.kpi_report_repository import (
    ChecksRow,
    KpiReportRepository,
    kpi_report_repository,
)
from kopilka.analytics.kpis import (
    ACTIVE_WINDOWS,
    BuyerMonthRow,
    Buyers,
    Checks,
    Cohort,
    Grouping,
    KpiRow,
    Liability,
    Members,
    Period,
    Points,
    TierDayRow,
    local_day,
    local_midnight,
)
from kopilka.analytics.liability import PointRate, point_rate
from kopilka.analytics.liability_service import liability_service
from kopilka.programs.service import ProgramContext

_Row = TypeVar("_Row", TierDayRow, BuyerMonthRow)
_T = TypeVar("_T")


@dataclass(frozen=True)
class KpiReport:
    """The KPIs of ``start..end`` (days in the program's time zone). Distinct-member figures
    count the whole months ``months_from..months_to``; participants and active shares are
    as of ``as_of``; the liability is as of ``liability_as_of`` (the daily snapshot's time,
    or now)."""

    start: date
    end: date
    by: Grouping | None
    months_from: str
    months_to: str
    as_of: datetime
    money_currency: str
    points_currency: str
    total: KpiRow
    rows: list[KpiRow]
    liability_as_of: datetime


@dataclass(frozen=True)
class CohortRow:
    month: str
    members: int
    buyers: list[int]
    retention: list[float | None]


@dataclass(frozen=True)
class CohortReport:
    """Retention by monthly cohort: for each month of the period, the members whose first
    purchase ever was in it, and the share of them who bought in it and in each later month
    of the period (``retention[k]``: ``k`` months after)."""

    months_from: str
    months_to: str
    cohorts: list[CohortRow]


class KpiReportService:
    def __init__(self, repository: KpiReportRepository = kpi_report_repository) -> None:
        self.repository = repository

    async def kpis(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        start: date | None = None,
        end: date | None = None,
        by: Grouping | None = None,
    ) -> KpiReport:
        """The KPIs of the period (defaults: the 30 days up to today), as a whole and, with
        ``by``, per tier, store, month or channel (422 naming the field for a bad period)."""
        zone = program.settings.timezone
        period = kpis.checked_period(start, end, local_day(now, zone))
        async with self.repository.tuned(conn):
            return await self._report(conn, program, now, period, by)

    async def _report(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        period: Period,
        by: Grouping | None,
    ) -> KpiReport:
        zone = program.settings.timezone
        span = _Span.of(period, now, zone)
        checks = await self.repository.checks(
            conn, program.id, period.start, period.end, "tier" if by == "tier" else by
        )
        total_checks = _sum_checks(checks)
        value = point_rate(program.settings, program.settings.points_currency())
        # Per tier when the rows are tiers: the whole program's are their sums (every member
        # is on one tier), so each table is read once.
        by_tier = by == "tier"
        days = await self.repository.tier_days(conn, program.id, period.end, by_tier)
        months = await self.repository.buyer_months(
            conn, program.id, period.first_month, period.last_month, by_tier
        )
        tier_of = _tier_names(program, by_tier)
        # Participants and activity are as of the period's end, or now for a period that
        # reaches today or beyond (the days ahead have happened to no one yet).
        upto = min(period.end, local_day(now, zone))
        members = _per_tier(
            days, tier_of, lambda rows: kpis.members_as_of(rows, period.start, upto)
        )
        buyers = self._buyers(period, days, months, tier_of)
        member_purchases = await self._member_purchases(conn, program, period)
        whole = (
            _sum_members(members.values()),
            replace(_sum_buyers(buyers.values()), member_purchases=member_purchases),
        )
        liability = await self._liability(conn, program, now)
        totals = await self._totals(conn, program, period, total_checks, whole, value, liability)
        rows: list[KpiRow] = []
        if by == "tier":
            rows = self._tiers(program, checks, total_checks, members, buyers)
        elif by in ("store", "channel"):
            rows = [
                kpis.kpi_row(by, group, kpis.check_figures(found))
                for group, found in sorted(_by_group(checks).items())
            ]
        elif by == "month":
            rows = await self._months(conn, program, period, checks, (days, months), value, upto)
        return KpiReport(
            start=period.start,
            end=period.end,
            by=by,
            months_from=kpis.month_label(period.first_month),
            months_to=kpis.month_label(period.last_month),
            as_of=span.end,
            money_currency=program.settings.money_currency,
            points_currency=program.settings.points_currency(),
            total=totals,
            rows=rows,
            liability_as_of=liability.as_of,
        )

    async def cohorts(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        start: date | None = None,
        end: date | None = None,
    ) -> CohortReport:
        """Retention by monthly cohort over the months of the period (defaults: the last 12
        months up to today's; at most ``MAX_COHORT_MONTHS``)."""
        today = local_day(now, program.settings.timezone)
        if start is None:
            first = kpis.month_index(end or today) - 11
            start = kpis.month_start(first)
        period = kpis.checked_cohort_months(kpis.checked_period(start, end, today))
        months = list(period.months())
        async with self.repository.tuned(conn):
            bought = await self.repository.cohorts(conn, program.id, months)
        found: list[Cohort] = kpis.cohorts_from(
            period.months(), {c: bought.get((c, c), 0) for c in months}, bought
        )
        return CohortReport(
            months_from=kpis.month_label(months[0]),
            months_to=kpis.month_label(months[-1]),
            cohorts=[
                CohortRow(kpis.month_label(c.month), c.members, c.buyers, c.retention)
                for c in found
            ],
        )

    async def _totals(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        period: Period,
        checks: Checks,
        whole: tuple[Members, Buyers],
        value: PointRate | None,
        liability: Liability,
    ) -> KpiRow:
        members, buyers = whole
        moved = await self.repository.points(
            conn,
            program.id,
            program.settings.points_currency(),
            period.start,
            period.end,
            by_month=False,
        )
        return kpis.kpi_row(
            "total",
            None,
            kpis.check_figures(checks),
            kpis.member_figures(members),
            kpis.buyer_figures(buyers),
            kpis.point_figures(Points(**moved.get("", {})), value),
            kpis.liability_figures(liability),
        )

    def _tiers(
        self,
        program: ProgramContext,
        checks: list[ChecksRow],
        total: Checks,
        members: dict[str, Members],
        buyers: dict[str, Buyers],
    ) -> list[KpiRow]:
        """One row per tier (the ladder's order, then any other tier found), then the row
        of the purchases without a member. Checks count on the tier the purchase was made
        on; participants, active members and buyers on their tier now."""
        ladder = program.settings.tiers
        tier_of = _tier_names(program, True)
        per_tier: dict[str, Checks] = defaultdict(Checks)
        nonmember = Checks()
        for row in checks:
            if row.member:
                per_tier[tier_of(row.group)].add(_checks_of(row))
            else:
                nonmember.add(_checks_of(row))
        order = [level.id for level in ladder.levels] if ladder else []
        seen = sorted(set(per_tier) | set(members) | set(buyers))
        order += [t for t in seen if t not in order]
        # No purchase frequency per tier: checks count on the tier they were made on, buyers
        # on their tier now, and the ratio of the two would mean neither.
        rows = [
            replace(
                kpis.kpi_row(
                    "tier",
                    tier,
                    kpis.check_figures(per_tier.get(tier, Checks()), total.purchases),
                    kpis.member_figures(members.get(tier, Members(0, 0, {}))),
                    kpis.buyer_figures(buyers.get(tier, Buyers(0, 0, 0, 0))),
                ),
                purchase_frequency=None,
            )
            for tier in order
        ]
        rows.append(kpis.kpi_row("no_member", None, kpis.check_figures(nonmember, total.purchases)))
        return rows

    async def _months(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        period: Period,
        checks: list[ChecksRow],
        sums: tuple[list[TierDayRow], list[BuyerMonthRow]],
        value: PointRate | None,
        upto: date,
    ) -> list[KpiRow]:
        """One row per calendar month of the period (its days within the period): checks,
        points, participants and active members at its end, who joined in it, its buyers."""
        days, buyer_months = sums
        per_month = _by_group(checks)
        bought = {row.month: row for row in buyer_months}
        moved = await self.repository.points(
            conn,
            program.id,
            program.settings.points_currency(),
            period.start,
            period.end,
            by_month=True,
        )
        member_checks = await self._whole_month_purchases(conn, program, list(period.months()))
        rows: list[KpiRow] = []
        for month in period.months():
            label = kpis.month_label(month)
            first = max(period.start, kpis.month_start(month))
            last = min(period.end, kpis.month_end(month))
            found = bought.get(month)
            buyers = Buyers(
                found.buyers if found else 0,
                found.multi if found else 0,
                kpis.new_buyers(days, first, last),
                member_checks.get(label, 0),
            )
            rows.append(
                kpis.kpi_row(
                    "month",
                    label,
                    kpis.check_figures(per_month.get(label, Checks())),
                    kpis.member_figures(kpis.members_as_of(days, first, min(last, upto))),
                    kpis.buyer_figures(buyers),
                    kpis.point_figures(Points(**moved.get(label, {})), value),
                )
            )
        return rows

    async def _whole_month_purchases(
        self, conn: AsyncConnection, program: ProgramContext, months: list[int]
    ) -> dict[str, int]:
        rows = await self.repository.checks(
            conn, program.id, kpis.month_start(months[0]), kpis.month_end(months[-1]), "month"
        )
        return {r.group: r.sums["purchases"] for r in rows if r.member}

    def _buyers(
        self,
        period: Period,
        days: list[TierDayRow],
        months: list[BuyerMonthRow],
        tier_of: Callable[[str], str],
    ) -> dict[str, Buyers]:
        """Tier (or '') → buyers and repeat buyers over the period's whole months, and the
        new buyers (first purchase ever within the period's days)."""
        over = _per_tier(months, tier_of, kpis.buyers_over)
        new = _per_tier(days, tier_of, lambda rows: kpis.new_buyers(rows, period.start, period.end))
        return {
            tier: Buyers(*over.get(tier, (0, 0)), new.get(tier, 0), 0)
            for tier in over.keys() | new.keys()
        }

    async def _member_purchases(
        self, conn: AsyncConnection, program: ProgramContext, period: Period
    ) -> int:
        """The members' checks of the period's whole months (the frequency's numerator)."""
        whole = await self.repository.checks(
            conn,
            program.id,
            kpis.month_start(period.first_month),
            kpis.month_end(period.last_month),
            None,
        )
        return sum(row.sums["purchases"] for row in whole if row.member)

    async def _liability(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> Liability:
        """The liability now: today's (or yesterday's) daily snapshot, else worked out."""
        totals = await liability_service.kpi_totals(conn, program, now)
        return Liability(
            totals.outstanding_points,
            totals.outstanding_value,
            totals.breakage_rate,
            totals.liability_after_breakage,
            totals.as_of,
        )


@dataclass(frozen=True)
class _Span:
    """The period as instants: from its first local midnight to the end of its last day,
    or to now when the period reaches today (``current``)."""

    start: datetime
    end: datetime
    current: bool

    @classmethod
    def of(cls, period: Period, now: datetime, zone: str) -> "_Span":
        start = local_midnight(period.start, zone)
        if period.end >= local_day(now, zone):
            return cls(start, now, True)
        return cls(start, local_midnight(period.end + timedelta(days=1), zone), False)


def _per_tier(
    rows: Iterable[_Row], tier_of: Callable[[str], str], figures: Callable[[list[_Row]], _T]
) -> dict[str, _T]:
    """Tier → ``figures`` of its rows (rows of tiers named alike are one tier's)."""
    grouped: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        grouped[tier_of(row.tier)].append(row)
    return {tier: figures(found) for tier, found in grouped.items()}


def _tier_names(program: ProgramContext, by_tier: bool) -> Callable[[str], str]:
    """How a tier found in the tables is named in the answer: members with no tier are on
    the ladder's entry tier."""
    ladder = program.settings.tiers
    entry = ladder.levels[0].id if ladder is not None and by_tier else ""
    return lambda name: name or entry


def _sum_members(found: Iterable[Members]) -> Members:
    participants = new = 0
    active = dict.fromkeys(ACTIVE_WINDOWS, 0)
    for members in found:
        participants, new = participants + members.participants, new + members.new_participants
        for days, n in (members.active or {}).items():
            active[days] += n
    return Members(participants, new, active)


def _sum_buyers(found: Iterable[Buyers]) -> Buyers:
    totals = [0, 0, 0, 0]
    for buyers in found:
        for i, n in enumerate(
            (buyers.buyers, buyers.repeat_buyers, buyers.new_buyers, buyers.member_purchases)
        ):
            totals[i] += n
    return Buyers(*totals)


def _checks_of(row: ChecksRow) -> Checks:
    s = row.sums
    checks = Checks(
        discount=s["discount"],
        points_spent=s["points_spent"],
        paid_with_points=s["paid_with_points"],
        claimed=s["claimed"],
        returns=s["returns"],
        returned=s["returned"],
    )
    if row.member:
        checks.member_purchases, checks.member_revenue = s["purchases"], s["revenue"]
    else:
        checks.nonmember_purchases, checks.nonmember_revenue = s["purchases"], s["revenue"]
    return checks


def _sum_checks(rows: list[ChecksRow]) -> Checks:
    total = Checks()
    for row in rows:
        total.add(_checks_of(row))
    return total


def _by_group(rows: list[ChecksRow]) -> dict[str, Checks]:
    found: dict[str, Checks] = defaultdict(Checks)
    for row in rows:
        found[row.group].add(_checks_of(row))
    return dict(found)


kpi_report_service = KpiReportService()
