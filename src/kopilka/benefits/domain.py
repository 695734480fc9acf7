"""Benefits, pure: what a stored benefit's status is at a moment, what a grant may carry,
and what a member's tier and waiting benefits do for one purchase at the till.

No I/O: the service reads the member's waiting benefits (under the member's lock at the
till) and the tier, and asks these functions.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from kopilka.errors import InvalidInput
from kopilka.programs.ladder import TierBenefits

Status = Literal["active", "used", "expired"]
STATUSES: tuple[Status, ...] = ("active", "used", "expired")
# Kinds a grant (a journey, staff) may give; rules give these and ``coupon`` as well.
GRANT_KINDS = ("boost", "free_sample", "free_delivery", "reward")
# Kinds used at the till by the next purchase (a boost through the rules engine).
TILL_KINDS = ("boost", "free_sample", "free_delivery")
MAX_FACTOR_PERCENT = 1000
# Kinds the member's offers page shows: what waits for their next purchase or redemption
# (a rule's coupon waits in their coupon wallet; a rule's free delivery or sample is used
# by the purchase that earned it).
OFFER_KINDS = ("boost", "free_sample", "free_delivery", "reward")


@dataclass(frozen=True)
class Waiting:
    """A benefit waiting for the member's next purchase (active, not expired)."""

    id: UUID
    kind: str
    source: str  # rule | journey | staff …
    source_key: str
    payload: Mapping[str, Any]
    expires_at: datetime | None
    issued_at: datetime | None = None


@dataclass(frozen=True)
class Offer:
    """A personal offer the member can still use, in the words the app shows: titled by
    the grant's own title or by the rule that gave it (and described by that rule)."""

    id: UUID
    kind: str
    title: str | None
    description: str | None
    payload: Mapping[str, Any]
    source: str
    issued_at: datetime
    expires_at: datetime | None


def status_at(stored: str, expires_at: datetime | None, now: datetime) -> Status:
    """A stored ``active`` benefit reads as ``expired`` from its ``expires_at`` on (the
    status is worked out when read: no job has to run for an offer to stop applying)."""
    if stored == "used":
        return "used"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def checked_payload(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload a grant of ``kind`` stores; :class:`InvalidInput` naming the field
    otherwise. Numbers must be JSON integers (``true`` or ``"2"`` are refused)."""
    if kind not in GRANT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(GRANT_KINDS)}", field="kind")
    allowed = {
        "boost": {"factor_percent"},
        "free_sample": {"sku", "name"},
        "free_delivery": set(),
        "reward": {"reward", "price"},
    }[kind]
    extra = sorted(set(payload) - allowed)
    if extra:
        raise InvalidInput(f"a {kind} benefit takes no {extra[0]!r}", field=f"payload.{extra[0]}")
    out: dict[str, Any] = {}
    if kind == "boost":
        out["factor_percent"] = _int(payload, "factor_percent", 101, MAX_FACTOR_PERCENT)
    elif kind == "free_sample":
        out["sku"] = _text(payload, "sku", required=True)
        if "name" in payload:
            out["name"] = _text(payload, "name", required=False)
    elif kind == "reward":
        out["reward"] = _text(payload, "reward", required=True)
        if "price" in payload:
            out["price"] = _int(payload, "price", 0, 10**13)
    return out


def _int(payload: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = payload.get(name)
    if type(value) is not int:
        raise InvalidInput(f"{name} must be an integer", field=f"payload.{name}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}", field=f"payload.{name}")
    return value


def _text(payload: Mapping[str, Any], name: str, *, required: bool) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        what = "is required: " if required and value is None else ""
        raise InvalidInput(
            f"{name} {what}must be a text of 1 to 100 characters", field=f"payload.{name}"
        )
    return value


@dataclass(frozen=True)
class Discount:
    """The tier's discount on the check: ``amount`` = floor(base × percent / 100)."""

    percent: int
    base: int
    amount: int

    def answer(self) -> dict[str, Any]:
        return {"source": "tier", "percent": self.percent, "base": self.base, "amount": self.amount}


@dataclass
class Perks:
    """What the member's tier and waiting benefits do for one purchase."""

    discount: Discount | None = None
    free_delivery: bool = False
    applied: list[dict[str, Any]] = field(default_factory=list)
    used: list[UUID] = field(default_factory=list)


def tier_discount(benefits: TierBenefits | None, base: int) -> Discount | None:
    """The tier's ``discount_percent`` of ``base`` (what is left to pay after coupons and
    points), rounded down to the minor unit; None when the tier gives none."""
    if benefits is None or benefits.discount_percent <= 0 or base <= 0:
        return None
    return Discount(benefits.discount_percent, base, base * benefits.discount_percent // 100)


def at_till(
    tier: str | None,
    benefits: TierBenefits | None,
    waiting: Sequence[Waiting],
    base: int,
    boosts_used: Mapping[str, int],
    instant_free_delivery: bool,
    at: datetime,
) -> Perks:
    """The tier's discount and free delivery, and the member's waiting benefits this
    purchase uses: every free sample, one free delivery (the soonest-ending; none when the
    tier or a rule on this purchase already gives it), and the boost the rules used
    (``boosts_used``: boost id → extra points). A benefit applies if it was live ``at``
    the purchase's time."""
    perks = Perks(discount=tier_discount(benefits, base))
    if perks.discount is not None:
        perks.applied.append(
            {
                "id": None,
                "kind": "discount",
                "source": "tier",
                "source_key": tier,
                "payload": {"percent": perks.discount.percent},
                "amount": perks.discount.amount,
            }
        )
    tier_delivery = benefits is not None and benefits.free_delivery
    perks.free_delivery = tier_delivery or instant_free_delivery
    if tier_delivery:
        perks.applied.append(_tier_item(tier, "free_delivery"))
    # Live when the purchase happened: given before it and not yet expired.
    live = [
        w
        for w in waiting
        if (w.expires_at is None or w.expires_at > at)
        and (w.issued_at is None or w.issued_at <= at)
    ]
    for item in sorted(live, key=_soonest):
        if item.kind == "free_sample":
            perks.applied.append(_item(item, 0))
            perks.used.append(item.id)
        elif item.kind == "free_delivery" and not perks.free_delivery:
            perks.free_delivery = True
            perks.applied.append(_item(item, 0))
            perks.used.append(item.id)
        elif item.kind == "boost" and str(item.id) in boosts_used:
            perks.applied.append(_item(item, boosts_used[str(item.id)]))
    return perks


def _soonest(item: Waiting) -> tuple[bool, datetime | None, str]:
    return (item.expires_at is None, item.expires_at, str(item.id))


def _tier_item(tier: str | None, kind: str) -> dict[str, Any]:
    return {
        "id": None,
        "kind": kind,
        "source": "tier",
        "source_key": tier,
        "payload": {},
        "amount": 0,
    }


def _item(item: Waiting, amount: int) -> dict[str, Any]:
    return {
        "id": str(item.id),
        "kind": item.kind,
        "source": item.source,
        "source_key": item.source_key,
        "payload": dict(item.payload),
        "amount": amount,
    }


def origin(rule_id: str, grant_key: str | None) -> tuple[str, str]:
    """(source, key) of a stored benefit: ``("rule", rule id)`` for one a rule gave, the
    granting feature and its key (``("journey", "winback")``) for a grant, whose
    ``rule_id`` is stored as ``<source>:<key>``."""
    if grant_key is not None and ":" in rule_id:
        source, _, key = rule_id.partition(":")
        return source, key
    return "rule", rule_id
