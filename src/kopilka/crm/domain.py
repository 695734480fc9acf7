"""Pure rules of member facts: windows, the average check, the RFM groups.

RFM scores are quintiles 1–5 (5 = best) over the program's active members with purchases:
recency by the last purchase (most recent = 5), frequency by the number of purchases,
monetary by net lifetime spend. A score is ``ceil(5 × c / n)`` where ``c`` is the number of
scored members whose value is at most this member's and ``n`` the number scored, so equal
values always get equal scores. The named group is read from recency and frequency (the
usual RFM grid); ``docs/crm-facts.md`` shows the grid.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

TWELVE_MONTHS_DAYS = 365
TOP = 3  # favourite categories and stores kept per member


@dataclass(frozen=True)
class StoredWindow:
    """A window whose purchases and spend ``member_facts`` keeps as columns
    (``purchases_<suffix>``, ``spend_<suffix>``)."""

    days: int
    suffix: str


# Narrowest first: a purchase day leaves the narrowest window that holds it first.
STORED_WINDOWS = (StoredWindow(30, "30d"), StoredWindow(90, "90d"), StoredWindow(365, "12m"))


def stored_window(days: int) -> StoredWindow | None:
    """The stored window of exactly ``days`` days, if there is one."""
    return next((w for w in STORED_WINDOWS if w.days == days), None)


class RfmGroup(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALISTS = "potential_loyalists"
    NEW = "new"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANT_LOSE_THEM = "cant_lose_them"
    HIBERNATING = "hibernating"
    LOST = "lost"


# (group, recency scores, frequency scores), first match wins; every (r, f) of 1–5 matches
# exactly one row (a test checks the grid is complete).
RFM_GRID: tuple[tuple[RfmGroup, frozenset[int], frozenset[int]], ...] = (
    (RfmGroup.CHAMPIONS, frozenset({5}), frozenset({4, 5})),
    (RfmGroup.LOYAL, frozenset({3, 4}), frozenset({4, 5})),
    (RfmGroup.POTENTIAL_LOYALISTS, frozenset({4, 5}), frozenset({2, 3})),
    (RfmGroup.NEW, frozenset({5}), frozenset({1})),
    (RfmGroup.PROMISING, frozenset({4}), frozenset({1})),
    (RfmGroup.NEED_ATTENTION, frozenset({3}), frozenset({3})),
    (RfmGroup.ABOUT_TO_SLEEP, frozenset({3}), frozenset({1, 2})),
    (RfmGroup.CANT_LOSE_THEM, frozenset({1, 2}), frozenset({5})),
    (RfmGroup.AT_RISK, frozenset({1, 2}), frozenset({3, 4})),
    (RfmGroup.LOST, frozenset({1}), frozenset({1})),
    (RfmGroup.HIBERNATING, frozenset({1, 2}), frozenset({1, 2})),
)


def rfm_group(recency: int, frequency: int) -> RfmGroup:
    """The named group of a recency and frequency score (1–5 each)."""
    for group, rs, fs in RFM_GRID:
        if recency in rs and frequency in fs:
            return group
    raise ValueError(f"scores out of range: r={recency} f={frequency}")


def quintile(at_most: int, scored: int) -> int:
    """The score of a value that ``at_most`` of ``scored`` values do not exceed."""
    if not 1 <= at_most <= scored:
        raise ValueError("at_most must be between 1 and scored")
    return (5 * at_most + scored - 1) // scored


def rfm_ranks(scored: int) -> list[int]:
    """The ranks (1-based, in ascending order of a value) whose values are the cut-offs of
    scores 2–5: a value scores ``1 +`` the number of cut-offs it reaches. Same scores as
    :func:`quintile`: ``ceil(5c/n) > s`` exactly when ``c > floor(s·n/5)``, that is when the
    value is at least the ``floor(s·n/5) + 1``-th smallest."""
    return [s * scored // 5 + 1 for s in range(1, 5)]


def window_start(today: date, days: int) -> date:
    """The first day of a window of ``days`` days that ends today (today included)."""
    return today - timedelta(days=days - 1)


def average_check(spend: int, purchases: int) -> int:
    """Net spend per counted purchase, floored (minor units); 0 without purchases."""
    return spend // purchases if purchases > 0 else 0


def days_since(moment: datetime | None, now: datetime) -> int | None:
    return None if moment is None else max(0, (now - moment).days)


@dataclass(frozen=True)
class Ranked:
    """A favourite category or store and the net spend on it."""

    key: str
    spend: int


def top_of(pairs: list[list[object]]) -> list[Ranked]:
    """Stored ``[[key, spend], …]`` pairs, best first (ties by key)."""
    ranked = [Ranked(str(key), int(str(spend))) for key, spend in pairs]
    return sorted(ranked, key=lambda r: (-r.spend, r.key))[:TOP]
