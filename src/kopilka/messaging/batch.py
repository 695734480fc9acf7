"""What composing a batch of messages reads once for all its members, and what it reads of
each member only when a text in use asks for it (``docs/messaging.md``, "What a template
reads of the member"): the recommended items (``docs/recommendations.md``), the points that
expire soonest, and the rewards the member's points pay for now."""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import zone_named
from kopilka.ledger.service import ledger_service
from kopilka.messaging.composition import Outgoing, Setup, template_sources
from kopilka.messaging.domain import LANGUAGES, TemplateProblem, names_used
from kopilka.messaging.notifications import KINDS
from kopilka.messaging.records import ConsentRow, Recipient, SubscriptionRow
from kopilka.programs.service import ProgramContext
from kopilka.recommendations.service import recommendation_service
from kopilka.rewards.service import reward_service
from kopilka.rules.domain import UTC_ZONE

# The template variables read per member, each only when a text of the batch's kinds (or an
# item, ``FILLED``) needs it: reading them costs queries per member.
RECOMMENDATIONS = "recommendations"
EXPIRING = "expiring"
AFFORDABLE = "affordable"
MEMBER_VARIABLES = frozenset({RECOMMENDATIONS, EXPIRING, AFFORDABLE})
RECOMMENDED_IN_MESSAGES = 5
AFFORDABLE_IN_MESSAGES = 3  # a reminder names a few things, and an SMS has little room


@dataclass(frozen=True)
class Filled:
    """Where a kind's own variables come from when its caller gives none of them (a
    journey's send step, fixed for every member, cannot know a member's points), and why a
    member without that variable gets nothing (``{days}``: the program's ``expiring_days``)."""

    variable: str
    nothing: str


# ``points_expiring``'s own variables (amount, expires_on, days) are ``expiring``'s: a
# reminder sent without them tells of the member's soonest-expiring points.
FILLED: dict[str, Filled] = {
    "points_expiring": Filled(EXPIRING, "no points expire within {days} days"),
}


@dataclass
class Batch:
    """What composing a batch reads once: members, consents, subscriptions, templates."""

    program: ProgramContext
    setup: Setup
    recipients: dict[UUID, Recipient]
    consents: dict[UUID, list[ConsentRow]]
    subscriptions: dict[UUID, list[SubscriptionRow]]
    saved: dict[tuple[str, str], dict[str, str]]
    balances: dict[UUID, int]
    marketing_sent: dict[tuple[UUID, str], list[datetime]]
    suppressed: dict[tuple[str, str], str]
    # Read per member only when asked for (``asked_for``, ``needed_by``); a member without
    # any is absent.
    recommendations: dict[UUID, list[dict[str, Any]]] = field(default_factory=dict)
    expiring: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    affordable: dict[UUID, list[dict[str, Any]]] = field(default_factory=dict)


# --- which member variables a batch reads ------------------------------------------------------


def asked_for(
    saved: Mapping[tuple[str, str], Mapping[str, str]], kinds: Iterable[str]
) -> frozenset[str]:
    """The member variables that the texts in use of ``kinds`` read: the shipped texts with
    the program's saved parts over them, in every language (the batch's members may write in
    any)."""
    asked: set[str] = set()
    for kind in set(kinds):
        spec = KINDS[kind]
        for language in LANGUAGES:
            sources = template_sources(spec, language, saved.get((kind, language)))
            for source in sources.values():
                asked |= _member_names(source)
    return frozenset(asked)


@lru_cache(maxsize=2048)
def _member_names(source: str) -> frozenset[str]:
    """The member variables ``source`` reads (parsed once per process: a batch asks of the
    same few texts every time)."""
    try:
        used = names_used(source)
    except TemplateProblem:
        # A text that does not parse fails when rendered anyway; reading is the safe side.
        return frozenset(name for name in MEMBER_VARIABLES if name in source)
    return MEMBER_VARIABLES & used.keys()


def needed_by(items: Iterable[Outgoing]) -> frozenset[str]:
    """The member variables ``items`` need whatever their texts say: that of each kind
    filled from one (``FILLED``) whose item gives none of its own variables."""
    return frozenset(
        FILLED[item.kind].variable
        for item in items
        if item.kind in FILLED and not KINDS[item.kind].variables & item.variables.keys()
    )


