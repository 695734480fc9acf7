"""Coupons and points on a purchase: what they take off the basket, in which order, and
what is left for the rules to earn on.

The order, for every purchase:

1. coupon codes apply in the order given, each on what the ones before it left;
2. points pay for part of what is left (the program's ``points_payment`` terms);
3. the rules earn on the money paid (``earn_on: paid``, the default) — every line less
   its share of the discounts and of the points — or on the whole basket (``total``);
4. the points spent leave the member's balance before the points earned arrive, so points
   earned on a purchase never pay for that same purchase.

A return gives back, in proportion to the money returned, the points that paid for the
purchase; once the purchase is returned in full, the uses of its codes go back to the
codes of campaigns that give them back. Never commits.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.domain import Decision, allocate
from kopilka.coupons.service import CouponService, basket_lines, coupon_service, decision_out
from kopilka.errors import Conflict, InvalidInput
from kopilka.kit.ids import new_id
from kopilka.ledger import domain as ledger_domain
from kopilka.ledger.domain import Account, Balance, BalanceKey, Lot
from kopilka.ledger.service import LedgerService, ledger_service
from kopilka.ledger.unit import LedgerChanges
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork
from kopilka.programs.domain import expires_at
from kopilka.programs.service import ProgramContext
from kopilka.purchases.domain import PointsTerms
from kopilka.purchases.schemas import PurchaseCreate

# Refusals that a concurrent till may have caused are conflicts; the rest are bad input.
RACE_REASONS = {"used_up", "member_limit", "campaign_limit"}


def points_terms(program: ProgramContext) -> PointsTerms | None:
    terms = program.settings.points_payment
    if terms is None:
        return None
    return PointsTerms(
        terms.points,
        terms.money,
        terms.min_points,
        terms.max_share_percent,
        frozenset(terms.excluded_categories),
    )


@dataclass
class Settlement:
    """How one purchase is paid besides money, decided before the rules run."""

    purchase_id: UUID
    total: int
    decisions: list[Decision]
    points_currency: str | None = None
    points: int = 0
    points_value: int = 0
    # What coupons and points take off each line (one entry for a basket without lines),
    # and which of the points paid for which line.
    reductions: list[int] = field(default_factory=list)
    points_lines: list[int] = field(default_factory=list)
    earn_on_paid: bool = True

    @property
    def discount(self) -> int:
        return sum(d.discount for d in self.decisions if d.accepted)

    @property
    def paid(self) -> int:
        return self.total - self.discount - self.points_value

    @property
    def earn_base(self) -> int:
        return self.paid if self.earn_on_paid else self.total

    def line_reductions(self) -> list[int] | None:
        """What to take off each line before the rules see it (None: nothing)."""
        if not self.earn_on_paid or not any(self.reductions):
            return None
        return self.reductions

    def record(self) -> dict[str, Any]:
        """What the purchase keeps (``purchases.payments``), for returns and reports."""
        return {
            "discount": self.discount,
            "coupons": [
                {"code": d.code.code, "campaign": d.terms.key, "discount": d.discount}
                for d in self.decisions
                if d.accepted and d.code is not None and d.terms is not None
            ],
            "points_currency": self.points_currency,
            "points_spent": self.points,
            "points_value": self.points_value,
            "points_refunded": 0,
            "points_lines": self.points_lines,
            "paid": self.paid,
            "paid_returned": 0,
            "earn_on_paid": self.earn_on_paid,
            # Per line (one entry without lines): what a simulation takes off to see the
            # basket as the rules saw it.
            "reductions": self.reductions,
        }

    def answer(self) -> dict[str, Any]:
        return {
            "coupons": [decision_out(d) for d in self.decisions],
            "discount": self.discount,
            "points_currency": self.points_currency,
            "points_spent": self.points,
            "points_value": self.points_value,
            "paid": self.paid,
            "earn_base": self.earn_base,
        }


def pays_otherwise(purchase: PurchaseCreate) -> bool:
    return bool(purchase.coupon_codes) or purchase.points_to_spend > 0


def refuse_without_member(purchase: PurchaseCreate) -> None:
    """A purchase without a member is paid in money only: the program's coupon codes and
    points are counted per member (uses, per-member limits, balances), and there is nobody
    to count them against. The till's own discounts are in its lines."""
    if purchase.coupon_codes:
        raise InvalidInput(
            "a purchase without a member cannot redeem the program's coupon codes",
            field="coupon_codes",
        )
    if purchase.points_to_spend:
        raise InvalidInput(
            "a purchase without a member cannot be paid with points", field="points_to_spend"
        )


