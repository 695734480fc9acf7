"""API shapes of coupon campaigns, codes and validation."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kopilka.kit.codes import UNAMBIGUOUS
from kopilka.kit.types import INT32_MAX, Flag, Instant, Int, Money, field_error
from kopilka.members.schemas import MemberRef
from kopilka.rules.basket import PurchaseLineIn

CampaignKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
CodeText = Annotated[str, Field(min_length=1, max_length=100)]
DEFAULT_PATTERN = "####-####-####"


class CouponOut(BaseModel):
    """What one presented code does to the basket, or why it cannot be used."""

    code: str
    valid: bool
    reason: str | None = Field(description="Why the code cannot be used (a stable key).")
    message: str | None
    campaign: str | None
    kind: str | None
    discount: int = Field(description="Minor units off the basket.")
    free_delivery: bool
    free_sku: str | None


class Discount(BaseModel):
    """What a code takes off: ``percent`` (``value`` 1–100, optionally capped by
    ``max_discount``), ``fixed`` (``value`` minor units), ``free_product`` (one unit of
    ``free_sku``) or ``free_delivery`` (the shop waives delivery; no money off the basket)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["percent", "fixed", "free_product", "free_delivery"]
    value: Int = Field(default=0, ge=0, le=10**13)
    max_discount: Money | None = None
    free_sku: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _fits_kind(self) -> "Discount":
        if self.kind == "percent" and not 1 <= self.value <= 100:
            raise ValueError("a percent discount needs value 1–100")
        if self.kind == "fixed" and self.value < 1:
            raise ValueError("a fixed discount needs value ≥ 1 (minor units)")
        if (self.kind == "free_product") != (self.free_sku is not None):
            raise ValueError("free_sku is required for kind free_product and only for it")
        if self.max_discount is not None and self.kind != "percent":
            raise ValueError("max_discount applies to percent discounts only")
        if self.kind in ("free_product", "free_delivery") and self.value:
            raise ValueError(f"kind {self.kind} takes no value")
        return self


class CampaignFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    discount: Discount
    min_basket: Money = 0
    categories: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=200, description="Lines of these categories (or SKUs) only."
    )
    skus: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=5000)
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    uses_per_code: Int | None = Field(
        default=1, ge=1, le=10**9, description="1: single-use codes; null: unlimited uses."
    )
    per_member_limit: Int | None = Field(default=None, ge=1, le=10**6)
    total_limit: Int | None = Field(default=None, ge=1, le=INT32_MAX)
    stackable: Flag = False
    give_back_on_return: Flag = True
    code_pattern: str = Field(default=DEFAULT_PATTERN, min_length=4, max_length=100)
    valid_days: Int | None = Field(
        default=None, ge=1, le=3660, description="Personal codes issued later expire after this."
    )
    status: Literal["active", "paused", "archived"] = "active"
    attributes: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _window(self) -> "CampaignFields":
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class CampaignCreate(CampaignFields):
    key: CampaignKey


class CampaignUpdate(BaseModel):
    """Fields to change; the rest stay. The discount of a campaign is fixed once created
    (codes already handed out promise it)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    per_member_limit: Int | None = Field(default=None, ge=1, le=10**6)
    total_limit: Int | None = Field(default=None, ge=1, le=INT32_MAX)
    stackable: Flag | None = None
    give_back_on_return: Flag | None = None
    valid_days: Int | None = Field(default=None, ge=1, le=3660)
    status: Literal["active", "paused", "archived"] | None = None

    @field_validator("name", "stackable", "give_back_on_return", "status")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # null clears a limit or a date; these fields always have a value.
        if value is None:
            raise ValueError("may be changed, not cleared: give a value")
        return value


class Campaign(CampaignFields):
    id: UUID
    key: str
    redeemed: int = Field(description="Uses of the campaign's codes, returns given back excluded.")
    codes: int = Field(description="Codes of the campaign.")
    created_at: datetime
    updated_at: datetime


class CodesCreate(BaseModel):
    """Generate ``count`` codes from a pattern, or import ``codes`` as given. Codes may be
    made personal: ``members`` gives one member per code (in order)."""

    model_config = ConfigDict(extra="forbid")

    count: Int | None = Field(default=None, ge=1, le=1_000_000)
    pattern: str | None = Field(default=None, min_length=4, max_length=100)
    charset: str = Field(default=UNAMBIGUOUS, min_length=2, max_length=100)
    codes: list[CodeText] | None = Field(default=None, min_length=1, max_length=1_000_000)
    members: list[MemberRef] | None = Field(default=None, min_length=1, max_length=100_000)
    max_uses: Int | None = Field(
        default=None, ge=1, le=10**9, description="Uses per code; default the campaign's."
    )
    valid_until: Instant | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "CodesCreate":
        if (self.count is None) == (self.codes is None):
            raise ValueError("give count (to generate) or codes (to import), not both")
        wanted = self.count if self.count is not None else len(self.codes or [])
        if self.members is not None and len(self.members) != wanted:
            raise ValueError(f"members must name one member per code ({wanted})")
        if self.codes is not None and self.pattern is not None:
            raise ValueError("pattern is for generated codes only")
        return self


class CodeOut(BaseModel):
    id: UUID
    code: str
    campaign: str
    member_id: UUID | None
    uses: int
    max_uses: int | None
    status: str
    valid_until: datetime | None
    issued_at: datetime
    qr_svg_url: str


class CodesCreated(BaseModel):
    campaign: str
    created: int
    codes: list[str] = Field(description="The new codes (the first 1,000 of a larger batch).")


class CodePage(BaseModel):
    items: list[CodeOut]
    next_cursor: str | None


class CodeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "disabled"]


class ValidateRequest(BaseModel):
    """A basket and the codes presented for it; nothing is changed by validating."""

    model_config = ConfigDict(extra="forbid")

    codes: list[CodeText] = Field(min_length=1, max_length=20)
    member: MemberRef | None = None
    total: Money
    lines: list[PurchaseLineIn] = Field(default_factory=list, max_length=1000)
    occurred_at: Instant | None = None

    @model_validator(mode="after")
    def _lines_add_up(self) -> "ValidateRequest":
        if self.lines and sum(line.amount for line in self.lines) != self.total:
            raise field_error("total", "total differs from the sum of lines")
        return self


CodeDecision = CouponOut


class ValidateResult(BaseModel):
    valid: bool = Field(description="Every code presented can be used.")
    codes: list[CodeDecision]
    discount: int
    total_after_discount: int
