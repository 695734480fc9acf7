"""Liability and breakage, the pure part: what outstanding points are worth, what became of
the points of each earning month, and the breakage expected of the points still open.

Everything here works on sums the repository has already grouped by hour (hours since
1970-01-01 UTC): an hour falls into one month of the program's time zone (for every zone
whose offset is a whole number of hours), so months are cut in the program's zone without
any time-zone arithmetic in SQL. Points and money are integers; only rates are floats.
``docs/analytics.md`` defines every figure.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from kopilka.programs.schemas import ProgramSettings

# The expected breakage rate is that of at most this many of the latest mature cohorts.
BREAKAGE_COHORTS = 12
SECONDS_PER_HOUR = 3600
# A snapshot stands in for the live figures on its own day and the next: the daily job
# runs at some hour of each day, so before that hour the freshest one is yesterday's.
SNAPSHOT_DAYS_VALID = 2
# Five years, leap days included: the longest history one answer returns.
MAX_HISTORY_DAYS = 1830


@dataclass(frozen=True)
class PointRate:
    """``points`` points are worth ``money`` minor units of the program's money."""

    points: int
    money: int

    def value(self, amount: int) -> int:
        """What ``amount`` points are worth, rounded down to the minor unit."""
        return amount * self.money // self.points


def point_rate(settings: ProgramSettings, currency: str) -> PointRate | None:
    """What one point of ``currency`` costs the books, or None when nothing says.

    A money-like currency is its own value. The main points currency is worth
    ``analytics.point_value``, else the rate at which points pay at the till
    (``points_payment``, when it pays in this currency), else 1 point = 100 minor units.
    Another points currency is worth the till's rate if the till pays with it, else it has
    no known value.
    """
    kinds = {c.code: c.kind for c in settings.currencies}
    if kinds.get(currency) == "money":
        return PointRate(1, 1)  # cashback counts in minor units of money already
    payment = settings.points_payment
    paying = payment is not None and payment.currency == currency
    if currency == settings.points_currency():
        chosen = settings.analytics.point_value
        if chosen is not None:
            return PointRate(chosen.points, chosen.money)
        if payment is not None and paying:
            return PointRate(payment.points, payment.money)
        return PointRate(1, 100)
    if payment is not None and paying:
        return PointRate(payment.points, payment.money)
    return None


# --- months ---------------------------------------------------------------------------------


def month_of_hour(hour: int, zone: ZoneInfo) -> str:
    """``YYYY-MM`` of the program's month in which hour ``hour`` (since the epoch) falls."""
    local = datetime.fromtimestamp(hour * SECONDS_PER_HOUR, UTC).astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


def hour_of(instant: datetime) -> int:
    """The hour (since the epoch) an instant falls in."""
    return int(instant.timestamp()) // SECONDS_PER_HOUR


def month_of(instant: datetime, zone: ZoneInfo) -> str:
    local = instant.astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}"


# --- outstanding points by expiry month -----------------------------------------------------


@dataclass(frozen=True)
class OpenPoints:
    """Points still in lots of one currency whose last spendable instant falls in the hour
    ``last_hour`` (None: they never expire); ``pending`` of them not yet spendable."""

    currency: str
    last_hour: int | None
    points: int
    pending: int


@dataclass(frozen=True)
class ExpiryMonth:
    """Outstanding points whose last spendable day is in ``month`` (None: never expire)."""

    month: str | None
    points: int
    value: int | None


@dataclass(frozen=True)
class Outstanding:
    points: int
    pending: int
    overdue: int  # past their expiry, not yet moved by the expiry job
    by_expiry: list[ExpiryMonth]


def outstanding(
    rows: Iterable[OpenPoints], rate: PointRate | None, zone: ZoneInfo, now: datetime
) -> Outstanding:
    """One currency's open points summed per expiry month, soonest first, "never" last."""
    by_month: dict[str | None, int] = {}
    points = pending = overdue = 0
    current_hour = hour_of(now)
    for row in rows:
        month = None if row.last_hour is None else month_of_hour(row.last_hour, zone)
        by_month[month] = by_month.get(month, 0) + row.points
        points += row.points
        pending += row.pending
        if row.last_hour is not None and row.last_hour < current_hour:
            overdue += row.points
    months = sorted(by_month, key=lambda m: (m is None, m or ""))
    return Outstanding(
        points,
        pending,
        overdue,
        [
            ExpiryMonth(m, by_month[m], rate.value(by_month[m]) if rate is not None else None)
            for m in months
        ],
    )


# --- cohorts and breakage -------------------------------------------------------------------


@dataclass(frozen=True)
class LotSums:
    """Sums over lots of one currency earned in the hour ``hour``: ``earned`` (the lots'
    amounts), what ran out of them (``expired``) and what they still hold (``open``)."""

    currency: str
    hour: int
    earned: int
    expired: int
    open: int


@dataclass(frozen=True)
class Cohort:
    """What became of the points of one currency earned in one month."""

    month: str
    earned: int
    redeemed: int  # everything else that left the lots: spent, debited, taken back
    expired: int
    open: int
    mature: bool  # the month is over and none of its points can still be spent
    breakage_rate: float | None  # expired ÷ earned, for a mature cohort


