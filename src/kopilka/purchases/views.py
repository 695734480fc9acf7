"""A purchase as the rules see it (its basket after coupons and points) and as consumers
hear of it (``purchase.recorded``)."""

from typing import Any
from uuid import UUID

from kopilka.earning.service import RulesEvent
from kopilka.earning.state import Source
from kopilka.kit.codes import normalise_code
from kopilka.outbox import events
from kopilka.programs.service import ProgramContext
from kopilka.purchases.payments import Settlement
from kopilka.purchases.schemas import PurchaseCreate
from kopilka.rules.context import BasketLine


def rules_event(
    purchase: PurchaseCreate, purchase_id: UUID | None, reductions: list[int] | None = None
) -> RulesEvent:
    """The rules' view of a purchase. ``reductions`` (coupons and points, per line) come off
    the lines and the total, so the rules earn on the money paid; the whole basket still
    counts as the member's spend."""
    cuts = reductions or NO_CUTS
    return RulesEvent(
        trigger="purchase",
        source=Source("purchase", str(purchase_id) if purchase_id else purchase.external_id),
        occurred_at=purchase.occurred_at,
        channel=purchase.channel,
        total=purchase.total - sum(cuts),
        lines=[
            BasketLine(
                line.sku,
                line.category,
                line.quantity,
                line.amount - (cuts[n] if cuts else 0),
                line.brand,
                frozenset(line.tags) if line.tags else NO_TAGS,
            )
            for n, line in enumerate(purchase.lines)
        ],
        store=purchase.store,
        region=purchase.region,
        payment_method=purchase.payment_method,
        coupons=_presented(purchase),
        spend=purchase.total,
    )


NO_CODES: frozenset[str] = frozenset()
NO_TAGS: frozenset[str] = frozenset()
NO_CUTS: list[int] = []


def _presented(purchase: PurchaseCreate) -> frozenset[str]:
    """The codes a purchase presents, as the rules see them (most present none)."""
    if not purchase.coupons and not purchase.coupon_codes:
        return NO_CODES
    return frozenset(purchase.coupons).union(map(normalise_code, purchase.coupon_codes))


def recorded_event(
    program: ProgramContext,
    purchase: PurchaseCreate,
    purchase_id: UUID,
    member_id: UUID | None,
    earned: dict[str, int],
    tier: dict[str, Any] | None,
    settlement: Settlement | None,
) -> events.PurchaseRecorded:
    """What consumers hear of a purchase just recorded (``member_id`` None: a purchase
    without a member)."""
    return events.PurchaseRecorded(
        program_id=program.id,
        member_id=member_id,
        occurred_at=purchase.occurred_at,
        purchase_id=purchase_id,
        external_id=purchase.external_id,
        total=purchase.total,
        currency=purchase.currency,
        store=purchase.store,
        channel=purchase.channel,
        lines=len(purchase.lines),
        categories=sorted({line.category for line in purchase.lines if line.category}),
        earned=earned,
        tier=tier["tier"] if tier else None,
        coupons=[c["code"] for c in settlement.record()["coupons"]] if settlement else [],
        discount=settlement.discount if settlement else 0,
        points_spent=settlement.points if settlement else 0,
        paid=settlement.paid if settlement else purchase.total,
    )
