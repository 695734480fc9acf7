"""What composing a batch of messages reads once for all its members, and the members'
recommended items when a template asks for them (``docs/recommendations.md``)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.messaging.composition import Setup
from kopilka.messaging.records import ConsentRow, Recipient, SubscriptionRow
from kopilka.programs.service import ProgramContext
from kopilka.recommendations.service import recommendation_service

RECOMMENDATIONS = "recommendations"  # the template variable
RECOMMENDED_IN_MESSAGES = 5


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
    # Each member's recommended items, read only when a saved text of the batch's kinds
    # asks for them (``docs/recommendations.md``).
    recommendations: dict[UUID, list[dict[str, Any]]] = field(default_factory=dict)


async def recommended_for(
    conn: AsyncConnection,
    program: ProgramContext,
    saved: Mapping[tuple[str, str], Mapping[str, str]],
    kinds: Sequence[str],
    ids: Sequence[UUID],
    now: datetime,
) -> dict[UUID, list[dict[str, Any]]]:
    """Each member's recommended items as templates read them, only when a saved text of
    these kinds mentions ``recommendations`` (otherwise nothing is read)."""
    wanted = set(kinds)
    asked = any(
        RECOMMENDATIONS in source
        for (kind, _), parts in saved.items()
        if kind in wanted
        for source in parts.values()
    )
    if not asked:
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