@dataclass
class _CohortSums:
    earned: int = 0
    expired: int = 0
    open: int = 0


def cohorts(rows: Iterable[LotSums], zone: ZoneInfo, now: datetime) -> list[Cohort]:
    """Lot sums by hour of one currency gathered into earning months, oldest first."""
    sums: dict[str, _CohortSums] = {}
    for row in rows:
        bucket = sums.setdefault(month_of_hour(row.hour, zone), _CohortSums())
        bucket.earned += row.earned
        bucket.expired += row.expired
        bucket.open += row.open
    current = month_of(now, zone)
    found = []
    for month, s in sorted(sums.items()):
        mature = month < current and s.open == 0 and s.earned > 0
        found.append(
            Cohort(
                month=month,
                earned=s.earned,
                redeemed=s.earned - s.expired - s.open,
                expired=s.expired,
                open=s.open,
                mature=mature,
                breakage_rate=s.expired / s.earned if mature else None,
            )
        )
    return found


@dataclass(frozen=True)
class Breakage:
    """The breakage rate expected of open points: expired ÷ earned summed over ``months``
    (the latest mature cohorts), None when no cohort is mature yet."""

    rate: float | None
    months: list[str] = field(default_factory=list)
    earned: int = 0
    expired: int = 0


def expected_breakage(found: Sequence[Cohort], limit: int = BREAKAGE_COHORTS) -> Breakage:
    """Earned-weighted breakage of the ``limit`` latest mature cohorts."""
    mature = [c for c in found if c.mature][-limit:]
    earned = sum(c.earned for c in mature)
    if earned == 0:
        return Breakage(None)
    expired = sum(c.expired for c in mature)
    return Breakage(expired / earned, [c.month for c in mature], earned, expired)


def after_breakage(value: int, rate: float | None) -> int:
    """``value × (1 − rate)``, rounded up to the minor unit: rounding never understates a
    liability. Without a rate no breakage is assumed."""
    if rate is None:
        return value
    return value - int(value * rate)


# --- merged lots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MergedLot:
    """A lot a merge made on the surviving profile from ``origin`` (a lot of the merged one),
    with its own sums: it carries on its origin's cohort, it is not new earning."""

    id: str
    origin: str
    currency: str
    hour: int
    amount: int
    expired: int
    open: int


def attribute_merged(
    rows: Sequence[LotSums], merged: Sequence[MergedLot], origin_hours: dict[str, int]
) -> list[LotSums]:
    """Lot sums with each merged lot moved back to the earning hour of the lot it was first
    made from: its amount leaves its own hour's earning (the points were earned once, by the
    origin), its expired and open points join the origin's hour.

    ``origin_hours`` gives the earning hour of lots that are not themselves merged copies;
    a chain of merges is followed back to its first lot. A lot whose origin is unknown stays
    where it is.
    """
    by_id = {lot.id: lot for lot in merged}
    sums: dict[tuple[str, int], list[int]] = {
        (r.currency, r.hour): [r.earned, r.expired, r.open] for r in rows
    }
    for lot in merged:
        root_hour = _root_hour(lot, by_id, origin_hours)
        if root_hour is None:
            continue
        own = sums.setdefault((lot.currency, lot.hour), [0, 0, 0])
        own[0] -= lot.amount
        own[1] -= lot.expired
        own[2] -= lot.open
        root = sums.setdefault((lot.currency, root_hour), [0, 0, 0])
        root[1] += lot.expired
        root[2] += lot.open
    return [
        LotSums(currency, hour, *values)
        for (currency, hour), values in sorted(sums.items())
        if any(values)
    ]


def _root_hour(
    lot: MergedLot, by_id: dict[str, MergedLot], origin_hours: dict[str, int]
) -> int | None:
    seen: set[str] = set()
    current = lot
    while current.origin in by_id and current.origin not in seen:
        seen.add(current.origin)
        current = by_id[current.origin]
    return origin_hours.get(current.origin)


# --- daily snapshots ------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One currency's liability as worked out at ``taken_at``, stored for the program's
    local ``day`` of that instant. Values in minor units; None where the currency has no
    known value (or, for the rate, no mature cohort)."""

    currency: str
    day: date
    taken_at: datetime
    outstanding_points: int
    pending_points: int
    overdue_points: int
    outstanding_value: int | None
    breakage_rate: float | None
    liability_after_breakage: int | None


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    """The program's calendar date at ``instant``."""
    return instant.astimezone(zone).date()


def stands_in(snapshot: Snapshot, now: datetime, zone: ZoneInfo) -> bool:
    """Whether ``snapshot`` may be shown instead of the live figures at ``now``: taken no
    later than ``now``, on the program's day of ``now`` or the day before."""
    today = local_day(now, zone)
    oldest = today - timedelta(days=SNAPSHOT_DAYS_VALID - 1)
    return snapshot.taken_at <= now and oldest <= snapshot.day <= today
