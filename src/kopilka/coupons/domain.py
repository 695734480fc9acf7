"""Pure coupon rules: whether a code may be used on a basket, and what it takes off.

No I/O here. The service reads the campaign, the code and the usage counts (under the
member's lock), calls :func:`apply_codes`, and writes what it decided.

Discounts are integers in minor units, rounded down (a 15 % coupon on 999 kopecks takes
149). Several codes on one basket are applied in the order given, each on what the ones
before it left, so the discounts never add up to more than the basket.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from kopilka.kit.clock import as_utc
from kopilka.kit.codes import generate_codes
from kopilka.kit.ids import new_id

DiscountKind = Literal["percent", "fixed", "free_product", "free_delivery"]

# Why a code cannot be used, as a stable machine-readable reason (with a sentence for people).
REASONS = {
    "unknown": "no such code",
    "disabled": "the code is disabled",
    "campaign_inactive": "the campaign is not active",
    "not_started": "the campaign has not started yet",
    "expired": "the code has expired",
    "used_up": "the code has been used as often as it may be",
    "not_yours": "the code belongs to another member",
    "member_required": "the code is personal: the purchase must name its member",
    "member_limit": "the member has used this campaign as often as they may",
    "campaign_limit": "the campaign has been used as often as it may be",
    "min_basket": "the basket is below the campaign's minimum",
    "no_applicable_items": "the basket holds nothing the coupon applies to",
    "free_product_missing": "the free product is not in the basket",
    "not_stackable": "the coupon cannot be combined with another coupon",
    "duplicate": "the code was presented twice",
}


@dataclass(frozen=True)
class Terms:
    """A campaign's terms, as the pure rules need them."""

    id: UUID
    key: str
    kind: DiscountKind
    value: int = 0
    max_discount: int | None = None
    free_sku: str | None = None
    min_basket: int = 0
    categories: frozenset[str] | None = None
    skus: frozenset[str] | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    per_member_limit: int | None = None
    total_limit: int | None = None
    redeemed_count: int = 0
    stackable: bool = False
    active: bool = True

    def applies_to(self, line: "Line") -> bool:
        if self.categories is None and self.skus is None:
            return True
        return (self.skus is not None and line.sku in self.skus) or (
            self.categories is not None and line.category in self.categories
        )


@dataclass(frozen=True)
class Code:
    id: UUID
    code: str
    campaign_id: UUID
    member_id: UUID | None
    uses: int
    max_uses: int | None
    active: bool
    valid_until: datetime | None


@dataclass(frozen=True)
class Line:
    """A basket line: ``amount`` is what it costs after the till's own line discount."""

    sku: str
    category: str | None
    quantity: int
    unit_price: int
    amount: int


@dataclass(frozen=True)
class Presented:
    """A code as presented at the till, with what the service read about it."""

    text: str
    code: Code | None
    terms: Terms | None
    member_uses: int = 0  # the member's earlier uses of the campaign


