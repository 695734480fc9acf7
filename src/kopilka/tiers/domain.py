"""Tier maths, pure: what counts in the window, which tier that qualifies for, upgrades,
reviews with their downgrade options, manual floors, returns that undo an upgrade, and the
member's progress toward the next tier.

A member has an *earned* tier (what qualification gave them, changed upward at once and
downward only at a review) and, optionally, a *manual* tier with an end: the tier they have
is the higher of the two while the manual one lasts. Dates of reviews are calendar dates
in the program's time zone; a review looks at the window that ends at the start of its
date, whenever the job gets to it, so running it late changes nothing.
"""

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple

from kopilka.programs.ladder import TierLadder, TierLevel


class PurchaseFact(NamedTuple):
    """A purchase as tiers count it: net of returns."""

    occurred_at: datetime
    amount: int  # money, minor units
    points: int  # points earned by it
    visits: int  # 1, or 0 for a purchase returned in full


@dataclass(frozen=True, slots=True)
class TierState:
    tier: str  # the tier the member has: the higher of earned and a live manual tier
    earned: str
    achieved_at: datetime | None = None  # when ``earned`` was reached
    achieved_from: str | None = None  # the earned tier before the last upgrade
    achieved_by: str | None = None  # the purchase that brought the last upgrade
    review_on: date | None = None
    grace_until: date | None = None
    manual_tier: str | None = None
    manual_until: datetime | None = None
    manual_reason: str | None = None


@dataclass(frozen=True, slots=True)
class TierChange:
    from_tier: str
    to_tier: str
    reason: str  # upgrade, review, grace, manual, manual_ended, return, requalify
    at: datetime
    source: str | None = None


def entry_state(ladder: TierLadder) -> TierState:
    entry = ladder.levels[0].id
    return TierState(tier=entry, earned=entry)


# --- ladder ---------------------------------------------------------------------------------


def rank(ladder: TierLadder, tier: str | None) -> int:
    """Position on the ladder; a tier the ladder no longer has ranks as the entry tier."""
    for index, level in enumerate(ladder.levels):
        if level.id == tier:
            return index
    return 0


def level(ladder: TierLadder, tier: str) -> TierLevel:
    return ladder.levels[rank(ladder, tier)]


def higher(ladder: TierLadder, a: str, b: str | None) -> str:
    return b if b is not None and rank(ladder, b) > rank(ladder, a) else a


def meets(rung: TierLevel, metrics: dict[str, int]) -> bool:
    checks = [metrics.get(m, 0) >= threshold for m, threshold in rung.qualify.items()]
    return all(checks) if rung.match == "all" else any(checks)


def qualifying(ladder: TierLadder, metrics: dict[str, int]) -> str:
    """The highest tier the metrics reach by qualification (never an invitation-only one)."""
    for rung in reversed(ladder.levels[1:]):
        if not rung.invitation_only and meets(rung, metrics):
            return rung.id
    return ladder.levels[0].id


def one_step_down(ladder: TierLadder, tier: str) -> str:
    for rung in reversed(ladder.levels[: rank(ladder, tier)]):
        if not rung.invitation_only:
            return rung.id
    return ladder.levels[0].id


# --- calendar -------------------------------------------------------------------------------


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later (or earlier), the last day of the month if that month
    is shorter: 31 March − 1 month = 28 or 29 February."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def local_date(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


@dataclass(frozen=True)
class TierWindow:
    """The purchases that count for a member's tier at ``end``: from ``start`` (inclusive;
    None for a lifetime window) to ``end`` (inclusive), points of ``points_currency``."""

    start: datetime | None
    end: datetime
    points_currency: str


def window_start(ladder: TierLadder, end: datetime, zone: tzinfo) -> datetime | None:
    """Start of the window that ends (exclusive) at ``end``; None for lifetime."""
    window = ladder.window
    if window.kind == "lifetime":
        return None
    if window.kind == "calendar_year":
        # The year of the last instant inside the window: a review at the start of
        # 1 January looks at the year that just ended.
        year = (end - timedelta(microseconds=1)).astimezone(zone).year
        return datetime(year, 1, 1, tzinfo=zone)
    return add_months(end.astimezone(zone), -window.months)


