"""The program's KPIs: what each one means, as pure definitions and formulas
(``docs/analytics.md``). No I/O: the service reads the raw counts from the
aggregates and these functions turn them into the answer.

Money and points are integers (money in minor units; averages floored); ratios are floats,
``None`` when their denominator is zero.

Distinct-member figures (buyers, repeat buyers, purchase frequency, retention) count whole
calendar months in the program's time zone: a month is bit ``m mod 60`` of era
``m div 60``, where ``m = year × 12 + month − 1`` (see ``KpiMemberMonth``).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from kopilka.analytics.liability import PointRate
from kopilka.errors import InvalidInput

MONTHS_PER_ERA = 60
ACTIVE_WINDOWS = (30, 90)  # a participant is active who bought within this many days
DEFAULT_PERIOD_DAYS = 30  # no ``from``: the 30 days up to ``to``, ``to`` included
MAX_PERIOD_DAYS = 1830  # about five years
MAX_COHORT_MONTHS = 36
Grouping = Literal["tier", "store", "month", "channel"]
GROUPINGS: tuple[Grouping, ...] = ("tier", "store", "month", "channel")
RowKind = Literal["total", "tier", "no_member", "store", "month", "channel"]


# --- calendar --------------------------------------------------------------------------------


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> date:
    """The last day of month ``index``."""
    return month_start(index + 1) - timedelta(days=1)


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def era_of(index: int) -> int:
    return index // MONTHS_PER_ERA


def bit_of(index: int) -> int:
    """The month's bit in its era's masks."""
    return 1 << (index % MONTHS_PER_ERA)


def era_masks(first: int, last: int) -> dict[int, int]:
    """Era → the mask of the months ``first..last`` (inclusive) that fall in it."""
    masks: dict[int, int] = {}
    for index in range(first, last + 1):
        masks[era_of(index)] = masks.get(era_of(index), 0) | bit_of(index)
    return masks


def local_day(moment: datetime, zone: str) -> date:
    """The calendar day of an instant in the program's time zone."""
    return moment.astimezone(ZoneInfo(zone)).date()


def local_midnight(day: date, zone: str) -> datetime:
    """The instant (UTC) at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


@lru_cache(maxsize=64)
def utc_offsets(
    zone: str, first_year: int = 1970, last_year: int = 2100
) -> tuple[tuple[datetime, int], ...]:
    """The zone's UTC offsets (seconds) and the instants they start at, oldest first: the
    first applies before the second's start too. For databases without time zones, which
    work a local day out as the UTC instant moved by the offset in force."""
    tz = ZoneInfo(zone)

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    moment = datetime(first_year, 1, 1, tzinfo=UTC)
    end = datetime(last_year, 1, 1, tzinfo=UTC)
    spans = [(moment, offset(moment))]
    step = timedelta(days=1)
    while moment < end:
        following = moment + step
        if offset(following) != spans[-1][1]:
            # The change lies in (moment, following]: find its second.
            low, high = moment, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == spans[-1][1] else (low, middle)
            spans.append((high, offset(high)))
        moment = following
    return tuple(spans)


# --- the period --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Days ``start..end`` (both included) in the program's time zone."""

    start: date
    end: date

    @property
    def first_month(self) -> int:
        return month_index(self.start)

    @property
    def last_month(self) -> int:
        return month_index(self.end)

    def months(self) -> range:
        return range(self.first_month, self.last_month + 1)


def checked_period(start: date | None, end: date | None, today: date) -> Period:
    """The period a request asks for: ``to`` defaults to today, ``from`` to the 30 days up
    to ``to``; 422 naming the field when ``from`` is after ``to`` or the period is longer
    than ``MAX_PERIOD_DAYS``."""
    end = end if end is not None else today
    start = start if start is not None else end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise InvalidInput(f"from ({start}) is after to ({end})", field="from")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(
            f"a period covers at most {MAX_PERIOD_DAYS} days; {start}..{end} is longer",
            field="from",
        )
    return Period(start, end)


def checked_cohort_months(period: Period) -> Period:
    if len(period.months()) > MAX_COHORT_MONTHS:
        raise InvalidInput(
            f"cohorts cover at most {MAX_COHORT_MONTHS} months; "
            f"{period.start}..{period.end} covers {len(period.months())}",
            field="from",
        )
    return period


# --- raw counts --------------------------------------------------------------------------------


@dataclass
class Checks:
    """Checks summed from ``kpi_days`` for one row (member and non-member sides apart)."""

    member_purchases: int = 0
    member_revenue: int = 0
    nonmember_purchases: int = 0
    nonmember_revenue: int = 0
    discount: int = 0
    points_spent: int = 0
    paid_with_points: int = 0
    claimed: int = 0
    returns: int = 0
    returned: int = 0

    def add(self, other: "Checks") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def purchases(self) -> int:
        return self.member_purchases + self.nonmember_purchases

    @property
    def revenue(self) -> int:
        return self.member_revenue + self.nonmember_revenue