class PaymentService:
    def __init__(
        self, coupons: CouponService = coupon_service, ledger: LedgerService = ledger_service
    ) -> None:
        self.coupons = coupons
        self.ledger = ledger

    async def settle(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        purchase: PurchaseCreate,
        member_id: UUID | None,
        available: int,
        now: datetime,
        *,
        redeem: bool,
        uow: UnitOfWork | None = None,
    ) -> tuple[Settlement, dict[str, Any] | None]:
        """Decide the purchase's coupons and points against ``available`` points.

        With ``redeem`` (a real purchase) a code or points that cannot be used refuse the
        purchase, and the codes' uses are taken; without it (a quote) refusals are only
        reported. Also returns the points quote for the basket after its coupons.
        """
        lines = basket_lines(purchase.lines) or None
        decisions: list[Decision] = []
        if purchase.coupon_codes:
            decisions = await self.coupons.decide(
                conn,
                program,
                purchase.coupon_codes,
                member_id,
                lines or [],
                purchase.total,
                purchase.occurred_at,
            )
        if redeem:
            _refuse_bad_codes(decisions)
        categories: list[str | None] = [line.category for line in lines] if lines else [None]
        coupon_cuts = _coupon_cuts(decisions, len(categories))
        amounts = [line.amount for line in lines] if lines else [purchase.total]
        left = [a - c for a, c in zip(amounts, coupon_cuts, strict=True)]
        settlement = Settlement(
            purchase_id=new_id(),
            total=purchase.total,
            decisions=decisions,
            reductions=coupon_cuts,
            earn_on_paid=program.settings.earn_on == "paid",
        )
        terms = points_terms(program)
        quote = None
        if terms is not None:
            quote = _points_quote(program, terms, categories, left, available)
        if purchase.points_to_spend:
            if terms is None:
                raise InvalidInput(
                    "the program takes no points at the till", field="points_to_spend"
                )
            reason = terms.refusal(purchase.points_to_spend, categories, left, available)
            if reason is not None and not redeem and quote is not None:
                quote["refused"] = reason  # a quote reports; the purchase would be refused
                return settlement, quote
            if reason is not None:
                raise InvalidInput(reason, field="points_to_spend")
            value = terms.value(purchase.points_to_spend)
            shares = terms.line_shares(categories, left, value)
            settlement.points_currency = terms_currency(program)
            settlement.points = purchase.points_to_spend
            settlement.points_value = value
            settlement.reductions = [c + s for c, s in zip(coupon_cuts, shares, strict=True)]
            settlement.points_lines = allocate(purchase.points_to_spend, shares)
        if redeem and member_id is not None and decisions:
            await self.coupons.redeem(
                conn,
                program,
                decisions,
                member_id=member_id,
                purchase_id=settlement.purchase_id,
                now=now,
                uow=uow,
            )
        return settlement, quote

    async def spending_lots(
        self, conn: AsyncConnection, member_id: UUID, currency: str
    ) -> list[Lot]:
        return await self.ledger.repository.open_lots(conn, member_id, currency, lock=True)

    def spend(
        self,
        unit: LedgerChanges,
        balances: dict[BalanceKey, Balance],
        lots: list[Lot],
        settlement: Settlement,
        member_id: UUID,
        purchase: PurchaseCreate,
    ) -> None:
        """Take the points that pay for the purchase (before anything is earned on it)."""
        assert settlement.points_currency is not None
        key = (member_id, settlement.points_currency)
        postings, _ = ledger_domain.redeem(balances[key], lots, settlement.points)
        unit.track(key, balances[key], lots)
        reason = f"paid for purchase {purchase.external_id}"
        entry_id = unit.add_entry(
            member_id,
            "redeem",
            [(settlement.points_currency, postings)],
            occurred_at=purchase.occurred_at,
            reason=reason,
            reference_type="purchase",
            reference_id=str(settlement.purchase_id),
        )
        unit.moved(
            events.PointsRedeemed,
            member_id,
            purchase.occurred_at,
            settlement.points_currency,
            settlement.points,
            balances[key],
            entry_id,
            ("purchase", str(settlement.purchase_id)),
            reason=reason,
        )

    def refund_points(
        self,
        unit: LedgerChanges,
        program: ProgramContext,
        balances: dict[BalanceKey, Balance],
        purchase: Any,
        points: int,
        return_id: str,
        now: datetime,
    ) -> None:
        """Give back ``points`` that paid for returned goods, as a new available lot that
        expires by the program's policy from now."""
        currency = str(purchase.payments["points_currency"])
        key = (purchase.member_id, currency)
        postings, lot = ledger_domain.earn(
            balances[key],
            lot_id=new_id(),
            amount=points,
            now=now,
            available_at=now,
            expires_at=expires_at(program.settings.expiry, now, program.settings.timezone),
            source_id=return_id,
            rule_id=None,
            source_account=Account.REDEEMED,
        )
        unit.track(key, balances[key])
        entry_id = unit.add_entry(
            purchase.member_id,
            "refund",
            [(currency, postings)],
            occurred_at=now,
            reason=f"points that paid for returned goods of purchase {purchase.external_id}",
            reference_type="return",
            reference_id=return_id,
        )
        unit.add_lot(purchase.member_id, currency, lot, entry_id)
        unit.moved(
            events.PointsRefunded,
            purchase.member_id,
            now,
            currency,
            points,
            balances[key],
            entry_id,
            ("return", return_id),
        )

    async def give_back_codes(
        self, conn: AsyncConnection, purchase: Any, returned_total: int, now: datetime
    ) -> list[str]:
        """Once a purchase is returned in full, the uses of its codes (where the campaign
        says so)."""
        payments = purchase.payments
        if not payments or not payments.get("coupons") or returned_total < purchase.total:
            return []
        return await self.coupons.give_back(conn, purchase.id, now)


