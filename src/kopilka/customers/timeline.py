"""The customer 360's timeline: everything that happened to a member, newest first, from
every feature that keeps part of it. Read only; never commits.

Each kind of item comes from the feature that owns it, through that feature's history; a
page asks each kind for its first ``limit`` items after the cursor and merges them
(``domain.merged``), so a page costs one indexed query per kind whatever the history's
length.
"""

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.customers.domain import (
    NUMBER_RANGE,
    UUID_RANGE,
    Cursor,
    ItemType,
    TimelineItem,
    bound,
    merged,
    money,
    points,
)
from kopilka.ledger.history import movement_history
from kopilka.members.service import member_service
from kopilka.messaging.history import messaging_history
from kopilka.programs.service import ProgramContext
from kopilka.purchases.history import purchase_history
from kopilka.support.service import support_service
from kopilka.tiers.history import tier_history


@dataclass(frozen=True)
class Query:
    """One kind's part of a page: the member's items after ``before`` (the kind's keyset
    bound), at most ``limit``; ``principal`` for what depends on who reads."""

    conn: AsyncConnection
    program: ProgramContext
    member_id: UUID
    before: Any
    limit: int
    principal: Principal | None


Reader = Callable[[Query], Awaitable[list[TimelineItem]]]


@dataclass(frozen=True)
class Source:
    read: Reader
    parse: Callable[[str], UUID | int]
    keys: tuple[UUID | int, UUID | int]


async def _purchases(q: Query) -> list[TimelineItem]:
    found = await purchase_history.purchases(
        q.conn, q.program, q.member_id, before=q.before, limit=q.limit, lines=False
    )
    return [
        TimelineItem(
            at=p.occurred_at,
            type=ItemType.PURCHASE,
            id=str(p.id),
            summary=f"Purchase of {money(p.total, p.currency)}"
            + (f" at {p.store}" if p.store else "")
            + (f", earned {_earned(p.earned)}" if any(p.earned.values()) else ""),
            data={
                "external_id": p.external_id,
                "store": p.store,
                "channel": p.channel,
                "currency": p.currency,
                "total": p.total,
                "returned_amount": p.returned_amount,
                "earned": p.earned,
            },
            key=p.id,
        )
        for p in found
    ]