@dataclass(frozen=True)
class Members:
    """Participants (profiles neither merged nor erased) as of the end of the period, those
    who joined in it, and those whose last purchase is within the active windows."""

    participants: int
    new_participants: int
    active: dict[int, int] | None  # window days → members; None: not worked out


@dataclass(frozen=True)
class Buyers:
    """Distinct members over the period's whole months: who bought, who bought twice or
    more, whose first purchase ever is in the period (exact days), and the members'
    purchases in those months (for the frequency)."""

    buyers: int
    repeat_buyers: int
    new_buyers: int
    member_purchases: int


@dataclass
class Points:
    """Points of the main currency moved in the period (``kpi_point_days``)."""

    issued: int = 0
    reversed: int = 0
    redeemed: int = 0
    refunded: int = 0
    expired: int = 0
    adjusted: int = 0


@dataclass(frozen=True)
class Liability:
    """What the program owes in points (the liability service's totals), as worked out at
    ``as_of``."""

    outstanding_points: int
    outstanding_value: int
    breakage_rate: float | None
    liability_after_breakage: int
    as_of: datetime


@dataclass(frozen=True)
class TierDayRow:
    """One day's sums of members (``kpi_tier_days``) for a tier or the whole program."""

    tier: str
    day: date
    joined: int
    first_bought: int
    active_30: int
    active_90: int

    def active(self, window: int) -> int:
        return self.active_30 if window == 30 else self.active_90


@dataclass(frozen=True)
class BuyerMonthRow:
    """One month's buyers within a range of months (``kpi_buyer_months``): all of them,
    those who bought twice or more in it, those for whom it is the first month of the
    range they bought in, and those of these who bought only once in the whole range."""

    tier: str
    month: int
    buyers: int
    multi: int
    entering: int
    single: int


def members_as_of(rows: Iterable[TierDayRow], start: date, end: date) -> Members:
    """Participants as of the end of ``end``, those who joined in ``start..end`` and the
    active members as of ``end`` (bought on it or within the window's days before it)."""
    participants = new = 0
    active = dict.fromkeys(ACTIVE_WINDOWS, 0)
    for row in rows:
        if row.day > end:
            continue
        participants += row.joined
        if row.day >= start:
            new += row.joined
        for window in ACTIVE_WINDOWS:
            active[window] += row.active(window)
    return Members(participants, new, active)


def new_buyers(rows: Iterable[TierDayRow], start: date, end: date) -> int:
    """Members whose first purchase ever is in ``start..end``."""
    return sum(row.first_bought for row in rows if start <= row.day <= end)


def buyers_over(rows: Iterable[BuyerMonthRow]) -> tuple[int, int]:
    """(buyers, repeat buyers) over the whole range the rows were read for."""
    buyers = single = 0
    for row in rows:
        buyers += row.entering
        single += row.single
    return buyers, buyers - single


# --- the KPIs ----------------------------------------------------------------------------------


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def average(total: int, count: int) -> int | None:
    return total // count if count else None


@dataclass(frozen=True)
class KpiRow:
    """One row of the answer: the whole period, or one group of it (``kind``/``group``).
    Figures that do not apply to a row's kind are None (e.g. participants per store)."""

    kind: RowKind
    group: str | None
    # Participants.
    participants: int | None = None
    new_participants: int | None = None
    active_30d: int | None = None
    active_90d: int | None = None
    active_share_30d: float | None = None
    active_share_90d: float | None = None
    # Checks.
    purchases: int = 0
    member_purchases: int = 0
    nonmember_purchases: int = 0
    revenue: int = 0
    member_revenue: int = 0
    nonmember_revenue: int = 0
    average_check: int | None = None
    average_check_members: int | None = None
    average_check_nonmembers: int | None = None
    conversion: float | None = None
    new_visitor_conversion: float | None = None
    discount: int = 0
    # Returns.
    returns: int = 0
    returned: int = 0
    net_revenue: int = 0
    returns_rate: float | None = None
    # Distinct members over whole months.
    buyers: int | None = None
    new_buyers: int | None = None
    repeat_buyers: int | None = None
    purchase_frequency: float | None = None
    repeat_rate: float | None = None
    # Points.
    points_spent: int = 0
    redemption_rate: float | None = None
    points_issued: int | None = None
    points_reversed: int | None = None
    points_redeemed: int | None = None
    points_refunded: int | None = None
    points_expired: int | None = None
    points_adjusted: int | None = None
    bonus_conversion: float | None = None
    cost_of_points: int | None = None
    # The liability now (the whole-period row only).
    outstanding_points: int | None = None
    outstanding_value: int | None = None
    breakage_rate: float | None = None
    liability_after_breakage: int | None = None


