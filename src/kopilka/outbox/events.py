"""Every domain event, typed and versioned, in one module.

A feature emits an event into the transaction's unit of work when value or state changes;
the event becomes an outbox row in the same transaction and is delivered after commit by
``kopilka worker`` (in order per member, at least once). Each event carries its own id,
the program, the member (None for program-wide events), when it happened, and enough data
that a consumer needs no query for the common case. ``docs/events.md`` shows each payload.

Changing an event's payload incompatibly means a new ``version`` of it; consumers read the
version from the envelope.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from kopilka.kit.ids import new_id

ENVELOPE = ("event_id", "program_id", "member_id", "occurred_at")


def _plain(value: Any) -> Any:
    """A value as the JSON the outbox stores and webhooks send."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class DomainEvent:
    """The envelope every event shares; subclasses add the payload's fields."""

    topic: ClassVar[str] = ""
    version: ClassVar[int] = 1

    program_id: UUID
    member_id: UUID | None
    occurred_at: datetime
    event_id: UUID = field(default_factory=new_id)

    @property
    def type(self) -> str:
        """The event's type as consumers filter on it (``purchase.recorded``)."""
        return self.topic

    def payload(self) -> dict[str, Any]:
        """The payload as plain JSON values (ids and times as strings)."""
        return {name: _plain(getattr(self, name)) for name in _payload_fields(type(self))}

    def stored_payload(self) -> dict[str, Any]:
        """The payload for the outbox's JSON column, whose encoder writes ids, times and
        dates as :meth:`payload` spells them: no conversion on the purchase path."""
        return {name: getattr(self, name) for name in _payload_fields(type(self))}


_FIELDS: dict[type[DomainEvent], tuple[str, ...]] = {}


def _payload_fields(cls: type[DomainEvent]) -> tuple[str, ...]:
    """The payload's field names of an event class (worked out once per class: events are
    made on every purchase)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls) if f.name not in ENVELOPE)
    return names


TOPICS: dict[str, type[DomainEvent]] = {}


E = TypeVar("E", bound=type[DomainEvent])


def topic(name: str, version: int = 1) -> Callable[[E], E]:
    """Register an event class under its type name."""

    def register(cls: E) -> E:
        cls.topic = name
        cls.version = version
        TOPICS[name] = cls
        return cls

    return register


Amounts = dict[str, int]  # per currency


# --- members --------------------------------------------------------------------------------


@topic("member.registered")
@dataclass(frozen=True, kw_only=True, slots=True)
class MemberRegistered(DomainEvent):
    card: str | None
    phone: str | None
    email: str | None
    external_id: str | None
    language: str | None
    birthday: date | None
    channel: str  # api, import, purchase (enrolled at the till)
    referral_code: str | None = None


@topic("member.updated")
@dataclass(frozen=True, kw_only=True, slots=True)
class MemberUpdated(DomainEvent):
    changed: list[str]  # the fields that changed
    values: dict[str, Any]  # their new values (consents, tags, attributes …)


@topic("member.blocked")
@dataclass(frozen=True, kw_only=True, slots=True)
class MemberBlocked(DomainEvent):
    reason: str


@topic("consent.changed")
@dataclass(frozen=True, kw_only=True, slots=True)
class ConsentChanged(DomainEvent):
    """A member's consent on a channel for a purpose changed: ``status`` granted, pending
    (waiting for the address to be confirmed) or withdrawn; ``source`` where it came from."""

    channel: str  # email, sms, push
    purpose: str  # service, marketing
    status: str
    previous_status: str | None
    source: str
    text_version: str | None


@topic("member.unblocked")
@dataclass(frozen=True, kw_only=True, slots=True)
class MemberUnblocked(DomainEvent):
    reason: str


# --- purchases and activities ---------------------------------------------------------------


@topic("purchase.recorded")
@dataclass(frozen=True, kw_only=True, slots=True)
class PurchaseRecorded(DomainEvent):
    purchase_id: UUID
    external_id: str
    total: int
    currency: str
    store: str | None
    channel: str
    lines: int
    categories: list[str]
    earned: Amounts
    tier: str | None = None
    coupons: list[str] = field(default_factory=list)
    discount: int = 0
    points_spent: int = 0
    paid: int | None = None


@topic("return.recorded")
@dataclass(frozen=True, kw_only=True, slots=True)
class ReturnRecorded(DomainEvent):
    return_id: UUID
    external_id: str
    purchase_id: UUID
    purchase_external_id: str
    amount: int
    purchase_returned_amount: int
    reversed: Amounts
    points_refunded: int
    coupons_given_back: list[str]


@topic("purchase.claimed")
@dataclass(frozen=True, kw_only=True, slots=True)
class PurchaseClaimed(DomainEvent):
    """A purchase recorded without a member was claimed by the event's member (by its
    receipt id): the envelope's ``occurred_at`` is the claim's time, ``purchased_at`` the
    purchase's. ``earned`` is what the rules gave it, ``reversed`` what was taken back at
    once for the share returned before the claim (``returned_amount``)."""

    purchase_id: UUID
    external_id: str
    total: int
    currency: str
    store: str | None
    channel: str
    purchased_at: datetime
    claimed_at: datetime
    earned: Amounts
    reversed: Amounts
    returned_amount: int
    tier: str | None = None


@topic("activity.recorded")
@dataclass(frozen=True, kw_only=True, slots=True)
class ActivityRecorded(DomainEvent):
    external_id: str
    activity: str  # signup, profile_completed, review, birthday, event
    name: str | None
    channel: str
    attributes: dict[str, Any]
    earned: Amounts


@topic("rule.event")
@dataclass(frozen=True, kw_only=True, slots=True)
class RuleEvent(DomainEvent):
    """An ``event`` effect of a rule: its type is ``rule.<name>``."""

    name: str
    rule_id: str
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return f"rule.{self.name}"


# --- points ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PointsMoved(DomainEvent):
    """Points of one currency moved for one reason; ``balance`` is the member's after it."""

    currency: str
    amount: int
    balance: dict[str, int]  # available, pending, held
    entry_id: UUID | None = None
    reference_type: str | None = None
    reference_id: str | None = None


