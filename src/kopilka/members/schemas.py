"""API shapes of members."""

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from kopilka.kit.clock import MAX_CLOCK_SKEW, clock
from kopilka.kit.types import (
    TIME_ZONES,
    Day,
    Flag,
    Instant,
    JsonInt,
    field_error,
    json_numbers,
    known_zone,
)

IdentifierKind = Literal["card", "phone", "email", "external_id"]
Gender = Literal["female", "male", "other"]
PreferredChannel = Literal["email", "sms", "push", "inbox"]
StoreCode = Annotated[str, Field(min_length=1, max_length=64)]


class Consents(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Flag = False
    sms: Flag = False
    push: Flag = False


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


MemberTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
AttributeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
AttributeValue = Annotated[
    Annotated[str, Field(max_length=500)]
    | JsonInt
    | Annotated[float, Strict(), Field(allow_inf_nan=False)]
    | Flag,
    # An integer too large for JSON readers is refused, not stored as a rounded float.
    BeforeValidator(json_numbers),
]
Tags = Annotated[list[MemberTag], Field(max_length=100, description="Rules read tags.")]


def _zone_attribute(attributes: dict[str, Any]) -> dict[str, Any]:
    zone = attributes.get("timezone")
    if zone is not None:
        if not isinstance(zone, str):
            raise field_error("timezone", "the time zone is an IANA name such as Europe/Moscow")
        try:
            known_zone(zone)
        except ValueError as exc:
            raise field_error("timezone", str(exc)) from None
    return attributes


Attributes = Annotated[
    dict[AttributeName, AttributeValue],
    AfterValidator(_zone_attribute),
    Field(
        max_length=100,
        description="Custom attributes rules can read; `timezone` (an IANA name) sets the "
        "member's local time for calendar conditions.",
        json_schema_extra={"properties": {"timezone": {"type": "string", "enum": TIME_ZONES}}},
    ),
]


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = None
    email: str | None = None
    birthday: Day | None = None
    language: str | None = Field(default=None, max_length=16)
    gender: Gender | None = None
    city: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    preferred_store: StoreCode | None = Field(
        default=None, description="The code of a store of the program."
    )
    preferred_channel: PreferredChannel | None = None
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    card: str | None = Field(
        default=None, description="An existing card number; one is generated if absent."
    )
    consents: Consents = Field(default_factory=Consents)
    referral_code: str | None = Field(
        default=None, max_length=64, description="A friend's referral code, kept with the member."
    )
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    registered_at: Instant | None = Field(
        default=None,
        description="When the member registered, for members brought over from another system: "
        "the member's `created_at`, and the sign-up rules run as of then (their points are dated "
        "then and expire accordingly). Default: now. With a time zone; at most 24 hours ahead "
        "of the server's clock and not before 1970.",
    )

    @model_validator(mode="after")
    def _registered_at_not_ahead(self) -> "MemberCreate":
        if self.registered_at is not None and self.registered_at > clock.now() + MAX_CLOCK_SKEW:
            raise field_error("registered_at", "registered_at is in the future")
        return self


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    phone: str | None = None
    email: str | None = None
    birthday: Day | None = None
    language: str | None = Field(default=None, max_length=16)
    gender: Gender | None = None
    city: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    preferred_store: StoreCode | None = Field(
        default=None, description="The code of a store of the program."
    )
    preferred_channel: PreferredChannel | None = None
    consents: Consents | None = None
    tags: Tags | None = Field(default=None, description="Replaces the member's tags.")
    attributes: Attributes | None = Field(
        default=None, description="Replaces the member's attributes."
    )


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
    gender: Gender | None = None
    city: str | None = None
    address: str | None = None
    preferred_store: str | None = None
    preferred_channel: PreferredChannel | None = None
    consents: Consents
    status: Literal["active", "blocked", "merged", "erased"]
    status_reason: str | None
    merged_into: UUID | None = Field(
        default=None,
        description="A merged profile's survivor: the person's profile now (status `merged`).",
    )
    referral_code: str | None = None
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    identifiers: list[Identifier]
    created_at: datetime
    updated_at: datetime


class DuplicateMember(BaseModel):
    id: UUID
    name: str | None
    email: str | None
    phone: str | None
    birthday: date | None
    created_at: datetime


class DuplicateGroup(BaseModel):
    reason: Literal["name_birthday", "email"]
    key: str
    members: list[DuplicateMember]


class DuplicatePage(BaseModel):
    items: list[DuplicateGroup]
    next_cursor: str | None
