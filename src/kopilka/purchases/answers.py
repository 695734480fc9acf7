"""Answers of the purchase path as JSON, built directly from what was computed: on the
bulk path, validating and dumping a response model per purchase would cost more than
evaluating its rules."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from kopilka.earning.schemas import RuleTraceOut
from kopilka.kit.codes import normalise_code
from kopilka.ledger.service import Earned
from kopilka.programs.service import ProgramContext
from kopilka.purchases.domain import claim_deadline
from kopilka.purchases.schemas import PurchaseCreate


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def purchase_context(purchase: PurchaseCreate) -> dict[str, Any] | None:
    """What a purchase carries for the rules beyond basket, store and channel (for replays)."""
    coupons = purchase.coupons + [normalise_code(c) for c in purchase.coupon_codes]
    if not (purchase.region or purchase.payment_method or coupons):
        return None
    return {
        "region": purchase.region,
        "payment_method": purchase.payment_method,
        "coupons": coupons,
    }


def purchase_result_json(
    purchase_id: UUID | None,
    purchase: PurchaseCreate,
    member_id: UUID | None,
    earned: Sequence[Earned],
    balances: Sequence[dict[str, int | str]],
    trace: Sequence[RuleTraceOut] | None,
    benefits: Sequence[dict[str, Any]] = (),
    tier: dict[str, Any] | None = None,
    payment: dict[str, Any] | None = None,
    points_currency: str = "points",
    claimable_until: datetime | None = None,
    perks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A :class:`PurchaseResult` (or, without an id, the body of a quote) as JSON, built
    directly: on the bulk path validating and dumping a model per purchase would cost more
    than evaluating its rules. ``points_earned`` sums the program's points currency."""
    return {
        "id": str(purchase_id) if purchase_id else None,
        "external_id": purchase.external_id,
        "member_id": str(member_id) if member_id else None,
        "occurred_at": _iso(purchase.occurred_at),
        "total": purchase.total,
        "earned": [
            {"rule_id": e.rule_id, "currency": e.currency, "amount": e.amount, "status": e.status}
            for e in earned
        ],
        "points_earned": sum(e.amount for e in earned if e.currency == points_currency),
        "balances": list(balances),
        "benefits": list(benefits),
        "tier": tier,
        "payment": payment,
        "trace": None if trace is None else [t.model_dump(mode="json") for t in trace],
        "claimable_until": _iso(claimable_until) if claimable_until else None,
        # What the tier and the member's waiting benefits do (see purchases/perks.py).
        "applied_benefits": perks["applied_benefits"] if perks else [],
        "discount": perks["discount"] if perks else None,
        "free_delivery": perks["free_delivery"] if perks else False,
    }


def anonymous_answer(
    program: ProgramContext, purchase_id: UUID | None, purchase: PurchaseCreate, *, explain: bool
) -> dict[str, Any]:
    """The answer for a purchase without a member (or its quote): nothing earned, no
    balances, and until when a member may claim it."""
    return purchase_result_json(
        purchase_id,
        purchase,
        None,
        [],
        [],
        [] if explain else None,
        points_currency=program.settings.points_currency(),
        claimable_until=claim_deadline(purchase.occurred_at, program.settings.claim_window_days),
    )