@topic("points.earned")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsEarned(PointsMoved):
    status: str  # pending | available
    rules: dict[str, int]  # rule id → amount
    expires_at: datetime | None
    available_at: datetime


@topic("points.released")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsReleased(PointsMoved):
    """Pending points became available (the return window passed)."""


@topic("points.redeemed")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsRedeemed(PointsMoved):
    reason: str | None = None


@topic("points.held")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsHeld(PointsMoved):
    hold_expires_at: datetime | None = None


@topic("points.captured")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsCaptured(PointsMoved):
    released: int = 0  # what the capture did not take and went back


@topic("points.voided")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsVoided(PointsMoved):
    outcome: str = "voided"  # voided | expired


@topic("points.refunded")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsRefunded(PointsMoved):
    """Points that paid for something (a redemption, a basket) given back."""


@topic("points.reversed")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsReversed(PointsMoved):
    """Points a returned purchase earned, taken back; ``not_clawed_back`` were spent."""

    not_clawed_back: int = 0


@topic("points.expired")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsExpired(PointsMoved):
    pass


@topic("points.adjusted")
@dataclass(frozen=True, kw_only=True, slots=True)
class PointsAdjusted(PointsMoved):
    """A manual credit (positive ``amount``) or debit (negative)."""

    reason: str = ""


# --- tiers ----------------------------------------------------------------------------------


@topic("tier.upgraded")
@dataclass(frozen=True, kw_only=True, slots=True)
class TierUpgraded(DomainEvent):
    from_tier: str
    to_tier: str
    reason: str
    source: str | None


@topic("tier.downgraded")
@dataclass(frozen=True, kw_only=True, slots=True)
class TierDowngraded(DomainEvent):
    from_tier: str
    to_tier: str
    reason: str
    source: str | None


