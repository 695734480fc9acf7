"""Opening hours: a weekly schedule, days that override it, and whether a store is open at
a moment of its own wall clock. Pure.

A schedule gives each weekday zero or more intervals ``HH:MM-HH:MM`` (an empty day is a
closed day). An interval whose end is not after its start runs past midnight into the next
day (``22:00-02:00``); ``00:00-24:00`` is the whole day. Special dates (holidays, a short
day) replace the weekday's intervals for that date; an interval of the day before that
runs past midnight still runs into it. Times are the store's wall clock, so a change to or
from summer time moves nothing.

The same schedules have a text form for files: rules separated by ``;``, each a list of
days (``Mo``, ``Tu``, ``We``, ``Th``, ``Fr``, ``Sa``, ``Su`` or ranges ``Mo-Fr``, commas
between them) and a list of intervals or ``off``, a later rule overriding an earlier one
for the same day (``Mo-Fr 09:00-21:00; Sa 10:00-18:00; Su off``), or ``24/7``. Special
dates: ``2026-12-31 10:00-16:00; 2027-01-01 off``.
"""

import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MAX_INTERVALS_PER_DAY = 6
MAX_SPECIAL_DATES = 400

_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAY_ABBREVIATIONS = {
    "mo": 0,
    "tu": 1,
    "we": 2,
    "th": 3,
    "fr": 4,
    "sa": 5,
    "su": 6,
}
_OFF = {"off", "closed"}

# (start, end) in minutes from the day's midnight: 0 <= start < 1440, start < end <= start
# + 1440 (an end past 1440 runs into the next day).
Interval = tuple[int, int]
Week = dict[int, list[Interval]]  # weekday (Monday 0) → intervals; a missing day is closed
Special = dict[date, list[Interval]]


@lru_cache(maxsize=4096)
def parse_interval(text: str) -> Interval:
    """``"09:00-21:00"`` → (540, 1260); ``"22:00-02:00"`` → (1320, 1560). ValueError with
    a sentence saying what is wrong."""
    match = _INTERVAL.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an interval HH:MM-HH:MM")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise ValueError(f"{text!r} is not an interval of times of day (00:00 to 24:00)")
    start, end = sh * 60 + sm, eh * 60 + em
    if end == start:
        raise ValueError(f"{text!r} starts where it ends: write 00:00-24:00 for the whole day")
    if end < start:
        end += MINUTES_PER_DAY  # past midnight
    return start, end


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_interval(interval: Interval) -> str:
    start, end = interval
    if end > MINUTES_PER_DAY:
        end -= MINUTES_PER_DAY
    return f"{_clock(start)}-{_clock(end)}"


def day_intervals(texts: Sequence[str]) -> list[Interval]:
    """A day's intervals, in order of their start; ValueError if they are too many or
    overlap."""
    return list(_day_intervals(tuple(texts)))


# A chain's ten thousand stores share a handful of schedules: each is worked out once.
@lru_cache(maxsize=4096)
def _day_intervals(texts: tuple[str, ...]) -> tuple[Interval, ...]:
    if len(texts) > MAX_INTERVALS_PER_DAY:
        raise ValueError(f"at most {MAX_INTERVALS_PER_DAY} intervals a day")
    intervals = sorted(parse_interval(t) for t in texts)
    for before, after in itertools.pairwise(intervals):
        if after[0] < before[1]:
            raise ValueError(f"{format_interval(before)} and {format_interval(after)} overlap")
    return tuple(intervals)


def week_of(document: Mapping[str, Sequence[str]]) -> Week:
    """A weekly schedule from its stored form ``{"mon": ["09:00-21:00"], …}`` (already
    validated)."""
    return {DAY_KEYS.index(k): day_intervals(v) for k, v in document.items() if k in DAY_KEYS}


def special_of(document: Mapping[str, Sequence[str]]) -> Special:
    return {date.fromisoformat(k): day_intervals(v) for k, v in document.items()}


def intervals_on(week: Week, special: Special, day: date) -> list[Interval]:
    found = special.get(day)
    return found if found is not None else week.get(day.weekday(), [])


