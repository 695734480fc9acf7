"""API shapes of the rewards shop: rewards, the catalog, redemptions, code pools."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kopilka.kit.types import Instant, Int
from kopilka.ledger.schemas import BalanceOut
from kopilka.members.schemas import MemberRef
from kopilka.programs.ladder import TierId
from kopilka.rewards.domain import Kind


def _web_address(value: str | None) -> str | None:
    # Shown as an image in the app and the console: only a web address, never
    # ``javascript:`` or ``data:`` text a page would open.
    if value is not None and not value.lower().startswith(("https://", "http://")):
        raise ValueError("an image_url is an http(s):// address")
    return value


ImageUrl = Annotated[str | None, Field(max_length=500), AfterValidator(_web_address)]

RewardKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
Amount = Annotated[Int, Field(ge=0, le=10**12)]
RewardStatus = Literal["active", "archived"]
CodeSource = Literal["pool", "generated"]
RedemptionStatus = Literal["issued", "fulfilled", "cancelled"]


class RewardCreate(BaseModel):
    """A reward of the shop. ``price`` is in ``currency`` (points by default);
    ``tier_prices`` override it for members on a tier and those above; ``stock`` is what
    is left (omit for unlimited); ``min_tier`` makes the reward exclusive to that tier and
    above; ``per_member_limit`` counts a member's redemptions that were not cancelled."""

    model_config = ConfigDict(extra="forbid")

    key: RewardKey
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    image_url: ImageUrl = None
    category: str | None = Field(default=None, min_length=1, max_length=100)
    kind: Kind
    currency: str = Field(default="points", min_length=1, max_length=32)
    price: Amount
    tier_prices: dict[TierId, Amount] | None = None
    stock: Amount | None = Field(default=None, description="Omit for unlimited.")
    available_from: Instant | None = None
    available_until: Instant | None = None
    min_tier: TierId | None = None
    per_member_limit: Int | None = Field(default=None, ge=1, le=1_000_000)
    exclusive_tag: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="Only members carrying this tag, and tiers listing it in "
        "exclusive_rewards, see and take it (a member's tag: letters, digits, _ . : -).",
    )
    early_access_days: Int | None = Field(
        default=None,
        ge=1,
        le=365,
        description="Tiers with early_access may take it this many days before available_from.",
    )
    coupon_campaign: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="discount_coupon, free_product, free_delivery: the campaign whose "
        "personal code the member gets.",
    )
    gift_amount: Int | None = Field(
        default=None, ge=1, le=10**12, description="gift_certificate: its value, minor units."
    )
    code_source: CodeSource | None = Field(
        default=None,
        description="digital: codes from the reward's pool, or generated (the default).",
    )
    code_pattern: str | None = Field(
        default=None,
        max_length=100,
        description="digital, generated codes: '#' is a random character (default ####-####-####).",
    )
    status: RewardStatus = "active"
    attributes: dict[str, Any] | None = Field(
        default=None, description="Free-form details: an event's date, a charity's name."
    )


class RewardUpdate(BaseModel):
    """Fields to change; a field sent as null is cleared. The key and the kind stay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    image_url: ImageUrl = None
    category: str | None = Field(default=None, min_length=1, max_length=100)
    currency: str | None = Field(default=None, min_length=1, max_length=32)
    price: Amount | None = None
    tier_prices: dict[TierId, Amount] | None = None
    stock: Amount | None = None
    available_from: Instant | None = None
    available_until: Instant | None = None
    min_tier: TierId | None = None
    per_member_limit: Int | None = Field(default=None, ge=1, le=1_000_000)
    exclusive_tag: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    early_access_days: Int | None = Field(default=None, ge=1, le=365)
    coupon_campaign: str | None = Field(default=None, min_length=1, max_length=100)
    gift_amount: Int | None = Field(default=None, ge=1, le=10**12)
    code_source: CodeSource | None = None
    code_pattern: str | None = Field(default=None, max_length=100)
    status: RewardStatus | None = None
    attributes: dict[str, Any] | None = None


# Fields a PATCH may not clear: the reward would not be a reward without them.
REQUIRED_ON_UPDATE = ("name", "currency", "price", "status")


class Reward(BaseModel):
    id: UUID
    key: str
    name: str
    description: str | None
    image_url: str | None
    category: str | None
    kind: Kind
    currency: str
    price: int
    tier_prices: dict[str, int] | None
    stock: int | None = Field(description="What is left; null: unlimited.")
    available_from: datetime | None
    available_until: datetime | None
    min_tier: str | None
    per_member_limit: int | None
    exclusive_tag: str | None = None
    early_access_days: int | None = None
    coupon_campaign: str | None
    gift_amount: int | None
    code_source: CodeSource | None
    code_pattern: str | None
    status: RewardStatus
    attributes: dict[str, Any] | None
    codes_available: int | None = Field(
        default=None, description="Free codes of a pooled digital reward."
    )
    created_at: datetime
    updated_at: datetime
    # For a member (``?member_id=``): their price, and whether they may take it now.
    member_price: int | None = None
    can_redeem: bool | None = None
    reason: str | None = Field(
        default=None,
        description="Why not: archived, not_yet_available, ended, tier_too_low, out_of_stock, "
        "member_blocked, limit_reached, insufficient_balance.",
    )
    detail: str | None = None
    member_redeemed: int | None = Field(
        default=None, description="The member's redemptions of it that were not cancelled."
    )


class RewardPage(BaseModel):
    items: list[Reward]
    next_cursor: str | None


class RedemptionCreate(BaseModel):
    """Redeem a reward for a member. ``external_id`` (unique in the program) makes a retry
    safe: the same request again gets the first answer."""

    model_config = ConfigDict(extra="forbid")

    member: MemberRef
    external_id: str | None = Field(default=None, min_length=1, max_length=200)


class RedemptionRequest(BaseModel):
    """What an idempotency key stands for: the reward and the body together."""

    reward: str
    member: MemberRef
    external_id: str | None


class FulfilRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(
        default=None, max_length=500, description="E.g. a tracking number, a ticket number."
    )


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class RewardRedemption(BaseModel):
    id: UUID
    reward_id: UUID
    reward_key: str
    reward_name: str
    kind: Kind
    member_id: UUID
    external_id: str | None
    currency: str
    price: int
    status: RedemptionStatus
    code: str | None = Field(description="What the member was handed: a code, a coupon…")
    details: dict[str, Any] | None
    ledger_redemption_id: UUID | None = Field(description="The spend in the points ledger.")
    created_at: datetime
    updated_at: datetime
    fulfilled_at: datetime | None
    cancelled_at: datetime | None
    balance: BalanceOut | None = Field(
        default=None, description="The member's balance in the currency, after this call."
    )


class RedemptionPage(BaseModel):
    items: list[RewardRedemption]
    next_cursor: str | None


class CodesAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codes: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=10_000
    )


class CodesAdded(BaseModel):
    added: int
    duplicates: int = Field(description="Codes the pool already had (or repeated), skipped.")
    available: int = Field(description="Free codes in the pool now.")
