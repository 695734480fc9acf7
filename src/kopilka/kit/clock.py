"""The one clock every service reads ``now`` from.

Time is an input: services take ``now`` as an argument; endpoints, jobs and CLI commands
read it here. Tests and replays freeze or move it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A till's clock may run a little fast; an event further in the future is a mistake.
MAX_CLOCK_SKEW = timedelta(hours=24)


class Clock:
    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return self._frozen if self._frozen is not None else datetime.now(UTC)

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[None]:
        """Freeze the clock at ``at`` (must be timezone-aware) for the duration of the block."""
        if at.tzinfo is None:
            raise ValueError("a frozen time must be timezone-aware")
        previous, self._frozen = self._frozen, at.astimezone(UTC)
        try:
            yield
        finally:
            self._frozen = previous


clock = Clock()


def as_utc(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC; a naive value is taken to be UTC already.

    SQLite returns naive datetimes, PostgreSQL aware ones: every value read from storage goes
    through here so comparisons never mix the two.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@lru_cache(maxsize=512)
def zone_named(name: object) -> tzinfo | None:
    """The time zone called ``name``, or None for no name or an unknown one."""
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