def check_figures(checks: Checks, all_checks: int | None = None) -> dict[str, object]:
    """The check figures of a row. ``all_checks``: the period's checks, for rows whose
    conversion is their share of them (tiers and the non-member row); otherwise conversion
    is the row's own member checks ÷ its checks."""
    own_members = checks.member_purchases
    return {
        "purchases": checks.purchases,
        "member_purchases": checks.member_purchases,
        "nonmember_purchases": checks.nonmember_purchases,
        "revenue": checks.revenue,
        "member_revenue": checks.member_revenue,
        "nonmember_revenue": checks.nonmember_revenue,
        "average_check": average(checks.revenue, checks.purchases),
        "average_check_members": average(checks.member_revenue, checks.member_purchases),
        "average_check_nonmembers": average(checks.nonmember_revenue, checks.nonmember_purchases),
        "conversion": (
            ratio(checks.purchases, all_checks)
            if all_checks is not None
            else ratio(own_members, checks.purchases)
        ),
        # Checks made without a card: those still without a member and those claimed since.
        # A tier's row, or the row of checks without a member, splits them apart: no figure.
        "new_visitor_conversion": (
            None
            if all_checks is not None
            else ratio(checks.claimed, checks.nonmember_purchases + checks.claimed)
        ),
        "discount": checks.discount,
        "returns": checks.returns,
        "returned": checks.returned,
        "net_revenue": checks.revenue - checks.returned,
        "returns_rate": ratio(checks.returned, checks.revenue),
        "points_spent": checks.points_spent,
        "redemption_rate": ratio(checks.paid_with_points, checks.member_purchases),
    }


def member_figures(members: Members) -> dict[str, object]:
    found: dict[str, object] = {
        "participants": members.participants,
        "new_participants": members.new_participants,
    }
    if members.active is not None:
        for days in ACTIVE_WINDOWS:
            found[f"active_{days}d"] = members.active.get(days, 0)
            found[f"active_share_{days}d"] = ratio(
                members.active.get(days, 0), members.participants
            )
    return found


def buyer_figures(buyers: Buyers) -> dict[str, object]:
    return {
        "buyers": buyers.buyers,
        "new_buyers": buyers.new_buyers,
        "repeat_buyers": buyers.repeat_buyers,
        "purchase_frequency": ratio(buyers.member_purchases, buyers.buyers),
        "repeat_rate": ratio(buyers.repeat_buyers, buyers.buyers),
    }


def point_figures(points: Points, rate: PointRate | None) -> dict[str, object]:
    """``rate``: what a point of the main currency is worth (``liability.point_rate``)."""
    spent = points.redeemed - points.refunded
    return {
        "points_issued": points.issued,
        "points_reversed": points.reversed,
        "points_redeemed": points.redeemed,
        "points_refunded": points.refunded,
        "points_expired": points.expired,
        "points_adjusted": points.adjusted,
        "bonus_conversion": ratio(spent, points.issued - points.reversed),
        "cost_of_points": rate.value(spent) if rate is not None else None,
    }


def liability_figures(liability: Liability) -> dict[str, object]:
    return {
        "outstanding_points": liability.outstanding_points,
        "outstanding_value": liability.outstanding_value,
        "breakage_rate": liability.breakage_rate,
        "liability_after_breakage": liability.liability_after_breakage,
    }


def kpi_row(kind: RowKind, group: str | None, *parts: dict[str, object]) -> KpiRow:
    merged: dict[str, object] = {}
    for part in parts:
        merged.update(part)
    return KpiRow(kind, group, **merged)  # type: ignore[arg-type]


# --- retention by cohort -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    """Members whose first purchase ever was in ``month``, and how many of them bought in
    each month from it on (``buyers[0]`` is the cohort itself)."""

    month: int
    members: int
    buyers: list[int] = field(default_factory=list)

    @property
    def retention(self) -> list[float | None]:
        return [ratio(n, self.members) for n in self.buyers]


def cohorts_from(
    months: range, sizes: dict[int, int], bought: dict[tuple[int, int], int]
) -> list[Cohort]:
    """Cohorts of ``months`` from the cohort sizes and (cohort, month) → buyers; each
    cohort followed to the last month of the period."""
    return [
        Cohort(c, sizes.get(c, 0), [bought.get((c, m), 0) for m in range(c, months.stop)])
        for c in months
    ]
