"""API shapes of gift cards, wallets and their transactions. Amounts are integers in minor
units of the card's currency (kopecks for RUB)."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.giftcards.domain import CARD_PATTERN, MAX_BALANCE, MAX_BATCH, MAX_VALID_DAYS
from kopilka.kit.types import Flag, Instant, Int

Amount = Annotated[
    Int,
    Field(ge=1, le=MAX_BALANCE, description="Minor units of the money currency (kopecks)."),
]
MoneyCurrency = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[A-Z]{3}$",
        description="If given, must be the card's currency (the program's money currency).",
    ),
]
ExternalId = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The caller's id of this movement: a retry with the same id moves "
        "nothing twice. Takes precedence over the Idempotency-Key header.",
    ),
]
Reference = Annotated[
    str | None,
    Field(default=None, max_length=200, description="Free text: the purchase or order id."),
]
ValidDays = Annotated[Int | None, Field(default=None, ge=1, le=MAX_VALID_DAYS)]
CardStatus = Literal["active", "disabled", "expired"]


class Expiry(BaseModel):
    """At most one of the three; none: the default validity (365 days)."""

    expires_at: Instant | None = None
    valid_days: ValidDays = None
    never_expires: Flag = False


class GiftCardCreate(Expiry):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    code: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="An existing card number to import; generated when left out.",
    )
    member_id: UUID | None = Field(default=None, description="The member the card was given to.")
    currency: MoneyCurrency = None
    external_id: ExternalId = None


class GiftCardBatchCreate(Expiry):
    model_config = ConfigDict(extra="forbid")

    count: Int = Field(ge=1, le=MAX_BATCH)
    amount: Amount
    pattern: str = Field(
        default=CARD_PATTERN,
        max_length=100,
        description="Every '#' is a random character; the rest is kept as written.",
    )


class GiftCardUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "disabled"] | None = None
    expires_at: Instant | None = None
    never_expires: Flag = False


class TopUpCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    currency: MoneyCurrency = None
    external_id: ExternalId = None
    reference: Reference = None


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Amount
    allow_partial: Flag = Field(
        default=False,
        description="Take what the card holds up to amount instead of refusing the payment.",
    )
    currency: MoneyCurrency = None
    external_id: ExternalId = None
    reference: Reference = None


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment_id: UUID | None = Field(default=None, description="The payment's transaction id.")
    payment_external_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="Or the payment's external_id."
    )
    amount: Int | None = Field(
        default=None, ge=1, le=MAX_BALANCE, description="Default: all that is left to refund."
    )
    external_id: ExternalId = None
    reference: Reference = None


class GiftCardOut(BaseModel):
    id: UUID
    code: str
    kind: Literal["gift_card", "wallet"]
    member_id: UUID | None
    currency: str
    balance: int
    available: int = Field(description="What a payment can take now (0 unless active).")
    initial_amount: int
    status: CardStatus
    expires_at: datetime | None
    issued_at: datetime
    updated_at: datetime
    source_type: str | None
    source_id: str | None


class GiftCardBatchOut(BaseModel):
    count: int
    cards: list[GiftCardOut]


class GiftCardPage(BaseModel):
    items: list[GiftCardOut]
    next_cursor: str | None


class TransactionOut(BaseModel):
    id: UUID
    card_id: UUID
    seq: int
    kind: Literal["issue", "top_up", "payment", "refund", "expiry"]
    amount: int = Field(description="Signed: credits positive, debits negative.")
    balance_after: int
    external_id: str | None
    reference: str | None
    refund_of: UUID | None
    created_at: datetime


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class OperationOut(BaseModel):
    card: GiftCardOut
    transaction: TransactionOut


class WalletOut(BaseModel):
    member_id: UUID
    id: UUID | None = Field(description="None until the first top-up opens the wallet.")
    code: str | None
    currency: str
    balance: int
    available: int
    status: CardStatus
    updated_at: datetime | None