def next_review(ladder: TierLadder, after: date) -> date:
    """The first review date after ``after``: a year later (29 February → 28 February), or
    the next occurrence of the fixed date (29 February in a year without one → 28th)."""
    if ladder.review.kind == "anniversary":
        return _on(after.year + 1, after.month, after.day)
    assert ladder.review.date is not None
    month, day = (int(part) for part in ladder.review.date.split("-"))
    candidate = _on(after.year, month, day)
    return candidate if candidate > after else _on(after.year + 1, month, day)


def _on(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


# --- metrics --------------------------------------------------------------------------------


def full_months(start: datetime | None, end: datetime) -> int:
    if start is None or end < start:
        return 0
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if add_months(start, months) > end else months


def measure(
    ladder: TierLadder,
    purchases: Iterable[PurchaseFact],
    joined_at: datetime | None,
    end: datetime,
    zone: tzinfo,
    after: datetime | None = None,
) -> dict[str, int]:
    """The ladder's metrics over the window ending (exclusive) at ``end``; with ``after``,
    only what happened after that moment counts."""
    start = window_start(ladder, end, zone)
    if after is not None and (start is None or start <= after):
        start = after + timedelta(microseconds=1)
    points = spend = visits = 0
    for fact in purchases:
        if fact.occurred_at >= end or (start is not None and fact.occurred_at < start):
            continue
        points += fact.points
        spend += fact.amount
        visits += fact.visits
    return {
        "points": points,
        "spend": spend,
        "visits": visits,
        # Months are counted on the program's calendar, whatever offset the till sent.
        "tenure_months": full_months(
            joined_at.astimezone(zone) if joined_at else None, end.astimezone(zone)
        ),
    }


# --- transitions ----------------------------------------------------------------------------


def manual_floor(state: TierState, at: datetime) -> str | None:
    if state.manual_tier is None or (state.manual_until is not None and at >= state.manual_until):
        return None
    return state.manual_tier


def _settle(
    ladder: TierLadder,
    old: TierState,
    new: TierState,
    at: datetime,
    reason: str,
    source: str | None,
) -> tuple[TierState, TierChange | None]:
    """Work out the tier the member has from ``new``'s earned and manual tiers."""
    tier = higher(ladder, new.earned, manual_floor(new, at))
    new = replace(new, tier=tier)
    if tier == old.tier:
        return new, None
    return new, TierChange(old.tier, tier, reason, at, source)


def upgrade(
    ladder: TierLadder,
    state: TierState,
    metrics: dict[str, int],
    at: datetime,
    zone: tzinfo,
    source: str | None = None,
) -> tuple[TierState, TierChange | None]:
    """Upgrade at once if the metrics reach a tier above the earned one."""
    reached = qualifying(ladder, metrics)
    if rank(ladder, reached) <= rank(ladder, state.earned):
        return state, None
    new = replace(
        state,
        earned=reached,
        achieved_at=at,
        achieved_from=state.earned,
        achieved_by=source,
        review_on=next_review(ladder, local_date(at, zone)),
        grace_until=None,
    )
    return _settle(ladder, state, new, at, "upgrade", source)


def counts_after(ladder: TierLadder, state: TierState) -> datetime | None:
    """Where a review's window may start at the earliest: with anniversary reviews, what
    bought the tier does not also keep it, so only what came after reaching it counts."""
    return state.achieved_at if ladder.review.kind == "anniversary" else None


def review(
    ladder: TierLadder, state: TierState, metrics: dict[str, int], zone: tzinfo
) -> tuple[TierState, TierChange | None, str]:
    """One review on ``state.review_on`` with the metrics of the window ending then
    (starting no earlier than ``counts_after``).

    Returns the new state, the change of tier if any, and what happened: ``kept``,
    ``upgraded``, ``downgraded`` or ``grace``.
    """
    assert state.review_on is not None
    when = midnight(state.review_on, zone)
    reached = qualifying(ladder, metrics)
    entry = ladder.levels[0].id
    if rank(ladder, reached) >= rank(ladder, state.earned):
        outcome = "upgraded" if reached != state.earned else "kept"
        # Confirmed by the review: a later return of what bought it no longer undoes it.
        new = replace(
            state,
            earned=reached,
            achieved_by=None,
            grace_until=None,
            review_on=next_review(ladder, state.review_on),
        )
        if outcome == "upgraded":
            new = replace(new, achieved_at=when, achieved_from=state.earned, achieved_by=None)
        settled, change = _settle(ladder, state, new, when, "review", None)
        return settled, change, outcome
    mode = ladder.downgrade.mode
    if mode == "grace" and state.grace_until is None:
        grace = state.review_on + timedelta(days=ladder.downgrade.grace_days)
        return replace(state, grace_until=grace, review_on=grace), None, "grace"
    earned = one_step_down(ladder, state.earned) if mode == "one_step" else reached
    earned = higher(ladder, reached, earned)
    new = replace(
        state,
        earned=earned,
        achieved_at=when,
        achieved_from=None,
        achieved_by=None,
        grace_until=None,
        review_on=None if earned == entry else next_review(ladder, state.review_on),
    )
    settled, change = _settle(ladder, state, new, when, "review", None)
    return settled, change, "downgraded"


def undo_upgrade(
    ladder: TierLadder,
    state: TierState,
    returned_purchase: str,
    metrics: dict[str, int],
    at: datetime,
    zone: tzinfo,
) -> tuple[TierState, TierChange | None]:
    """After a return of the purchase that brought the last upgrade: if the member no
    longer qualifies, go back toward the tier they had before it (never below what they
    still qualify for)."""
    if not ladder.returns_undo_upgrade or state.achieved_by != returned_purchase:
        return state, None
    reached = qualifying(ladder, metrics)
    if rank(ladder, reached) >= rank(ladder, state.earned):
        return state, None
    earned = higher(ladder, reached, state.achieved_from)
    entry = ladder.levels[0].id
    new = replace(
        state,
        earned=earned,
        achieved_at=at,
        achieved_from=None,
        achieved_by=None,
        review_on=None if earned == entry else next_review(ladder, local_date(at, zone)),
    )
    return _settle(ladder, state, new, at, "return", returned_purchase)


def assign_manual(
    ladder: TierLadder,
    state: TierState,
    tier: str,
    reason: str,
    until: datetime | None,
    at: datetime,
) -> tuple[TierState, TierChange | None]:
    new = replace(state, manual_tier=tier, manual_until=until, manual_reason=reason)
    return _settle(ladder, state, new, at, "manual", reason)


def end_manual(
    ladder: TierLadder, state: TierState, at: datetime
) -> tuple[TierState, TierChange | None]:
    new = replace(state, manual_tier=None, manual_until=None, manual_reason=None)
    return _settle(ladder, state, new, at, "manual_ended", None)


def expire_manual(
    ladder: TierLadder, state: TierState, at: datetime
) -> tuple[TierState, TierChange | None]:
    """End a manual tier whose end has passed by ``at`` (at its end); anything that touches
    the member does this first, so the floor never outlives its end waiting for the job."""
    if state.manual_until is None or at < state.manual_until:
        return state, None
    return end_manual(ladder, state, state.manual_until)


def requalify(
    ladder: TierLadder, state: TierState, metrics: dict[str, int], at: datetime, zone: tzinfo
) -> tuple[TierState, TierChange | None]:
    """After a ladder change: the earned tier becomes what the metrics reach now, up or
    down, and a moved member's review restarts from today."""
    reached = qualifying(ladder, metrics)
    known = {rung.id for rung in ladder.levels}
    manual = state.manual_tier if state.manual_tier in known else None
    new = replace(
        state,
        manual_tier=manual,
        manual_until=state.manual_until if manual else None,
        manual_reason=state.manual_reason if manual else None,
    )
    if reached != state.earned:
        new = replace(
            new,
            earned=reached,
            achieved_at=at,
            achieved_from=None,
            achieved_by=None,
            grace_until=None,
            review_on=None
            if reached == ladder.levels[0].id
            else next_review(ladder, local_date(at, zone)),
        )
    return _settle(ladder, state, new, at, "requalify", None)


def manual_view(state: TierState) -> dict[str, Any]:
    """What the audit log keeps of a tier state: the tier, and the manual one with its end."""
    return {
        "tier": state.tier,
        "manual_tier": state.manual_tier,
        "manual_until": state.manual_until.isoformat() if state.manual_until else None,
    }
