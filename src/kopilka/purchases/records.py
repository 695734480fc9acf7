"""The rows a purchase being recorded is stored as (``purchases`` and ``purchase_lines``)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from kopilka.programs.service import ProgramContext
from kopilka.purchases.answers import purchase_context
from kopilka.purchases.schemas import PurchaseCreate


def purchase_row(
    program: ProgramContext,
    purchase: PurchaseCreate,
    purchase_id: UUID,
    member_id: UUID | None,
    request_hash_: str,
    body: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The ``purchases`` row of a purchase being recorded (``member_id`` None: without a
    member), paid in money only and having earned nothing: the caller sets ``payments``
    and ``earned`` otherwise. Every row has the same keys, in the same order, so a
    batch's rows go out in one statement."""
    return {
        "id": purchase_id,
        "program_id": program.id,
        "member_id": member_id,
        "external_id": purchase.external_id,
        "occurred_at": purchase.occurred_at,
        "store": purchase.store,
        "channel": purchase.channel,
        "currency": purchase.currency,
        "total": purchase.total,
        "returned_amount": 0,
        "payments": None,
        "context": purchase_context(purchase),
        "earned": {},
        "reversed": {},
        "request_hash": request_hash_,
        "answer": body,
        "created_at": now,
    }


def line_rows(
    purchase: PurchaseCreate, purchase_id: UUID, member_id: UUID | None
) -> list[dict[str, Any]]:
    return [
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
    ]
