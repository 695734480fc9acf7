"""What one member adds to the per-day and per-month sums of the KPIs (``kpi_tier_days``,
``kpi_buyer_months``), and what a change of members changes in them. Pure.

The consumer and the rebuild read what the members they touch add before their rows are
worked out again and after, and add the difference: the sums then stay equal to a sum over
all members without ever reading all members.
"""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from kopilka.analytics.kpis import ACTIVE_WINDOWS, MONTHS_PER_ERA

EPOCH = date(1970, 1, 1)
NO_PREVIOUS = -1
# A month index no calendar reaches (``year × 12 + month − 1`` stays under 120,000).
NO_NEXT = 999_999
DAY_COLUMNS = ("joined", "first_bought", *[f"active_{days}" for days in ACTIVE_WINDOWS])


def day_number(day: date) -> int:
    return (day - EPOCH).days


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


def parse_days(text: str) -> list[int]:
    """The day numbers of ``kpi_members.days`` (comma-separated, any order), sorted."""
    return sorted({int(part) for part in text.split(",") if part})


@dataclass(frozen=True)
class MemberState:
    """What the KPIs hold of one member: whether the profile is gone (merged or erased),
    the tier now, the local day they joined, the local days of their purchases not
    returned in full, the months they bought in (month → two or more purchases in it) and
    the local day of their first purchase ever."""

    gone: bool
    tier: str
    joined: date | None
    days: tuple[int, ...] = ()
    months: dict[int, bool] = field(default_factory=dict)
    first_day: date | None = None


def months_of(eras: Iterable[tuple[int, int, int]]) -> dict[int, bool]:
    """Month → bought twice or more, from a member's month masks ``(era, active, multi)``."""
    found: dict[int, bool] = {}
    for era, active, multi in eras:
        for bit in range(MONTHS_PER_ERA):
            if active >> bit & 1:
                found[era * MONTHS_PER_ERA + bit] = bool(multi >> bit & 1)
    return found


def spells(days: Iterable[int], window: int) -> list[tuple[int, int]]:
    """The spells ``(first, last)`` of days on which the member counts as active: a
    purchase on day ``d`` makes them active on days ``d .. d + window − 1``; overlapping or
    touching stretches are one spell."""
    found: list[tuple[int, int]] = []
    for day in sorted(days):
        last = day + window - 1
        if found and day <= found[-1][1] + 1:
            found[-1] = (found[-1][0], max(found[-1][1], last))
        else:
            found.append((day, last))
    return found


@dataclass
class Sums:
    """Additions to ``kpi_tier_days`` ((day, tier) → column → n) and ``kpi_buyer_months``
    ((month, tier, previous, next, multi) → members)."""

    days: dict[tuple[date, str], Counter[str]] = field(default_factory=dict)
    months: Counter[tuple[int, str, int, int, bool]] = field(default_factory=Counter)

    def add_day(self, day: date, tier: str, column: str, n: int) -> None:
        self.days.setdefault((day, tier), Counter())[column] += n

    def add(self, state: MemberState, sign: int) -> None:
        """Add what ``state`` contributes, times ``sign`` (+1 or −1)."""
        if not state.gone:
            if state.joined is not None:
                self.add_day(state.joined, state.tier, "joined", sign)
            # Active members are participants: a spell counts from the day they joined (a
            # receipt claimed later, or history brought over, can predate joining).
            since = day_number(state.joined) if state.joined is not None else None
            for window in ACTIVE_WINDOWS:
                column = f"active_{window}"
                for first, last in spells(state.days, window):
                    first = first if since is None else max(first, since)
                    if first > last:
                        continue
                    self.add_day(day_of(first), state.tier, column, sign)
                    self.add_day(day_of(last + 1), state.tier, column, -sign)
        # Buyers count whoever has month rows, as the masks always have (a merged profile's
        # purchases move to the one it was merged into, and its rows go with them).
        if state.first_day is not None:
            self.add_day(state.first_day, state.tier, "first_bought", sign)
        months = sorted(state.months)
        for i, month in enumerate(months):
            previous = months[i - 1] if i > 0 else NO_PREVIOUS
            following = months[i + 1] if i + 1 < len(months) else NO_NEXT
            self.months[(month, state.tier, previous, following, state.months[month])] += sign

    def nonzero(self) -> "Sums":
        """Without the keys whose additions cancel out."""
        days = {
            key: Counter({c: n for c, n in columns.items() if n})
            for key, columns in self.days.items()
            if any(columns.values())
        }
        months = Counter({key: n for key, n in self.months.items() if n})
        return Sums(days, months)


def difference(before: Iterable[MemberState], after: Iterable[MemberState]) -> Sums:
    """What the sums change by when the members ``before`` become those ``after`` (a
    member missing from one side adds nothing on it)."""
    sums = Sums()
    for state in before:
        sums.add(state, -1)
    for state in after:
        sums.add(state, 1)
    return sums.nonzero()
