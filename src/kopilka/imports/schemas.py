"""API shapes of the member import: one member brought over from another system (the
same record a row of the CSV file becomes), a batch of them, and the answer per record."""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.kit.clock import MAX_CLOCK_SKEW, clock
from kopilka.kit.types import Day, Flag, Instant, Points, field_error
from kopilka.members.schemas import (
    Attributes,
    Consents,
    Gender,
    MemberCreate,
    PreferredChannel,
    StoreCode,
    Tags,
)

MAX_BATCH = 1000
MAX_LOTS = 20
IDENTIFIER_KINDS = ("external_id", "card", "phone", "email")  # the order members are matched in

ConsentChannel = Literal["email", "sms", "push"]
ConsentPurpose = Literal["marketing", "service"]


class ImportedConsent(BaseModel):
    """A consent as the old system recorded it: given (``granted: true``) or refused, when,
    and the version of the text the member saw, if known."""

    model_config = ConfigDict(extra="forbid")

    channel: ConsentChannel
    purpose: ConsentPurpose
    granted: Flag
    at: Instant = Field(description="When the member gave or refused it.")
    text_version: str | None = Field(default=None, min_length=1, max_length=40)


# What an adjustment may move at once: a member brought over holds no more of a currency.
MAX_BALANCE = 10**12


class ImportedLot(BaseModel):
    """Points the member held, with the expiry they had there: ``expires_at`` (an instant)
    or ``expires_on`` (the last day they can be spent, in the program's time zone), or
    neither (they never expire). Two lots of one currency expiring together are one lot."""

    model_config = ConfigDict(extra="forbid")

    amount: Points
    currency: str | None = Field(
        default=None, min_length=1, max_length=32, description="Default: the program's points."
    )
    expires_at: Instant | None = None
    expires_on: Day | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> "ImportedLot":
        if self.expires_at is not None and self.expires_on is not None:
            raise field_error("expires_on", "give expires_at or expires_on, not both")
        return self


class ImportedTier(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=32, description="A tier of the program's ladder.")
    since: Instant | None = Field(
        default=None,
        description="When the member reached it (default: registered_at, else the import).",
    )


class MemberImportRecord(BaseModel):
    """One member with everything they hold. At least one identifier is needed: it is what
    recognises the member when the import runs again."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    card: str | None = None
    phone: str | None = None
    email: str | None = None
    name: str | None = Field(default=None, max_length=200)
    birthday: Day | None = None
    language: str | None = Field(default=None, max_length=16)
    gender: Gender | None = None
    city: str | None = Field(default=None, max_length=100)
    address: str | None = Field(default=None, max_length=300)
    preferred_store: StoreCode | None = None
    preferred_channel: PreferredChannel | None = None
    registered_at: Instant | None = Field(
        default=None, description="When the member joined the old program (default: now)."
    )
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(default_factory=dict)
    consents: list[ImportedConsent] = Field(default_factory=list, max_length=6)
    points: list[ImportedLot] = Field(default_factory=list, max_length=MAX_LOTS)
    tier: ImportedTier | None = None

    @model_validator(mode="after")
    def _checked(self) -> "MemberImportRecord":
        if not any(getattr(self, kind) for kind in IDENTIFIER_KINDS):
            raise field_error(
                "external_id",
                "give at least one of external_id, card, phone, email: a member without one "
                "could not be recognised when the import runs again",
            )
        seen: set[tuple[str, str]] = set()
        for index, consent in enumerate(self.consents):
            pair = (consent.channel, consent.purpose)
            if pair in seen:
                raise field_error(
                    f"consents.{index}", f"{pair[0]} {pair[1]} consent is given twice"
                )
            seen.add(pair)
        if self.registered_at is not None and self.registered_at > clock.now() + MAX_CLOCK_SKEW:
            raise field_error("registered_at", "registered_at is in the future")
        totals: dict[str | None, int] = {}
        for lot in self.points:
            totals[lot.currency] = totals.get(lot.currency, 0) + lot.amount
        if any(total > MAX_BALANCE for total in totals.values()):
            raise field_error("points", f"a member holds at most {MAX_BALANCE:,} of a currency")
        for index, consent in enumerate(self.consents):
            if consent.at > clock.now() + MAX_CLOCK_SKEW:
                raise field_error(f"consents.{index}.at", "the consent's date is in the future")
        return self

    def member_create(self) -> MemberCreate:
        """The registration this record makes: the profile's consent flags on where
        marketing was granted."""
        granted = {c.channel for c in self.consents if c.purpose == "marketing" and c.granted}
        return MemberCreate.model_construct(
            **{
                name: getattr(self, name)
                for name in (
                    "name",
                    "phone",
                    "email",
                    "birthday",
                    "language",
                    "gender",
                    "city",
                    "address",
                    "preferred_store",
                    "preferred_channel",
                    "external_id",
                    "card",
                    "tags",
                    "attributes",
                    "registered_at",
                )
            },
            consents=Consents.model_construct(
                email="email" in granted, sms="sms" in granted, push="push" in granted
            ),
            referral_code=None,
        )


class MemberImportBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description="Each is checked on its own: an invalid one gets its error in the "
        "results and the others are imported.",
        json_schema_extra={"items": {"$ref": "#/components/schemas/MemberImportRecord"}},
    )


class RecordError(BaseModel):
    field: str
    reason: str


class MemberImportResult(BaseModel):
    index: int
    status: Literal["created", "already_imported", "error"]
    member_id: UUID | None = None
    error: RecordError | None = None
    notes: list[str] = Field(
        default_factory=list,
        description="What was left out: lots already expired, lots imported before.",
    )


class MemberImportAnswer(BaseModel):
    created: int
    already_imported: int
    failed: int
    results: list[MemberImportResult]