@dataclass
class Decision:
    """What one presented code does to the basket: a discount (with its share per line),
    or the reason it is refused."""

    text: str
    code: Code | None = None
    terms: Terms | None = None
    reason: str | None = None
    discount: int = 0
    line_discounts: list[int] = field(default_factory=list)
    free_delivery: bool = False

    @property
    def accepted(self) -> bool:
        return self.reason is None

    @property
    def message(self) -> str | None:
        return REASONS[self.reason] if self.reason else None


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` over ``weights`` in proportion, in integers that sum to ``amount``
    (largest remainder; ties to the earlier weight). No share exceeds its weight when
    ``amount`` is at most their sum."""
    total = sum(weights)
    if amount == 0 or total == 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def refusal(
    presented: Presented,
    member_id: UUID | None,
    now: datetime,
    basket_total: int,
    in_basket: int = 0,
) -> str | None:
    """Why this code cannot be used now by this member on a basket of ``basket_total``;
    None when it can (the basket's contents are judged by :func:`apply_codes`).
    ``in_basket``: codes of the same campaign already accepted for this basket, which
    count against the campaign's limits together with this one."""
    code, terms = presented.code, presented.terms
    if code is None or terms is None:
        return "unknown"
    checks: list[tuple[bool, str]] = [
        (not code.active, "disabled"),
        (not terms.active, "campaign_inactive"),
        (terms.valid_from is not None and now < terms.valid_from, "not_started"),
        (_past(terms.valid_until, now) or _past(code.valid_until, now), "expired"),
        (code.max_uses is not None and code.uses >= code.max_uses, "used_up"),
        (code.member_id is not None and member_id is None, "member_required"),
        (code.member_id is not None and code.member_id != member_id, "not_yours"),
        (
            terms.per_member_limit is not None
            and member_id is not None
            and presented.member_uses + in_basket >= terms.per_member_limit,
            "member_limit",
        ),
        (
            terms.total_limit is not None and terms.redeemed_count + in_basket >= terms.total_limit,
            "campaign_limit",
        ),
        (basket_total < terms.min_basket, "min_basket"),
    ]
    return next((reason for failed, reason in checks if failed), None)


def _past(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and now >= moment


def discount_on(terms: Terms, lines: Sequence[Line], left: Sequence[int]) -> tuple[int, str | None]:
    """The discount ``terms`` give on lines of which ``left`` is still to pay, or a reason."""
    eligible = [i for i, line in enumerate(lines) if terms.applies_to(line) and left[i] > 0]
    base = sum(left[i] for i in eligible)
    if terms.kind == "free_delivery":
        return 0, None
    if terms.kind == "free_product":
        target = free_line(terms, lines, left)
        if target is None:
            return 0, "free_product_missing"
        return min(lines[target].unit_price, left[target]), None
    if base == 0:
        return 0, "no_applicable_items"
    if terms.kind == "percent":
        amount = base * terms.value // 100
        if terms.max_discount is not None:
            amount = min(amount, terms.max_discount)
        return amount, None
    return min(terms.value, base), None


def apply_codes(
    presented: Sequence[Presented],
    lines: Sequence[Line],
    total: int,
    member_id: UUID | None,
    now: datetime,
) -> list[Decision]:
    """Decide every presented code, in order, on the basket.

    A basket without lines is one line of ``total``. Each accepted code's discount is
    shared over the lines it applies to in proportion to what is left on them; a free
    product comes off that product's line. A code that is not stackable is refused when
    another code was accepted before it, and stops every code after it.
    """
    basket = list(lines) or [Line("", None, 1, total, total)]
    left = [line.amount for line in basket]
    seen: set[str] = set()
    per_campaign: dict[UUID, int] = {}
    decisions: list[Decision] = []
    exclusive = False
    for item in presented:
        decision = Decision(item.text, item.code, item.terms)
        decisions.append(decision)
        key = item.code.code if item.code else item.text
        if key in seen:
            decision.reason = "duplicate"
            continue
        seen.add(key)
        in_basket = per_campaign.get(item.terms.id, 0) if item.terms else 0
        decision.reason = refusal(item, member_id, now, total, in_basket)
        if decision.reason is None and (
            exclusive or (item.terms is not None and not item.terms.stackable and _any(decisions))
        ):
            decision.reason = "not_stackable"
        if decision.reason is not None:
            continue
        terms = item.terms
        assert terms is not None
        amount, reason = discount_on(terms, basket, left)
        if reason is not None:
            decision.reason = reason
            continue
        decision.discount = amount
        decision.free_delivery = terms.kind == "free_delivery"
        decision.line_discounts = _shares(terms, basket, left, amount)
        left = [a - d for a, d in zip(left, decision.line_discounts, strict=True)]
        exclusive = exclusive or not terms.stackable
        per_campaign[terms.id] = in_basket + 1
    return decisions


def _any(decisions: list[Decision]) -> bool:
    """Whether a code before the last one was accepted."""
    return any(d.accepted for d in decisions[:-1])


def free_line(terms: Terms, lines: Sequence[Line], left: Sequence[int]) -> int | None:
    """The line a free-product coupon takes one unit off: the cheapest unit of its product
    still to pay (the first such line on a tie)."""
    wanted = [i for i, line in enumerate(lines) if line.sku == terms.free_sku and left[i] > 0]
    return min(wanted, key=lambda i: (lines[i].unit_price, i)) if wanted else None


def _shares(terms: Terms, basket: Sequence[Line], left: Sequence[int], amount: int) -> list[int]:
    if terms.kind == "free_product":
        target = free_line(terms, basket, left)
        return [amount if i == target else 0 for i in range(len(basket))]
    weights = [left[i] if terms.applies_to(line) else 0 for i, line in enumerate(basket)]
    return allocate(amount, weights)


def personal_code_row(
    campaign: Any,
    program_id: UUID,
    member_id: UUID,
    now: datetime,
    source: tuple[str, str] | None,
    valid_days: int | None = None,
) -> dict[str, Any]:
    """A new single member's code of ``campaign`` (a row of ``coupon_campaigns``).

    It expires ``valid_days`` (or the campaign's ``valid_days``) after ``now``, and never
    after the campaign ends. The code is random from the campaign's pattern: a clash with
    an existing code is so unlikely that the unique constraint settles it (the transaction
    is retried and draws again).
    """
    days = valid_days or campaign.valid_days
    until = now + timedelta(days=days) if days else None
    end = as_utc(campaign.valid_until) if campaign.valid_until else None
    if end is not None and (until is None or end < until):
        until = end
    return {
        "id": new_id(),
        "program_id": program_id,
        "campaign_id": campaign.id,
        "code": generate_codes(campaign.code_pattern, 1)[0],
        "member_id": member_id,
        "max_uses": campaign.uses_per_code,
        "uses": 0,
        "status": "active",
        "valid_until": until,
        "source_type": source[0] if source else None,
        "source_id": source[1] if source else None,
        "issued_at": now,
    }


# --- a member's wallet ---------------------------------------------------------------------------

WalletState = Literal["valid", "upcoming", "used", "expired", "unavailable"]


def wallet_state(code: Code, terms: Terms, now: datetime) -> WalletState:
    """How a member's own code stands, in the words of their wallet: spent (every use
    taken), expired (the code's or the campaign's end passed), unavailable (disabled, or
    the campaign paused or archived), upcoming (the campaign has not started) or valid.
    What a basket must hold is the till's to judge, not the wallet's."""
    if code.max_uses is not None and code.uses >= code.max_uses:
        return "used"
    if _past(terms.valid_until, now) or _past(code.valid_until, now):
        return "expired"
    if not code.active or not terms.active:
        return "unavailable"
    if terms.valid_from is not None and now < terms.valid_from:
        return "upcoming"
    return "valid"


def valid_until(code: Code, terms: Terms) -> datetime | None:
    """The earlier of the code's and the campaign's ends (None: no end)."""
    ends = [end for end in (code.valid_until, terms.valid_until) if end is not None]
    return min(ends) if ends else None
