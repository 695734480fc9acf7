"""The program at a glance, for the console's dashboard: members and how many of them buy,
the points issued, redeemed and expired in a period, what the program owes in points,
purchases and the average check week by week, and members per tier. Never commits.

Each figure is one aggregate query (``dashboard_repository``); weeks start on Monday at
midnight in the program's time zone.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics.dashboard_repository import DashboardRepository, dashboard_repository
from kopilka.errors import InvalidInput
from kopilka.programs.service import ProgramContext

PERIODS = (7, 30, 90, 365)  # the days a dashboard's points flow may cover
DEFAULT_PERIOD = 30
ACTIVE_WINDOWS = (30, 90)  # a member is active who bought within this many days
WEEKS = 12
# The program's accounts a points flow reads (``ledger.domain.Account``).
ISSUED, REDEEMED, EXPIRED, ADJUSTMENTS = "issued", "redeemed", "expired", "adjustments"


@dataclass(frozen=True)
class PointsFlow:
    """Points of the main currency moved in a period, each net of its own reversals:
    ``issued`` by the rules (less what returns took back), ``redeemed`` (less refunds),
    ``expired``, and ``adjusted`` by hand (credits less debits)."""

    days: int
    since: datetime
    issued: int
    redeemed: int
    expired: int
    adjusted: int


@dataclass(frozen=True)
class Week:
    """Purchases that occurred in the week starting ``start`` (a Monday in the program's
    time zone); money in minor units; the average check rounded down."""

    start: date
    purchases: int
    revenue: int

    @property
    def average_check(self) -> int | None:
        return self.revenue // self.purchases if self.purchases else None


@dataclass(frozen=True)
class TierCount:
    tier: str
    name: str
    members: int


@dataclass(frozen=True)
class Dashboard:
    as_of: datetime
    members: int  # profiles neither merged nor erased
    blocked: int
    active: dict[int, int]  # days → members who bought within them
    points_currency: str
    money_currency: str
    flow: PointsFlow
    liability: int  # members' available + pending points of the main currency
    weeks: list[Week]
    tiers: list[TierCount] | None  # None when the program has no tier ladder


def week_starts(now: datetime, zone: str, weeks: int = WEEKS) -> list[date]:
    """The Mondays of the last ``weeks`` weeks in ``zone``, oldest first, this week last."""
    today = now.astimezone(ZoneInfo(zone)).date()
    this_monday = today - timedelta(days=today.weekday())
    return [this_monday - timedelta(weeks=back) for back in range(weeks - 1, -1, -1)]


def local_midnight(day: date, zone: str) -> datetime:
    """The instant (UTC) at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def checked_period(days: int) -> int:
    if days not in PERIODS:
        raise InvalidInput(
            f"days must be one of {', '.join(map(str, PERIODS))}; got {days}", field="days"
        )
    return days


class DashboardService:
    def __init__(self, repository: DashboardRepository = dashboard_repository) -> None:
        self.repository = repository

    async def dashboard(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        now: datetime,
        *,
        days: int = DEFAULT_PERIOD,
    ) -> Dashboard:
        """Every figure of the dashboard as of ``now``, the points flow over the last
        ``days`` (one of ``PERIODS``; 422 naming ``days`` otherwise)."""
        days = checked_period(days)
        settings = program.settings
        members, blocked = await self.repository.member_counts(conn, program.id)
        buyers = await self.repository.buyers(
            conn, program.id, [now - timedelta(days=d) for d in ACTIVE_WINDOWS]
        )
        return Dashboard(
            as_of=now,
            members=members,
            blocked=blocked,
            active=dict(zip(ACTIVE_WINDOWS, buyers, strict=True)),
            points_currency=settings.points_currency(),
            money_currency=settings.money_currency,
            flow=await self.points_flow(conn, program, now, days),
            liability=await self.repository.liability(conn, program.id, settings.points_currency()),
            weeks=await self.weeks(conn, program, now),
            tiers=await self.tiers(conn, program),
        )

    async def points_flow(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime, days: int
    ) -> PointsFlow:
        since = now - timedelta(days=days)
        totals = await self.repository.account_totals(
            conn,
            program.id,
            program.settings.points_currency(),
            (ISSUED, REDEEMED, EXPIRED, ADJUSTMENTS),
            since,
        )
        # The program's accounts are the other side of the members': points leave
        # ``issued`` and ``adjustments`` (negative) and arrive in ``redeemed`` and
        # ``expired`` (positive).
        return PointsFlow(
            days=days,
            since=since,
            issued=-totals.get(ISSUED, 0),
            redeemed=totals.get(REDEEMED, 0),
            expired=totals.get(EXPIRED, 0),
            adjusted=-totals.get(ADJUSTMENTS, 0),
        )

    async def weeks(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> list[Week]:
        """The last ``WEEKS`` weeks in the program's time zone, this (unfinished) week
        last; weeks without purchases are there with zeros."""
        zone = program.settings.timezone
        starts = week_starts(now, zone)
        bounds = [local_midnight(d, zone) for d in [*starts, starts[-1] + timedelta(weeks=1)]]
        found = await self.repository.purchases_by_bucket(conn, program.id, bounds)
        return [Week(start, *found.get(index, (0, 0))) for index, start in enumerate(starts)]

    async def tiers(self, conn: AsyncConnection, program: ProgramContext) -> list[TierCount] | None:
        """Members per tier of the ladder, in the ladder's order (members without a tier
        row are on the entry tier); None without a ladder."""
        ladder = program.settings.tiers
        if ladder is None:
            return None
        counts = await self.repository.members_per_tier(conn, program.id)
        entry = ladder.levels[0].id
        per_tier: dict[str, int] = {}
        for tier, members in counts.items():
            key = tier or entry
            per_tier[key] = per_tier.get(key, 0) + members
        return [
            TierCount(level.id, level.name, per_tier.get(level.id, 0)) for level in ladder.levels
        ]


dashboard_service = DashboardService()
