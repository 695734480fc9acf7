"""API shapes of members."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

IdentifierKind = Literal["card", "phone", "email", "external_id"]


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: bool = False
    sms: bool = False
    push: bool = False


class MemberRef(BaseModel):
    """Exactly one way to name a member: its id or one of its identifiers."""

    model_config = ConfigDict(extra="forbid")

    id: UUID | None = None
    card: str | None = None
    phone: str | None = None
    email: str | None = None
    external_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "MemberRef":
        given = [name for name, value in self.__dict__.items() if value is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of id, card, phone, email, external_id")
        return self

    def kind_and_value(self) -> tuple[str, str]:
        for name, value in self.__dict__.items():
            if value is not None:
                return name, str(value)
        raise AssertionError("validated to have one")


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = None
    email: str | None = None
    birthday: date | None = None
    language: str | None = Field(default=None, max_length=16)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    card: str | None = Field(
        default=None, description="An existing card number; one is generated if absent."
    )
    consents: Consents = Field(default_factory=Consents)
    referral_code: str | None = Field(
        default=None, max_length=64, description="A friend's referral code, kept with the member."
    )


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = None
    email: str | None = None
    birthday: date | None = None
    language: str | None = Field(default=None, max_length=16)
    consents: Consents | None = None


class MemberStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class Identifier(BaseModel):
    kind: IdentifierKind
    value: str


class Member(BaseModel):
    id: UUID
    name: str | None
    phone: str | None
    email: str | None
    birthday: date | None
    language: str | None
    consents: Consents
    status: Literal["active", "blocked"]
    status_reason: str | None
    referral_code: str | None = None
    identifiers: list[Identifier]
    created_at: datetime
    updated_at: datetime