def _earned(earned: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {currency}" for currency, n in sorted(earned.items()) if n)


async def _returns(q: Query) -> list[TimelineItem]:
    currency = q.program.settings.money_currency
    found = await purchase_history.returns(
        q.conn, q.program, q.member_id, before=q.before, limit=q.limit
    )
    return [
        TimelineItem(
            at=r.occurred_at,
            type=ItemType.RETURN,
            id=str(r.id),
            summary=f"Return of {money(r.amount, currency)}",
            data={
                "purchase_id": str(r.purchase_id),
                "external_id": r.external_id,
                "amount": r.amount,
                "points_taken_back": r.reversed,
            },
            key=r.id,
        )
        for r in found
    ]


async def _points(q: Query) -> list[TimelineItem]:
    found = await movement_history.movements(
        q.conn, q.program, q.member_id, before=q.before, limit=q.limit
    )
    return [
        TimelineItem(
            at=m.occurred_at,
            type=ItemType.POINTS,
            id=str(m.id),
            summary=f"{points(m.changes)} ({m.kind}" + (f": {m.reason})" if m.reason else ")"),
            data={
                "kind": m.kind,
                "reason": m.reason,
                "reference_type": m.reference_type,
                "reference_id": m.reference_id,
                "changes": m.changes,
            },
            key=m.id,
        )
        for m in found
    ]


async def _tiers(q: Query) -> list[TimelineItem]:
    found = await tier_history.changes(
        q.conn, q.program, q.member_id, before=q.before, limit=q.limit
    )
    return [
        TimelineItem(
            at=c.at,
            type=ItemType.TIER,
            id=str(c.id),
            summary=f"{c.from_tier or 'no tier'} → {c.to_tier} ({c.reason})",
            data={"from": c.from_tier, "to": c.to_tier, "reason": c.reason, "source": c.source},
            key=c.id,
        )
        for c in found
    ]


async def _messages(q: Query) -> list[TimelineItem]:
    found = await messaging_history.member_messages(
        q.conn, q.program, q.member_id, before=q.before, limit=q.limit
    )
    return [
        TimelineItem(
            at=m.created_at,
            type=ItemType.MESSAGE,
            id=str(m.id),
            summary=f"{m.channel} message {m.kind}: {m.status}",
            data={
                "kind": m.kind,
                "channel": m.channel,
                "purpose": m.purpose,
                "status": m.status,
                "subject": m.subject,
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                "read_at": m.read_at.isoformat() if m.read_at else None,
            },
            key=m.id,
        )
        for m in found
    ]


async def _consents(q: Query) -> list[TimelineItem]:
    found = await messaging_history.consent_changes(
        q.conn, q.program, q.member_id, before=q.before, limit=q.limit
    )
    return [
        TimelineItem(
            at=c.recorded_at,
            type=ItemType.CONSENT,
            id=str(c.id),
            summary=f"{c.channel} {c.purpose} consent {c.status} ({c.source})",
            data={
                "channel": c.channel,
                "purpose": c.purpose,
                "status": c.status,
                "source": c.source,
                "text_version": c.text_version,
            },
            key=c.id,
        )
        for c in found
    ]


# Support's kinds, as its items name them.
SUPPORT_KINDS = {
    ItemType.INTERACTION: "interaction",
    ItemType.TICKET: "ticket",
    ItemType.FEEDBACK: "survey_response",
}


def _support(kind: ItemType) -> Reader:
    async def read(q: Query) -> list[TimelineItem]:
        # Support pages its three kinds together; this kind's first ``limit`` after the
        # bound are among the first ``limit`` of the three (or beyond the page anyway).
        found = await support_service.member_items(
            q.conn, q.program, q.member_id, before=q.before, limit=q.limit, principal=q.principal
        )
        return [
            TimelineItem(
                at=i.at,
                type=kind,
                id=str(i.id),
                summary=i.title + (f" ({i.detail})" if i.detail else ""),
                data={"title": i.title, "detail": i.detail, "store": i.store},
                key=i.id,
            )
            for i in found
            if i.type == SUPPORT_KINDS[kind]
        ]

    return read


SOURCES: dict[ItemType, Source] = {
    ItemType.PURCHASE: Source(_purchases, UUID, UUID_RANGE),
    ItemType.RETURN: Source(_returns, UUID, UUID_RANGE),
    ItemType.POINTS: Source(_points, UUID, UUID_RANGE),
    ItemType.TIER: Source(_tiers, UUID, UUID_RANGE),
    ItemType.MESSAGE: Source(_messages, UUID, UUID_RANGE),
    ItemType.CONSENT: Source(_consents, int, NUMBER_RANGE),
    **{kind: Source(_support(kind), UUID, UUID_RANGE) for kind in SUPPORT_KINDS},
}


class Timeline:
    async def page(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        types: Iterable[ItemType] | None,
        cursor: Cursor | None,
        limit: int,
        principal: Principal | None = None,
    ) -> list[TimelineItem]:
        """The member's items of ``types`` (all if None) after ``cursor``, newest first;
        404 for a member not of the program. A staff member limited to stores sees only
        their stores' support items."""
        await member_service.get(conn, program, member_id)
        wanted = set(types) if types else set(SOURCES)
        pages = []
        for kind, source in SOURCES.items():
            if kind in wanted:
                before = bound(cursor, kind, source.parse, source.keys)
                query = Query(conn, program, member_id, before, limit, principal)
                pages.append(await source.read(query))
        return merged(pages, limit)


timeline = Timeline()
