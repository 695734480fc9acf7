"""When a message may go out: quiet hours in the member's own time zone (a message is then
deferred, never dropped) and, for marketing, caps per channel per day and per week (a message
over a cap is not sent: it would only pile up behind the next day's).

Pure: the message store asks ``decide`` with what it knows (the time, the member's zone, the
marketing messages already sent on the channel) and records the answer.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from enum import StrEnum

from kopilka.messaging.notifications import Purpose


@dataclass(frozen=True)
class QuietHours:
    """No message between ``start`` and ``end``, local time; the window may cross midnight
    (21:00–09:00). Equal ends mean no quiet hours."""

    start: time
    end: time

    def covers(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def next_allowed(self, at: datetime, zone: tzinfo) -> datetime:
        """``at`` itself outside the window; else the window's end, the member's clock."""
        local = at.astimezone(zone)
        if not self.covers(local.time().replace(tzinfo=None)):
            return at
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # 22:00 in a 21:00–09:00 window ends tomorrow
        end = datetime.combine(day, self.end, tzinfo=zone)
        # A clock set forward can skip the end itself (02:30 on a spring night): the next
        # instant that exists is what the member's clock shows after the gap.
        return _existing(end, zone)


def _existing(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` (a wall time in ``zone``) as an instant; a wall time the zone skipped (the
    hour a clock jumps forward) becomes the instant the clock jumped past it."""
    instant = moment.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == moment.replace(tzinfo=None):
        return instant.astimezone(zone)
    # Skipped. Read with the offset after the jump, the wall time lands before the gap; the
    # clock passes it at the jump, found minute by minute (gaps are an hour or two).
    wall = moment.replace(tzinfo=None)
    probe = moment.replace(fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while probe.astimezone(zone).replace(tzinfo=None) < wall:
        probe += timedelta(minutes=1)
    return probe.astimezone(zone)


@dataclass(frozen=True)
class Caps:
    """At most ``per_day`` marketing messages on one channel in a member's calendar day, and
    ``per_week`` in any seven days (None: no cap)."""

    per_day: int | None = None
    per_week: int | None = None

    def reached(self, sent: Iterable[datetime], at: datetime, zone: tzinfo) -> str | None:
        """Which cap another message at ``at`` would pass, given the times of those sent."""
        times = list(sent)
        if self.per_day is not None:
            today = at.astimezone(zone).date()
            if sum(1 for t in times if t.astimezone(zone).date() == today) >= self.per_day:
                return "per_day"
        if self.per_week is not None:
            since = at - timedelta(days=7)
            if sum(1 for t in times if since < t <= at) >= self.per_week:
                return "per_week"
        return None


class Verdict(StrEnum):
    SEND = "send"
    DEFER = "defer"
    SUPPRESS = "suppress"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    at: datetime  # when to send (for SEND, the time asked about)
    reason: str | None = None


def decide(
    purpose: Purpose,
    at: datetime,
    zone: tzinfo,
    quiet: QuietHours | None,
    caps: Caps | None,
    marketing_sent: Iterable[datetime] = (),
) -> Decision:
    """Send now, later (quiet hours: every message), or not at all (a marketing cap)."""
    when = quiet.next_allowed(at, zone) if quiet is not None else at
    if purpose is Purpose.MARKETING and caps is not None:
        cap = caps.reached(marketing_sent, when, zone)
        if cap is not None:
            return Decision(Verdict.SUPPRESS, when, f"cap {cap} reached")
    if when != at:
        return Decision(Verdict.DEFER, when, "quiet hours")
    return Decision(Verdict.SEND, at)
