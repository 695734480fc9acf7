"""The rows of one batch of purchases, written together at the end of the batch."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch
from kopilka.kit.ids import new_id
from kopilka.ledger.domain import Lot
from kopilka.ledger.repository import BalanceKey
from kopilka.ledger.service import Earned, LedgerService
from kopilka.ledger.unit import LedgerUnit
from kopilka.programs.service import ProgramContext
from kopilka.purchases.answers import purchase_context
from kopilka.purchases.payments import Settlement
from kopilka.purchases.repository import PurchaseRepository
from kopilka.purchases.schemas import PurchaseCreate
from kopilka.rules.service import RulesState
from kopilka.tiers.service import TierTracker


class PurchaseWriter:
    """Rows of one batch of purchases, written with one multi-row statement per table."""

    def __init__(
        self,
        program: ProgramContext,
        now: datetime,
        state: RulesState,
        tiers: TierTracker | None,
    ) -> None:
        self.program = program
        self.now = now
        self.state = state
        self.tiers = tiers
        self.unit = LedgerUnit(program.id, now)
        self.purchases: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        # Purchases paid partly with coupons or points (by index in the batch), and the
        # locked lots their points come from.
        self.settlements: dict[int, Settlement] = {}
        self.lots: dict[BalanceKey, list[Lot]] = {}

    def add(
        self,
        purchase: PurchaseCreate,
        purchase_id: UUID,
        member_id: UUID,
        earned: Sequence[Earned],
        body: dict[str, Any],
        request_hash_: str,
        payments: dict[str, Any] | None = None,
    ) -> None:
        earned_by_currency: dict[str, int] = {}
        for e in earned:
            earned_by_currency[e.currency] = earned_by_currency.get(e.currency, 0) + e.amount
        self.purchases.append(
            {
                "id": purchase_id,
                "program_id": self.program.id,
                "member_id": member_id,
                "external_id": purchase.external_id,
                "occurred_at": purchase.occurred_at,
                "store": purchase.store,
                "channel": purchase.channel,
                "currency": purchase.currency,
                "total": purchase.total,
                "returned_amount": 0,
                "payments": payments,
                "context": purchase_context(purchase),
                "earned": earned_by_currency,
                "reversed": {},
                "request_hash": request_hash_,
                "answer": body,
                "created_at": self.now,
            }
        )
        self.lines.extend(
            {
                "purchase_id": purchase_id,
                "member_id": member_id,
                "line_no": n,
                "sku": line.sku,
                "name": line.name,
                "category": line.category,
                "brand": line.brand,
                "tags": line.tags or None,
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount": line.discount,
                "amount": line.amount,
                "returned_quantity": 0,
            }
            for n, line in enumerate(purchase.lines, start=1)
        )
        self.outbox.append(
            {
                "program_id": self.program.id,
                "member_id": member_id,
                "event_id": new_id(),
                "topic": "purchase.recorded",
                "payload": {
                    "purchase_id": str(purchase_id),
                    "external_id": purchase.external_id,
                    "total": purchase.total,
                    "earned": earned_by_currency,
                }
                | _paid_otherwise(payments),
                "occurred_at": purchase.occurred_at,
                "created_at": self.now,
                "published_at": None,
            }
        )

    async def flush(
        self,
        conn: AsyncConnection,
        events: PurchaseRepository,
        ledger: LedgerService,
    ) -> None:
        batch = WriteBatch()
        events.stage_purchases(batch, self.purchases, self.lines)
        self.unit.stage(batch, ledger.repository)
        events.stage_outbox(batch, self.outbox)
        self.state.stage(batch)
        if self.tiers is not None:
            self.tiers.stage(batch)
        await batch.write(conn)


def _paid_otherwise(payments: dict[str, Any] | None) -> dict[str, Any]:
    """What a purchase's event says about coupons and points (nothing for money only)."""
    if payments is None:
        return {}
    return {
        "coupons": [c["code"] for c in payments["coupons"]],
        "discount": payments["discount"],
        "points_spent": payments["points_spent"],
        "paid": payments["paid"],
    }