@topic("tier.grace_started")
@dataclass(frozen=True, kw_only=True, slots=True)
class TierGraceStarted(DomainEvent):
    tier: str
    grace_until: date | None


# --- coupons, rewards, gift cards -----------------------------------------------------------


@topic("coupon.issued")
@dataclass(frozen=True, kw_only=True, slots=True)
class CouponIssued(DomainEvent):
    campaign: str
    code: str
    valid_until: datetime | None
    source_type: str | None
    source_id: str | None


@topic("coupon.redeemed")
@dataclass(frozen=True, kw_only=True, slots=True)
class CouponRedeemed(DomainEvent):
    campaign: str
    code: str
    discount: int
    purchase_id: UUID


@topic("coupon.code_changed")
@dataclass(frozen=True, kw_only=True, slots=True)
class CouponCodeChanged(DomainEvent):
    """A code was disabled (lost, leaked) or enabled again."""

    campaign: str
    code: str
    status: str
    previous_status: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RewardEvent(DomainEvent):
    """A reward redemption changed. Codes are worth something and stay out of events: a
    consumer that needs one (to send it) reads the redemption."""

    redemption_id: UUID
    reward: str
    kind: str
    currency: str
    price: int
    status: str


@topic("reward.redeemed")
@dataclass(frozen=True, kw_only=True, slots=True)
class RewardRedeemed(RewardEvent):
    pass


@topic("reward.fulfilled")
@dataclass(frozen=True, kw_only=True, slots=True)
class RewardFulfilled(RewardEvent):
    pass


@topic("reward.cancelled")
@dataclass(frozen=True, kw_only=True, slots=True)
class RewardCancelled(RewardEvent):
    """The points went back to the member; stock came back if the item was counted."""


@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardMoved(DomainEvent):
    """Money moved on a gift card or wallet (``card_kind``); ``balance`` is the card's after
    it, in minor units of ``currency``."""

    card_id: UUID
    card_kind: str  # gift_card | wallet
    transaction_id: UUID
    amount: int
    balance: int
    currency: str
    external_id: str | None
    reference: str | None


@topic("giftcard.issued")
@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardIssued(GiftCardMoved):
    """A new card with its opening amount; the message that hands it to its owner needs
    the ``code``."""

    code: str


@topic("giftcard.topped_up")
@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardToppedUp(GiftCardMoved):
    pass


@topic("giftcard.used")
@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardUsed(GiftCardMoved):
    """The card paid for something."""


@topic("giftcard.refunded")
@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardRefunded(GiftCardMoved):
    pass


@topic("giftcard.expired")
@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardExpired(GiftCardMoved):
    """What was left on the card when it expired."""


@topic("giftcard.changed")
@dataclass(frozen=True, kw_only=True, slots=True)
class GiftCardChanged(DomainEvent):
    """A card was disabled or enabled, or given another expiry."""

    card_id: UUID
    card_kind: str
    status: str
    previous_status: str
    expires_at: datetime | None
    previous_expires_at: datetime | None


# --- programs -------------------------------------------------------------------------------


@topic("program.published")
@dataclass(frozen=True, kw_only=True, slots=True)
class ProgramPublished(DomainEvent):
    version_number: int
    previous: int | None
    changes: dict[str, list[str]]  # rules added / removed / changed, tiers changed …
    summary: str
    # What the marketer told members of the change at publish time ("" : members not told).
    member_notice: str = ""


# The CRM's events live in modules of their own (one per area), registered here so that
# every topic is known wherever events are read.
from kopilka.outbox import (  # noqa: E402, F401
    crm_events,
    journey_events,
    program_event_events,
    segment_events,
    store_events,
    support_events,
)


def event_class(topic_name: str) -> type[DomainEvent] | None:
    """The class of an event type (``rule.*`` types are all :class:`RuleEvent`)."""
    if topic_name.startswith("rule."):
        return RuleEvent
    return TOPICS.get(topic_name)
