"""Program events and their invitations, pure: who is invited (by tier), whether an event's
definition holds together, and whether a member may accept or decline now.

An event invites the tiers it lists and the tiers whose ladder benefits list its key in
``events`` (the ladder is versioned with the program, so publishing a ladder that lists the
key invites that tier with no change to the event). A member is invited by the tier they
have now. No I/O: the service reads the event (under its lock when answering), the count of
places taken and the member's tier, and asks these functions.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from kopilka.errors import Conflict, Forbidden, InvalidInput
from kopilka.programs.ladder import TierLadder

EventStatus = Literal["scheduled", "cancelled"]
Answer = Literal["accepted", "declined"]


class Refusal(StrEnum):
    """Why a member's answer is not taken."""

    NOT_INVITED = "not_invited"
    CANCELLED = "cancelled"
    STARTED = "started"
    FULL = "full"


class NotInvited(Forbidden):
    """The member's tier is not invited to the event (``reason: not_invited``)."""

    type_slug = "not-invited"
    title = "Not invited"


class EventUnavailable(Conflict):
    """The event takes no such answer now: cancelled, started, or (to accept) full;
    ``reason`` says which."""

    type_slug = "event-unavailable"
    title = "Event not available"


@dataclass(frozen=True)
class EventTerms:
    """What decides who may answer an event, and how."""

    key: str
    starts_at: datetime
    ends_at: datetime | None
    capacity: int | None
    tiers: Sequence[str]
    status: str


def invited_tiers(ladder: TierLadder | None, key: str, tiers: Sequence[str]) -> list[str]:
    """The tiers invited to the event ``key``, in ladder order: those it lists and those
    whose benefits list ``key`` in ``events``. Without a ladder, nobody has a tier."""
    if ladder is None:
        return []
    return [
        level.id for level in ladder.levels if level.id in tiers or key in level.benefits.events
    ]


def is_invited(terms: EventTerms, ladder: TierLadder | None, tier: str | None) -> bool:
    """Whether a member on ``tier`` now is invited: the event is scheduled and invites the
    tier."""
    return (
        terms.status == "scheduled"
        and tier is not None
        and tier in invited_tiers(ladder, terms.key, terms.tiers)
    )


def places_left(capacity: int | None, taken: int) -> int | None:
    """Places still free (None: no limit), never below zero."""
    return None if capacity is None else max(capacity - taken, 0)


def check_definition(
    *,
    starts_at: datetime,
    ends_at: datetime | None,
    tiers: Sequence[str],
    ladder: TierLadder | None,
) -> None:
    """An event's definition as a whole: it ends after it starts, and it lists only tiers of
    the program's ladder, once each. :class:`InvalidInput` naming the field otherwise."""
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at", field="ends_at")
    known = [level.id for level in ladder.levels] if ladder is not None else []
    for index, tier in enumerate(tiers):
        if tier not in known:
            listed = ", ".join(known) if known else "none: the program has no tier ladder"
            raise InvalidInput(
                f"unknown tier {tier!r} (the program's tiers: {listed})", field=f"tiers.{index}"
            )
        if tier in tiers[:index]:
            raise InvalidInput(f"tier {tier!r} is listed twice", field=f"tiers.{index}")


def is_over(terms: EventTerms, now: datetime) -> bool:
    """An event is over once it has ended (or started, when it has no end)."""
    return (terms.ends_at or terms.starts_at) <= now


def acceptance_refusal(
    terms: EventTerms, *, invited: bool, taken: int, answer: Answer | None, now: datetime
) -> Refusal | None:
    """Why the member may not accept now (None: they may). A member who has accepted may
    accept again (nothing changes); otherwise the event must be scheduled, not started,
    invite their tier and have a free place (``taken``: places taken by others)."""
    if terms.status == "cancelled":
        return Refusal.CANCELLED
    if answer == "accepted":
        return None
    if not invited:
        return Refusal.NOT_INVITED
    if now >= terms.starts_at:
        return Refusal.STARTED
    if terms.capacity is not None and taken >= terms.capacity:
        return Refusal.FULL
    return None


def declining_refusal(
    terms: EventTerms, *, invited: bool, answer: Answer | None, now: datetime
) -> Refusal | None:
    """Why the member may not decline now (None: they may). Declining again changes
    nothing; a member who accepted may decline (freeing their place) even if their tier is
    no longer invited; answers change only before the event starts."""
    if answer == "declined":
        return None
    if terms.status == "cancelled":
        return Refusal.CANCELLED
    if answer is None and not invited:
        return Refusal.NOT_INVITED
    if now >= terms.starts_at:
        return Refusal.STARTED
    return None


REFUSAL_TEXTS = {
    Refusal.NOT_INVITED: "the member's tier is not invited to event {key!r}",
    Refusal.CANCELLED: "event {key!r} was cancelled",
    Refusal.STARTED: "event {key!r} has started: answers are no longer taken",
    Refusal.FULL: "event {key!r} is full",
}


def refused(refusal: Refusal, key: str) -> NotInvited | EventUnavailable:
    """The error a refusal answers with: 403 for a member not invited, 409 otherwise."""
    detail = REFUSAL_TEXTS[refusal].format(key=key)
    if refusal is Refusal.NOT_INVITED:
        return NotInvited(detail, field="key", reason=refusal.value)
    return EventUnavailable(detail, field="key", reason=refusal.value)