def is_open(week: Week, special: Special, local: datetime) -> bool:
    """Whether the schedule is open at ``local``, a moment of the store's wall clock."""
    minute = local.hour * 60 + local.minute + local.second / 60
    today = local.date()
    if any(start <= minute < end for start, end in intervals_on(week, special, today)):
        return True
    yesterday = today - timedelta(days=1)
    return any(minute < end - MINUTES_PER_DAY for _, end in intervals_on(week, special, yesterday))


# --- the text form ---------------------------------------------------------------------------


def _day_number(token: str) -> int:
    key = token.strip().lower()[:2]
    if key not in _DAY_ABBREVIATIONS or len(token.strip()) < 2:
        raise ValueError(f"{token.strip()!r} is not a day (Mo, Tu, We, Th, Fr, Sa, Su)")
    return _DAY_ABBREVIATIONS[key]


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        if "-" in part:
            first, last = (_day_number(p) for p in part.split("-", 1))
            # Fr-Mo wraps over the weekend.
            days.extend((first + i) % 7 for i in range((last - first) % 7 + 1))
        else:
            days.append(_day_number(part))
    return days


def _times(text: str) -> list[str]:
    if text.strip().lower() in _OFF:
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_week_text(text: str) -> dict[str, list[str]]:
    """The text form of a week → ``{"mon": ["09:00-21:00"], …, "sun": []}`` (every day
    listed; a day no rule names is closed). ValueError naming the rule at fault."""
    if text.strip() == "24/7":
        return {k: ["00:00-24:00"] for k in DAY_KEYS}
    week: dict[str, list[str]] = {k: [] for k in DAY_KEYS}
    for rule in (r.strip() for r in text.split(";")):
        if not rule:
            continue
        days_text, _, times_text = rule.partition(" ")
        if not times_text.strip():
            raise ValueError(f"{rule!r}: give days and times, e.g. 'Mo-Fr 09:00-21:00'")
        # Checked here, to name the rule, and written as the API writes them (9:00 → 09:00).
        times = [format_interval(i) for i in day_intervals(_times(times_text))]
        for day in _days(days_text):
            week[DAY_KEYS[day]] = times
    return week


def parse_special_text(text: str) -> dict[str, list[str]]:
    """``2026-12-31 10:00-16:00; 2027-01-01 off`` → ``{"2026-12-31": ["10:00-16:00"],
    "2027-01-01": []}``."""
    special: dict[str, list[str]] = {}
    for rule in (r.strip() for r in text.split(";")):
        if not rule:
            continue
        day_text, _, times_text = rule.partition(" ")
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ValueError(f"{rule!r}: start with a date YYYY-MM-DD") from None
        if not times_text.strip():
            raise ValueError(f"{rule!r}: give the day's times or 'off'")
        special[day.isoformat()] = [format_interval(i) for i in day_intervals(_times(times_text))]
    return special


_DAY_NAMES = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")


def week_text(document: Mapping[str, Sequence[str]]) -> str:
    """A stored week in the text form, consecutive days with the same intervals as one
    rule: ``{"mon": ["09:00-21:00"], …, "sun": []}`` → ``Mo-Sa 09:00-21:00; Su off``
    (``24/7`` when every day is the whole day). :func:`parse_week_text` reads it back."""
    days = [tuple(document.get(key) or ()) for key in DAY_KEYS]
    if all(day == ("00:00-24:00",) for day in days):
        return "24/7"
    rules: list[str] = []
    start = 0
    for index in range(1, len(days) + 1):
        if index < len(days) and days[index] == days[start]:
            continue
        span = _DAY_NAMES[start] + (f"-{_DAY_NAMES[index - 1]}" if index - 1 > start else "")
        rules.append(f"{span} {','.join(days[start]) or 'off'}")
        start = index
    return "; ".join(rules)


def special_text(document: Mapping[str, Sequence[str]]) -> str:
    """Special dates in the text form (``2026-12-31 10:00-16:00; 2027-01-01 off``), in date
    order; :func:`parse_special_text` reads it back."""
    return "; ".join(f"{day} {','.join(document[day]) or 'off'}" for day in sorted(document))
