"""API shapes of purchases and returns."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.coupons.schemas import CouponOut
from kopilka.earning.schemas import BenefitOut, EarnedOut, RuleTraceOut
from kopilka.kit.types import ExternalId, Instant, Int, Money, field_error
from kopilka.ledger.schemas import BalanceOut
from kopilka.members.schemas import MemberRef
from kopilka.rules.basket import PurchaseLineIn
from kopilka.tiers.schemas import TierOutcome


class PurchaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: MemberRef | None = Field(
        default=None,
        description="Who bought. Omitted or null: a purchase without a member, which earns "
        "nothing and may be claimed by a member later by its external_id (the receipt id).",
    )
    external_id: ExternalId
    occurred_at: Instant
    store: str | None = Field(default=None, max_length=100)
    channel: str = Field(default="pos", min_length=1, max_length=32)
    region: str | None = Field(default=None, max_length=100)
    payment_method: str | None = Field(default=None, max_length=32)
    coupons: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=20, description="Coupon codes presented."
    )
    coupon_codes: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list,
        max_length=20,
        description="Codes of the program's coupon campaigns to redeem on this purchase, in "
        "the order they apply. A code that cannot be used refuses the whole purchase.",
    )
    points_to_spend: Int = Field(
        default=0,
        ge=0,
        le=10**13,
        description="Points paying part of the basket (the program's points_payment terms).",
    )
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    lines: list[PurchaseLineIn] = Field(default_factory=list, max_length=1000)
    total: Money = Field(description="The basket before coupons and points, minor units.")

    @model_validator(mode="after")
    def _lines_add_up(self) -> "PurchaseCreate":
        if self.lines:
            lines_sum = sum(line.amount for line in self.lines)
            if lines_sum != self.total:
                raise field_error(
                    "total", f"total {self.total} differs from the sum of lines {lines_sum}"
                )
        return self


class PaymentOut(BaseModel):
    """How the basket was paid besides money, and what is left to pay in money."""

    coupons: list[CouponOut]
    discount: int = Field(description="Coupon discounts, minor units.")
    points_currency: str | None
    points_spent: int
    points_value: int = Field(description="What the points paid, minor units.")
    paid: int = Field(description="Left to pay in money: total − discount − points_value.")
    earn_base: int = Field(description="The amount the rules earned on.")


class PointsPaymentQuote(BaseModel):
    """How many points may pay for this basket (after its coupons)."""

    currency: str
    available: int
    min_points: int
    max_points: int = Field(description="0 when points cannot pay for this basket.")
    max_value: int = Field(description="What max_points pay, minor units.")
    step: int = Field(description="points_to_spend must be a multiple of this.")
    points: int = Field(description="Rate: this many points …")
    money: int = Field(description="… pay this many minor units.")
    refused: str | None = Field(
        default=None, description="Why the quoted points_to_spend would be refused."
    )


class AppliedBenefitOut(BaseModel):
    """A benefit the purchase used (or, in a quote, would use): the tier's discount or free
    delivery (``id`` None, ``source`` tier), a personal boost (``amount``: extra points), a
    free sample, free delivery."""

    id: UUID | None
    kind: str = Field(description="discount, free_delivery, free_sample, boost")
    source: str = Field(description="tier, rule, journey, staff …")
    source_key: str | None
    payload: dict[str, Any]
    amount: int = Field(description="The discount (minor units) or a boost's extra points.")


class DiscountOut(BaseModel):
    """The tier's discount on the check: floor(base × percent / 100), minor units."""

    source: str
    percent: int
    base: int = Field(description="What was left to pay after coupons and points.")
    amount: int


class PurchaseResult(BaseModel):
    id: UUID | None = Field(description="None for a quote.")
    external_id: str
    member_id: UUID | None = Field(description="None: a purchase without a member.")
    occurred_at: datetime
    total: int
    earned: list[EarnedOut]
    points_earned: int = Field(description="Sum earned in the `points` currency.")
    balances: list[BalanceOut]
    benefits: list[BenefitOut] = Field(default_factory=list)
    trace: list[RuleTraceOut] | None = None
    tier: TierOutcome | None = Field(
        default=None, description="The member's tier after the purchase (programs with tiers)."
    )
    payment: PaymentOut | None = Field(
        default=None, description="Coupons and points on the purchase (None: money only)."
    )
    claimable_until: datetime | None = Field(
        default=None,
        description="A purchase without a member: until when a member may claim it by its "
        "external_id (None: it cannot be claimed, or it has a member).",
    )
    applied_benefits: list[AppliedBenefitOut] = Field(
        default_factory=list, description="The tier's and the member's benefits used."
    )
    discount: DiscountOut | None = Field(
        default=None, description="The tier's discount on the check (None: none)."
    )
    free_delivery: bool = Field(
        default=False, description="Delivery is free (the tier, a rule or a personal offer)."
    )


class PurchaseQuote(PurchaseResult):
    """A dry run: codes that could not be used are reported, not refused."""

    points_payment: PointsPaymentQuote | None = Field(
        default=None, description="None when the program takes no points at the till."
    )


class BatchItemResult(BaseModel):
    index: int
    status: int
    purchase: PurchaseResult | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    accepted: int
    failed: int
    results: list[BatchItemResult]


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, Field(min_length=1, max_length=100)]
    quantity: Int = Field(ge=1, le=1_000_000)


class ReturnCreate(BaseModel):
    """A return of lines, of an amount, or (neither given) of everything not yet returned."""

    model_config = ConfigDict(extra="forbid")

    external_id: ExternalId
    purchase_external_id: ExternalId
    occurred_at: Instant
    lines: list[ReturnLineIn] | None = Field(default=None, min_length=1)
    amount: Int | None = Field(default=None, ge=1, le=10**13)

    @model_validator(mode="after")
    def _lines_or_amount(self) -> "ReturnCreate":
        if self.lines is not None and self.amount is not None:
            raise field_error("amount", "give lines or amount, not both")
        return self


class ReversedOut(BaseModel):
    currency: str
    reversed: int
    not_clawed_back: int


class ReturnResult(BaseModel):
    id: UUID
    external_id: str
    purchase_external_id: str
    member_id: UUID | None = Field(description="None: the purchase has no member.")
    amount: int = Field(description="Money returned by this return, minor units.")
    purchase_returned_amount: int
    reversed: list[ReversedOut]
    balances: list[BalanceOut]
    earned: list[EarnedOut] = Field(
        default_factory=list, description="What rules on the return trigger gave."
    )
    benefits: list[BenefitOut] = Field(default_factory=list)
    tier: TierOutcome | None = None
    points_refunded: int = Field(
        default=0, description="Points that paid for the returned share, given back."
    )
    coupons_given_back: list[str] = Field(
        default_factory=list, description="Codes whose use this return handed back."
    )


class ClaimCreate(BaseModel):
    """A member claims a purchase recorded without a member, by its receipt id."""

    model_config = ConfigDict(extra="forbid")

    receipt: ExternalId = Field(description="The purchase's external_id, as on the receipt.")
    member: MemberRef


class ClaimResult(PurchaseResult):
    """What a claimed purchase earned the member: ``earned`` is what the rules of the
    version in force at the purchase's time gave the whole basket, ``reversed`` what was
    taken back at once for the share returned before the claim."""

    claimed_at: datetime
    program_version: int = Field(description="The version of the rules that earned it.")
    returned_amount: int = Field(description="Money returned before the claim, minor units.")
    reversed: list[ReversedOut] = Field(default_factory=list)