def own_variables(batch: Batch, item: Outgoing) -> Mapping[str, Any] | None:
    """The kind's own variables of ``item``: those it gives, or, for a kind filled from a
    member variable (``FILLED``) when it gives none, the member's — None if the member has
    nothing of it (nothing to tell)."""
    filled = FILLED.get(item.kind)
    if filled is None or KINDS[item.kind].variables & item.variables.keys():
        return item.variables
    found: Mapping[UUID, Any] = getattr(batch, filled.variable)
    value = found.get(item.member_id)
    return {**value, **item.variables} if value else None


def nothing_to_tell(batch: Batch, kind: str) -> str:
    """Why a message of a filled kind was not made for a member without its variable."""
    return FILLED[kind].nothing.format(days=batch.setup.settings.expiring_days)


# --- reading them ------------------------------------------------------------------------------


async def recommended_for(
    conn: AsyncConnection,
    program: ProgramContext,
    asked: Collection[str],
    ids: Sequence[UUID],
    now: datetime,
) -> dict[UUID, list[dict[str, Any]]]:
    """Each member's recommended items as templates read them, when ``recommendations`` is
    asked for (otherwise nothing is read)."""
    if RECOMMENDATIONS not in asked:
        return {}
    found = await recommendation_service.for_members(
        conn, program, ids, now, RECOMMENDED_IN_MESSAGES
    )
    return {
        member: [
            {
                "sku": r.sku,
                "name": r.name or r.sku,
                "category": r.category,
                "reason": str(r.reason),
                "score": r.score,
            }
            for r in items
        ]
        for member, items in found.items()
    }


async def expiring_for(
    conn: AsyncConnection,
    program: ProgramContext,
    setup: Setup,
    asked: Collection[str],
    ids: Sequence[UUID],
    now: datetime,
) -> dict[UUID, dict[str, Any]]:
    """Each member's available points that expire soonest, from ``now`` to the end of the
    program's local day ``expiring_days`` ahead (the window of the daily reminder,
    ``messaging/tasks.py``): ``{"amount", "expires_on", "days"}``, the points of the first
    local day any expire on. Read only when ``expiring`` is asked for; a member with none in
    the window is absent."""
    if EXPIRING not in asked:
        return {}
    zone = zone_named(program.settings.timezone) or UTC_ZONE
    today = now.astimezone(zone).date()
    last_day = today + timedelta(days=setup.settings.expiring_days)
    end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone)
    found = await ledger_service.expiring_of(conn, program, ids, now, end)
    return {member: soonest(lots, zone, today) for member, lots in found.items() if lots}


def soonest(lots: Sequence[tuple[datetime, int]], zone: tzinfo, today: date) -> dict[str, Any]:
    """The points of ``lots`` (when, points) expiring on the first local day any of them
    expire on, that day, and the days from ``today`` to it."""
    day = min(when.astimezone(zone).date() for when, _ in lots)
    amount = sum(points for when, points in lots if when.astimezone(zone).date() == day)
    return {"amount": amount, "expires_on": day, "days": (day - today).days}


async def affordable_for(
    conn: AsyncConnection,
    program: ProgramContext,
    asked: Collection[str],
    ids: Sequence[UUID],
    now: datetime,
) -> dict[UUID, list[dict[str, Any]]]:
    """The rewards each member can take now with their available points, as the shop judges
    them (``reward_service.affordable``: tier, exclusive rewards, early access, personal
    prices, stock, limits), the dearest first, at most ``AFFORDABLE_IN_MESSAGES``:
    ``{"key", "name", "points"}``. Read only when ``affordable`` is asked for; a member who
    can take none is absent."""
    if AFFORDABLE not in asked:
        return {}
    found = await reward_service.affordable(conn, program, ids, now, AFFORDABLE_IN_MESSAGES)
    return {
        member: [{"key": r.key, "name": r.name, "points": r.points} for r in rewards]
        for member, rewards in found.items()
    }
