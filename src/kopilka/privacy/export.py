"""Everything held about a member, as one JSON document (GDPR art. 15 and 20, 152-FZ art. 14):
the profile and identifiers, consents and their history, points and every movement,
purchases with lines and returns, the tier and its history, coupons, rewards, gift cards
and the wallet, messages with their texts, push subscriptions, interactions, tickets,
survey answers, derived facts and segments. Read only; never commits."""

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.coupons.service import coupon_service
from kopilka.crm.service import crm_service
from kopilka.giftcards.service import gift_card_service
from kopilka.giftcards.wallets import wallet_service
from kopilka.kit.pagination import decode_cursor
from kopilka.ledger.history import movement_history
from kopilka.ledger.service import ledger_service
from kopilka.members.service import member_service
from kopilka.messaging.consents import consent_service
from kopilka.messaging.history import messaging_history
from kopilka.messaging.subscriptions import subscription_service
from kopilka.programs.service import ProgramContext
from kopilka.purchases.history import purchase_history
from kopilka.rewards.redemptions import redemption_service
from kopilka.segments.service import segment_service
from kopilka.support.member_tickets import member_tickets
from kopilka.support.service import support_service
from kopilka.support.surveys import survey_service
from kopilka.tiers.history import tier_history
from kopilka.tiers.service import tier_service

PAGE = 500
T = TypeVar("T")
Cursor = tuple[datetime, UUID] | None


def plain(value: Any) -> Any:
    """A value as JSON data: models and dataclasses as objects, ids and times as text."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "__dataclass_fields__"):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, UUID | datetime):
        return str(value) if isinstance(value, UUID) else value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def every(
    read: Callable[[Cursor], Awaitable[list[T]]], key: Callable[[T], Cursor]
) -> list[T]:
    """All items of a keyset-paged list, page after page."""
    found: list[T] = []
    before: Cursor = None
    while True:
        page = await read(before)
        found.extend(page)
        if len(page) < PAGE:
            return found
        before = key(page[-1])


async def every_page(read: Callable[[Cursor], Awaitable[Any]]) -> list[Any]:
    """All items of a list whose pages carry ``items`` and a ``next_cursor``."""
    found: list[Any] = []
    before: Cursor = None
    while True:
        page = await read(before)
        found.extend(page.items)
        if not page.next_cursor:
            return found
        before = decode_cursor(page.next_cursor)


class ExportService:
    async def export(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> dict[str, Any]:
        member = await member_service.get(conn, program, member_id)
        consents, consent_history = await consent_service.of(conn, program, member_id)
        document: dict[str, Any] = {
            "exported_at": now.isoformat(),
            "program": {"id": str(program.id), "name": program.name},
            "profile": plain(member),
            "consents": {"now": plain(consents), "history": plain(consent_history)},
            "points": await self._points(conn, program, member_id),
            "purchases": plain(
                await every(
                    lambda b: purchase_history.purchases(
                        conn, program, member_id, before=b, limit=PAGE
                    ),
                    lambda p: (p.occurred_at, p.id),
                )
            ),
            "returns": plain(
                await every(
                    lambda b: purchase_history.returns(
                        conn, program, member_id, before=b, limit=PAGE
                    ),
                    lambda r: (r.occurred_at, r.id),
                )
            ),
            "tier": plain(await tier_service.member_tier(conn, program, member_id, now))
            if program.settings.tiers
            else None,
            "tier_history": plain(
                await every(
                    lambda b: tier_history.changes(conn, program, member_id, before=b, limit=PAGE),
                    lambda c: (c.at, c.id),
                )
            ),
            "coupons": plain(
                await every(
                    lambda b: coupon_service.codes_page(
                        conn, program, member_id=member_id, limit=PAGE, after=b
                    ),
                    lambda c: (c["created_at"], c["id"]),
                )
            ),
            "reward_redemptions": plain(
                await every_page(
                    lambda b: redemption_service.history(
                        conn, program, member_id, limit=PAGE, before=b
                    )
                )
            ),
            "gift_cards": plain(
                await every(
                    lambda b: gift_card_service.member_cards(
                        conn, program, member_id, limit=PAGE, before=b, now=now
                    ),
                    lambda c: (c["issued_at"], c["id"]),
                )
            ),
            "wallet": plain(await wallet_service.get(conn, program, member_id, now)),
            "messages": plain(
                await every(
                    lambda b: messaging_history.member_messages(
                        conn, program, member_id, before=b, limit=PAGE
                    ),
                    lambda m: (m.created_at, m.id),
                )
            ),
            "push_subscriptions": plain(await subscription_service.of(conn, program, member_id)),
            "interactions": plain(
                await every_page(
                    lambda b: support_service.interactions(
                        conn, program, None, member_id, before=b, limit=PAGE
                    )
                )
            ),
            "tickets": plain(
                await every_page(
                    lambda b: member_tickets(conn, program, member_id, before=b, limit=PAGE)
                )
            ),
            "survey_answers": await self._answers(conn, program, member_id),
            "facts": plain(await crm_service.facts(conn, program, member_id, now)),
            "segments": plain(await segment_service.of_member(conn, program, member_id)),
        }
        return document

    async def export_recorded(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> dict[str, Any]:
        """``export``, with the export in the audit log (by whoever is acting: staff, a key,
        or the member from the app)."""
        document = await self.export(conn, program, member_id, now)
        await audit_service.record(
            conn,
            program.id,
            "member.exported",
            subject_type="member",
            subject_id=member_id,
            now=now,
            after={"sections": sorted(document)},
        )
        return document

    async def _points(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> dict[str, Any]:
        balances = await ledger_service.balances(conn, program, member_id)
        movements = await every(
            lambda b: movement_history.movements(conn, program, member_id, before=b, limit=PAGE),
            lambda m: (m.occurred_at, m.id),
        )
        return {"balances": plain(balances), "movements": plain(movements)}

    async def _answers(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> list[Any]:
        surveys = []
        after: str | None = None
        while True:
            page = await survey_service.page(conn, program, after=after, limit=PAGE)
            surveys.extend(page.items)
            if not page.next_cursor:
                break
            after = page.items[-1].key
        answers: list[Any] = []
        for survey in surveys:

            async def of(before: Cursor, key: str = survey.key) -> Any:
                return await survey_service.responses(
                    conn, program, None, key, member_id=member_id, before=before, limit=PAGE
                )

            answers.extend(await every_page(of))
        exported: list[Any] = plain(answers)
        return exported


export_service = ExportService()
