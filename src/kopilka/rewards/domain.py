"""The rewards shop's rules, pure: what a member pays for a reward, whether they may see it
and take it (and if not, why), what each kind hands out, and whether a definition is sound.

No I/O here: the services read the reward, the member's tier, balance and past redemptions
(under the member's lock when redeeming) and ask these functions.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from kopilka.errors import Conflict, InsufficientBalance, InvalidInput, KopilkaError, MemberBlocked
from kopilka.kit.codes import check_pattern

Kind = Literal[
    "physical",
    "discount_coupon",
    "free_product",
    "free_delivery",
    "gift_certificate",
    "event",
    "digital",
    "charity",
]
KINDS: tuple[Kind, ...] = (
    "physical",
    "discount_coupon",
    "free_product",
    "free_delivery",
    "gift_certificate",
    "event",
    "digital",
    "charity",
)
# Handed over later by staff: the redemption stays ``issued`` until fulfilled or cancelled.
STAFF_FULFILLED: frozenset[str] = frozenset({"physical", "event", "charity"})
# A personal code of the reward's coupon campaign.
COUPON_KINDS: frozenset[str] = frozenset({"discount_coupon", "free_product", "free_delivery"})
DEFAULT_CODE_PATTERN = "####-####-####"


class RewardUnavailable(Conflict):
    """The reward cannot be taken now (archived, outside its window, above the member's
    tier, out of stock, past the member's limit); ``reason`` says which."""

    type_slug = "reward-unavailable"
    title = "Reward not available"


class Reason(StrEnum):
    ARCHIVED = "archived"
    NOT_YET_AVAILABLE = "not_yet_available"
    ENDED = "ended"
    TIER = "tier_too_low"
    EXCLUSIVE = "exclusive_to_tiers"
    OUT_OF_STOCK = "out_of_stock"
    MEMBER_BLOCKED = "member_blocked"
    LIMIT_REACHED = "limit_reached"
    INSUFFICIENT_BALANCE = "insufficient_balance"


# Reasons that keep a reward out of a member's catalog altogether; the others still show
# it, with ``can_redeem`` false.
HIDING: frozenset[Reason] = frozenset(
    {
        Reason.ARCHIVED,
        Reason.NOT_YET_AVAILABLE,
        Reason.ENDED,
        Reason.TIER,
        Reason.EXCLUSIVE,
        Reason.OUT_OF_STOCK,
    }
)


@dataclass(frozen=True)
class Terms:
    """What a reward asks of a member. ``codes_left`` is the free codes of a pooled
    digital reward (None for any other reward)."""

    key: str
    kind: str
    status: str
    currency: str
    price: int
    tier_prices: Mapping[str, int]
    stock: int | None
    available_from: datetime | None
    available_until: datetime | None
    min_tier: str | None
    per_member_limit: int | None
    codes_left: int | None = None
    exclusive_tag: str | None = None
    early_access_days: int | None = None


@dataclass(frozen=True)
class Shopper:
    """A member as the shop sees them. ``ladder`` is the program's tier ids, bottom first
    (empty without a ladder); ``taken`` the member's redemptions of this reward that were
    not cancelled; ``available`` the balance in the reward's currency."""

    status: str
    tier: str | None
    ladder: Sequence[str]
    available: int
    taken: int
    # The member's tier benefits: reward tags it unlocks, and early access.
    exclusive: frozenset[str] = frozenset()
    early_access: bool = False
    # A personal offer's price for this reward (a benefit of kind ``reward``).
    personal_price: int | None = None


@dataclass(frozen=True)
class Verdict:
    price: int
    reason: Reason | None = None
    detail: str | None = None

    @property
    def can_redeem(self) -> bool:
        return self.reason is None

    @property
    def visible(self) -> bool:
        return self.reason not in HIDING


def initial_status(kind: str) -> Literal["issued", "fulfilled"]:
    """Rewards staff hand over start ``issued``; the others hand out a code at once."""
    return "issued" if kind in STAFF_FULFILLED else "fulfilled"


def _rank(ladder: Sequence[str], tier: str | None) -> int | None:
    return ladder.index(tier) if tier is not None and tier in ladder else None


def price_for(terms: Terms, tier: str | None, ladder: Sequence[str]) -> int:
    """The member's price: the tier price of the highest tier at or below the member's that
    has one (a price for silver holds for gold too, unless gold has its own), else the
    reward's price. Tier prices of tiers the ladder no longer has are ignored."""
    rank = _rank(ladder, tier)
    if rank is None or not terms.tier_prices:
        return terms.price
    for candidate in reversed(ladder[: rank + 1]):
        if candidate in terms.tier_prices:
            return terms.tier_prices[candidate]
    return terms.price


def reaches(ladder: Sequence[str], tier: str | None, min_tier: str | None) -> bool:
    """Whether a member on ``tier`` may take a reward for ``min_tier`` and above. A minimum
    tier the ladder no longer has (or a program without a ladder) admits nobody: an
    exclusive reward stays exclusive until someone fixes it."""
    if min_tier is None:
        return True
    needed, have = _rank(ladder, min_tier), _rank(ladder, tier)
    return needed is not None and have is not None and have >= needed


def in_stock(terms: Terms) -> bool:
    counted = terms.stock is None or terms.stock > 0
    pooled = terms.codes_left is None or terms.codes_left > 0
    return counted and pooled


def opens_for(terms: Terms, member: Shopper) -> datetime:
    """When the reward opens for ``member``: ``available_from``, or ``early_access_days``
    before it for a member whose tier gives early access."""
    assert terms.available_from is not None
    if member.early_access and terms.early_access_days:
        return terms.available_from - timedelta(days=terms.early_access_days)
    return terms.available_from


def judge(terms: Terms, member: Shopper, now: datetime) -> Verdict:
    """Whether ``member`` may take the reward now, at which price; the first reason found
    otherwise (what hides the reward first, then what is the member's)."""
    price = price_for(terms, member.tier, member.ladder)
    if member.personal_price is not None:
        price = min(price, member.personal_price)
    key = terms.key
    if terms.status != "active":
        return Verdict(price, Reason.ARCHIVED, f"reward {key!r} is archived")
    if terms.available_from is not None and now < opens_for(terms, member):
        when = terms.available_from.isoformat()
        return Verdict(price, Reason.NOT_YET_AVAILABLE, f"reward {key!r} is available from {when}")
    if terms.available_until is not None and now >= terms.available_until:
        when = terms.available_until.isoformat()
        return Verdict(price, Reason.ENDED, f"reward {key!r} was available until {when}")
    if not reaches(member.ladder, member.tier, terms.min_tier):
        return Verdict(
            price,
            Reason.TIER,
            f"reward {key!r} is for tier {terms.min_tier!r} and above; "
            f"the member's tier is {member.tier!r}",
        )
    if terms.exclusive_tag is not None and terms.exclusive_tag not in member.exclusive:
        return Verdict(
            price,
            Reason.EXCLUSIVE,
            f"reward {key!r} is exclusive to members tagged {terms.exclusive_tag!r} or of tiers "
            f"with {terms.exclusive_tag!r} rewards; the member is neither",
        )
    if not in_stock(terms):
        return Verdict(price, Reason.OUT_OF_STOCK, f"reward {key!r} is out of stock")
    if member.status != "active":
        return Verdict(price, Reason.MEMBER_BLOCKED, "a blocked member cannot redeem rewards")
    limit = terms.per_member_limit
    if limit is not None and member.taken >= limit:
        return Verdict(
            price,
            Reason.LIMIT_REACHED,
            f"reward {key!r} is limited to {limit} per member and the member has redeemed "
            f"it {member.taken} time{'' if member.taken == 1 else 's'}",
        )
    if member.available < price:
        return Verdict(
            price,
            Reason.INSUFFICIENT_BALANCE,
            f"reward {key!r} costs {price} {terms.currency}; the member has "
            f"{max(member.available, 0)} available",
        )
    return Verdict(price)


def refusal(verdict: Verdict, member: Shopper) -> KopilkaError:
    """The error a refused redemption answers with; each names its reason."""
    assert verdict.reason is not None and verdict.detail is not None
    reason = verdict.reason.value
    if verdict.reason is Reason.MEMBER_BLOCKED:
        return MemberBlocked(verdict.detail, field="member", reason=reason)
    if verdict.reason is Reason.INSUFFICIENT_BALANCE:
        return InsufficientBalance(
            verdict.detail,
            field="member",
            reason=reason,
            price=verdict.price,
            available=max(member.available, 0),
        )
    field = "member" if verdict.reason is Reason.LIMIT_REACHED else "reward"
    return RewardUnavailable(verdict.detail, field=field, reason=reason)


# --- definitions -----------------------------------------------------------------------------


def check_definition(
    *,
    kind: str,
    currency: str,
    price: int,
    tier_prices: Mapping[str, int] | None,
    min_tier: str | None,
    available_from: datetime | None,
    available_until: datetime | None,
    coupon_campaign: str | None,
    gift_amount: int | None,
    code_source: str | None,
    code_pattern: str | None,
    currencies: Collection[str],
    ladder: Sequence[str] | None,
) -> None:
    """What a single field cannot check: the program's currencies and ladder, the window,
    and the fields each kind needs or must not have. Raises :class:`InvalidInput`."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if currency not in currencies:
        raise InvalidInput(
            f"currency {currency!r} is not one of the program's {sorted(currencies)}",
            field="currency",
        )
    if price < 0:
        raise InvalidInput("price must not be negative", field="price")
    _check_tiers(tier_prices, min_tier, ladder)
    if available_from and available_until and available_until <= available_from:
        raise InvalidInput("available_until must be after available_from", field="available_until")
    _check_kind_fields(kind, coupon_campaign, gift_amount, code_source, code_pattern)


def _check_tiers(
    tier_prices: Mapping[str, int] | None, min_tier: str | None, ladder: Sequence[str] | None
) -> None:
    if not tier_prices and min_tier is None:
        return
    if not ladder:
        field = "min_tier" if min_tier is not None else "tier_prices"
        raise InvalidInput(
            "the program has no tier ladder: tier prices and tier restrictions need one",
            field=field,
        )
    if min_tier is not None and min_tier not in ladder:
        raise InvalidInput(
            f"min_tier {min_tier!r} is not a tier of the ladder {list(ladder)}", field="min_tier"
        )
    for tier, amount in (tier_prices or {}).items():
        if tier not in ladder:
            raise InvalidInput(
                f"tier_prices: {tier!r} is not a tier of the ladder {list(ladder)}",
                field=f"tier_prices.{tier}",
            )
        if amount < 0:
            raise InvalidInput("tier prices must not be negative", field=f"tier_prices.{tier}")


def _check_kind_fields(
    kind: str,
    coupon_campaign: str | None,
    gift_amount: int | None,
    code_source: str | None,
    code_pattern: str | None,
) -> None:
    if kind in COUPON_KINDS:
        if not coupon_campaign:
            raise InvalidInput(
                f"a {kind} reward names the coupon campaign its codes come from",
                field="coupon_campaign",
            )
    elif coupon_campaign is not None:
        raise InvalidInput(
            f"coupon_campaign is only for {', '.join(sorted(COUPON_KINDS))} rewards",
            field="coupon_campaign",
        )
    if kind == "gift_certificate":
        if gift_amount is None or gift_amount <= 0:
            raise InvalidInput(
                "a gift_certificate reward needs gift_amount (money, minor units)",
                field="gift_amount",
            )
    elif gift_amount is not None:
        raise InvalidInput("gift_amount is only for gift_certificate rewards", field="gift_amount")
    if kind != "digital":
        for name, value in (("code_source", code_source), ("code_pattern", code_pattern)):
            if value is not None:
                raise InvalidInput(f"{name} is only for digital rewards", field=name)
        return
    if code_source not in (None, "pool", "generated"):
        raise InvalidInput("code_source must be pool or generated", field="code_source")
    if code_pattern is not None:
        if code_source == "pool":
            raise InvalidInput(
                "code_pattern is for generated codes; a pool hands out the codes it was given",
                field="code_pattern",
            )
        check_pattern(code_pattern, field="code_pattern")


# What each coupon kind of reward hands out, as the campaign's discount kinds.
CAMPAIGN_DISCOUNTS: dict[str, frozenset[str]] = {
    "discount_coupon": frozenset({"percent", "fixed"}),
    "free_product": frozenset({"free_product"}),
    "free_delivery": frozenset({"free_delivery"}),
}


def check_campaign(kind: str, campaign: str, discount_kind: str) -> None:
    """A coupon reward's campaign must give what the reward says it gives."""
    wanted = CAMPAIGN_DISCOUNTS.get(kind, frozenset())
    if discount_kind not in wanted:
        raise InvalidInput(
            f"coupon campaign {campaign!r} gives {discount_kind}; a {kind} reward needs a "
            f"campaign giving {' or '.join(sorted(wanted))}",
            field="coupon_campaign",
        )
