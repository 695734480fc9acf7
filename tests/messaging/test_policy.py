"""Quiet hours in the member's zone (deferred, never dropped) and marketing caps."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from kopilka.messaging.notifications import Purpose
from kopilka.messaging.policy import Caps, QuietHours, Verdict, decide

MOSCOW = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = QuietHours(time(21), time(9))


def test_a_message_at_night_waits_for_the_members_morning() -> None:
    at = datetime(2026, 12, 5, 20, 30, tzinfo=UTC)  # 23:30 in Moscow
    decision = decide(Purpose.SERVICE, at, MOSCOW, NIGHT, None)
    assert decision.verdict is Verdict.DEFER
    assert decision.at == datetime(2026, 12, 6, 9, tzinfo=MOSCOW)
    early = datetime(2026, 12, 6, 2, tzinfo=UTC)  # 05:00 in Moscow: the same morning
    assert decide(Purpose.SERVICE, early, MOSCOW, NIGHT, None).at == datetime(
        2026, 12, 6, 9, tzinfo=MOSCOW
    )
    day = datetime(2026, 12, 6, 7, tzinfo=UTC)  # 10:00 in Moscow
    assert decide(Purpose.SERVICE, day, MOSCOW, NIGHT, None).verdict is Verdict.SEND


def test_a_window_within_one_day_and_none_at_all() -> None:
    lunch = QuietHours(time(13), time(14))
    at = datetime(2026, 12, 5, 13, 30, tzinfo=BERLIN)
    assert lunch.next_allowed(at, BERLIN) == datetime(2026, 12, 5, 14, tzinfo=BERLIN)
    assert QuietHours(time(9), time(9)).next_allowed(at, BERLIN) == at


def test_the_end_of_the_night_on_the_day_clocks_go_forward() -> None:
    # Berlin skips 02:00–03:00 on 29 March 2026: a window ending at 02:30 ends when the
    # clock jumps past 02:30, at 03:00.
    window = QuietHours(time(1), time(2, 30))
    at = datetime(2026, 3, 29, 1, 15, tzinfo=BERLIN)
    ends = window.next_allowed(at, BERLIN)
    assert ends.astimezone(UTC) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert ends.astimezone(BERLIN).time() == time(3, 0)


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)),
    st.sampled_from([MOSCOW, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")]),
    st.integers(0, 23),
    st.integers(0, 23),
)
def test_quiet_hours_defer_to_the_first_allowed_moment(
    naive: datetime, zone: ZoneInfo, start: int, end: int
) -> None:
    window = QuietHours(time(start), time(end))
    at = naive.replace(tzinfo=UTC)
    sent = window.next_allowed(at, zone)
    assert at <= sent <= at + timedelta(days=1, hours=1)
    assert not window.covers(sent.astimezone(zone).time())
    if sent > at:  # nothing earlier was allowed: a minute before was still quiet
        assert window.covers((sent - timedelta(minutes=1)).astimezone(zone).time())


def test_marketing_over_a_cap_is_not_sent_and_service_is() -> None:
    caps = Caps(per_day=1, per_week=3)
    at = datetime(2026, 12, 5, 12, tzinfo=MOSCOW)
    today = [datetime(2026, 12, 5, 10, tzinfo=MOSCOW)]
    capped = decide(Purpose.MARKETING, at, MOSCOW, None, caps, today)
    assert capped.verdict is Verdict.SUPPRESS and capped.reason == "cap per_day reached"
    assert decide(Purpose.SERVICE, at, MOSCOW, None, caps, today).verdict is Verdict.SEND
    # The member's day, not UTC's: 02:00 in Moscow on the 6th is still the 5th in UTC.
    next_day = datetime(2026, 12, 6, 2, tzinfo=MOSCOW)
    assert decide(Purpose.MARKETING, next_day, MOSCOW, None, caps, today).verdict is Verdict.SEND
    week = [at - timedelta(days=d) for d in (1, 3, 6)]
    weekly = decide(Purpose.MARKETING, at, MOSCOW, None, caps, week)
    assert weekly.verdict is Verdict.SUPPRESS and weekly.reason == "cap per_week reached"
    older = [at - timedelta(days=d) for d in (1, 3, 8)]
    assert decide(Purpose.MARKETING, at, MOSCOW, None, caps, older).verdict is Verdict.SEND


def test_a_deferred_marketing_message_is_capped_on_the_day_it_would_go() -> None:
    caps = Caps(per_day=1)
    at = datetime(2026, 12, 5, 23, tzinfo=MOSCOW)  # quiet: goes on the 6th at 09:00
    sent_on_the_6th = [datetime(2026, 12, 6, 9, tzinfo=MOSCOW) - timedelta(hours=8)]  # 01:00
    decision = decide(Purpose.MARKETING, at, MOSCOW, NIGHT, caps, sent_on_the_6th)
    assert decision.verdict is Verdict.SUPPRESS
    assert decide(Purpose.MARKETING, at, MOSCOW, NIGHT, caps, []).verdict is Verdict.DEFER
