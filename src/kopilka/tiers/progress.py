"""A member's progress, pure: what counts toward the next tier, how much more is needed and
by when, and what the next review would do with what counts today."""

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from kopilka.programs.ladder import TierLadder, TierLevel
from kopilka.tiers.domain import (
    TierState,
    higher,
    level,
    local_date,
    manual_floor,
    rank,
    review,
    window_start,
)


def money(amount: int, currency: str) -> str:
    """Minor units as a readable amount: 320000 RUB → "3,200.00 RUB"."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


def _phrase(metric: str, missing: int, currency: str) -> str:
    if metric == "spend":
        return f"spend {money(missing, currency)} more"
    if metric == "points":
        return f"earn {missing:,} more points"
    if metric == "visits":
        return f"make {missing:,} more purchase{'s' if missing != 1 else ''}"
    return f"stay {missing:,} more month{'s' if missing != 1 else ''}"


def next_rung(ladder: TierLadder, tier: str) -> TierLevel | None:
    for rung in ladder.levels[rank(ladder, tier) + 1 :]:
        if not rung.invitation_only:
            return rung
    return None


def deadline(ladder: TierLadder, state: TierState, now: datetime, zone: tzinfo) -> date | None:
    """The date by which what counts now must reach the next tier: the end of the calendar
    year, or for a rolling window the next review (None when there is none)."""
    if ladder.window.kind == "calendar_year":
        return date(local_date(now, zone).year, 12, 31)
    if ladder.window.kind == "rolling":
        return state.review_on
    return None


def next_tier(
    ladder: TierLadder,
    state: TierState,
    metrics: dict[str, int],
    now: datetime,
    zone: tzinfo,
    currency: str,
) -> dict[str, Any] | None:
    rung = next_rung(ladder, state.tier)
    if rung is None:
        return None
    missing = {m: max(0, t - metrics.get(m, 0)) for m, t in rung.qualify.items()}
    requirements = [
        {"metric": m, "threshold": t, "current": metrics.get(m, 0), "missing": missing[m]}
        for m, t in rung.qualify.items()
    ]
    phrases = [_phrase(m, n, currency) for m, n in missing.items() if n]
    joined = (" or " if rung.match == "any" else " and ").join(phrases)
    by = deadline(ladder, state, now, zone)
    message = f"{joined[:1].upper()}{joined[1:]} to reach {rung.name}" + (
        f" by {by.isoformat()}" if by else ""
    )
    return {
        "tier": rung,
        "match": rung.match,
        "requirements": requirements,
        "by": by,
        "message": message,
    }


def review_outlook(
    ladder: TierLadder, state: TierState, metrics: dict[str, int], zone: tzinfo
) -> dict[str, Any] | None:
    """What the next review would do if what counts today still counted then."""
    if state.review_on is None:
        return None
    # After a grace period starts, the member keeps the tier until it ends.
    after, _, _ = review(ladder, state, metrics, zone)
    on = state.review_on
    floor = manual_floor(state, datetime.combine(on, datetime.min.time(), tzinfo=zone))
    would_be = higher(ladder, after.earned, floor)
    keeps = rank(ladder, would_be) >= rank(ladder, state.tier)
    return {
        "date": on,
        "would_be": would_be,
        "keeps": keeps,
        "loses": None if keeps else level(ladder, state.tier).benefits,
    }


def window_opening(ladder: TierLadder, now: datetime, zone: tzinfo) -> datetime | None:
    return window_start(ladder, now + timedelta(microseconds=1), zone)
