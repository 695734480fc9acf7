"""Pure date maths of a program: when earned points become available and when they expire."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from kopilka.programs.schemas import ExpiryPolicy


def available_at(earned_at: datetime, pending_days: int) -> datetime:
    """Points stay pending for the return window, then become spendable."""
    return earned_at + timedelta(days=pending_days)


def _month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def expires_at(policy: ExpiryPolicy, earned_at: datetime, timezone: str) -> datetime | None:
    """The instant the points earned at ``earned_at`` expire (exclusive), or None for never.

    Month and year ends are taken in the program's time zone: points earned in Moscow on the
    evening of 31 January belong to January even though it is still 31 January in UTC.
    """
    if policy.policy == "never":
        return None
    if policy.policy == "days":
        return earned_at + timedelta(days=policy.days)
    tz = ZoneInfo(timezone)
    local = earned_at.astimezone(tz)
    if policy.policy == "end_of_month":
        return _month_start(local.year, local.month + policy.months + 1, tz)
    return _month_start(local.year + policy.years + 1, 1, tz)