@dataclass(frozen=True)
class LineReturn:
    """A purchase line, how many units of it had come back before this return and after."""

    quantity: int
    amount: int
    before: int
    after: int


@dataclass(frozen=True)
class ReturnPlan:
    """What a return does to a purchase paid partly with coupons or points."""

    points: int  # points that paid for the returned goods, to give back now
    earn_basis: tuple[int, int] | None  # (paid total, paid returned so far) for reversals
    payments: dict[str, Any]


def _cumulative(weights: Sequence[int], lines: Sequence[LineReturn]) -> int:
    """How much of ``weights`` (one per line) this return brings back, each line's share
    counted cumulatively like its money: floor(weight × returned / quantity)."""
    return sum(
        w * line.after // line.quantity - w * line.before // line.quantity
        for w, line in zip(weights, lines, strict=True)
    )


def return_plan(
    payments: dict[str, Any],
    total: int,
    returned_before: int,
    returned_after: int,
    lines: Sequence[LineReturn] | None,
) -> ReturnPlan:
    """The points to give back and the basis for reversing earned points, for a return that
    takes the purchase from ``returned_before`` to ``returned_after`` of its ``total``.

    A return of lines gives back the points that paid for those lines (excluded categories
    took none) and reverses earned points in proportion to the money those lines paid; a
    return of an amount counts as an even share of the basket. Cumulative amounts keep
    several partial returns adding up to the whole once everything has come back.
    """
    spent = int(payments.get("points_spent", 0))
    refunded = int(payments.get("points_refunded", 0))
    paid = int(payments.get("paid", total))
    paid_returned = int(payments.get("paid_returned", 0))
    reductions = payments.get("reductions") or []
    points_lines = payments.get("points_lines") or []
    full = returned_after >= total
    by_lines = lines is not None and len(reductions) == len(lines)
    if full:
        points, paid_returned = spent - refunded, paid
    elif by_lines and lines is not None:
        weights = points_lines if len(points_lines) == len(lines) else [0] * len(lines)
        points = _cumulative(weights, lines)
        paid_lines = [line.amount - cut for line, cut in zip(lines, reductions, strict=True)]
        paid_returned += _cumulative(paid_lines, lines)
    else:
        points = ledger_domain.proportional_share(spent, refunded, total, returned_after)
        paid_returned += paid * returned_after // total - paid * returned_before // total
    points = max(0, min(points, spent - refunded))
    paid_returned = max(0, min(paid_returned, paid))
    basis = (paid, paid_returned) if payments.get("earn_on_paid", True) and paid > 0 else None
    new = {**payments, "points_refunded": refunded + points, "paid_returned": paid_returned}
    return ReturnPlan(points, basis, new)


def terms_currency(program: ProgramContext) -> str:
    assert program.settings.points_payment is not None
    return program.settings.points_payment.currency


def _refuse_bad_codes(decisions: Sequence[Decision]) -> None:
    for index, decision in enumerate(decisions):
        if decision.reason is None:
            continue
        error = Conflict if decision.reason in RACE_REASONS else InvalidInput
        raise error(
            f"coupon {decision.text}: {decision.message}",
            field=f"coupon_codes.{index}",
            reason=decision.reason,
        )


def _coupon_cuts(decisions: Sequence[Decision], size: int) -> list[int]:
    cuts = [0] * size
    for decision in decisions:
        if decision.accepted and decision.line_discounts:
            cuts = [c + d for c, d in zip(cuts, decision.line_discounts, strict=True)]
    return cuts


def _points_quote(
    program: ProgramContext,
    terms: PointsTerms,
    categories: Sequence[str | None],
    left: Sequence[int],
    available: int,
) -> dict[str, Any]:
    most = terms.max_points(categories, left, available)
    return {
        "currency": terms_currency(program),
        "available": max(available, 0),
        "min_points": terms.min_points,
        "max_points": most,
        "max_value": terms.value(most),
        "step": terms.step,
        "points": terms.points,
        "money": terms.money,
    }


payment_service = PaymentService()
