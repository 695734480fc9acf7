"""What each kind of reward hands out when it is redeemed, one issuer per kind.

Physical items, event invitations and charity donations hand out nothing at once (staff
fulfil them later). A digital reward gives a code from its pool or a freshly generated one;
coupon kinds a personal code of their coupon campaign; a gift certificate a new gift card.
Everything runs inside the redemption's transaction: if anything fails, nothing was issued.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.service import coupon_service
from kopilka.giftcards.service import gift_card_service
from kopilka.kit.codes import generate_codes
from kopilka.programs.service import ProgramContext
from kopilka.rewards.domain import DEFAULT_CODE_PATTERN, Reason, RewardUnavailable
from kopilka.rewards.repository import RewardRepository, reward_repository


@dataclass(frozen=True)
class Handout:
    code: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class Redeeming:
    """The redemption being made, as an issuer needs it."""

    program: ProgramContext
    reward: Any  # the rewards row
    member_id: UUID
    redemption_id: UUID
    now: datetime

    @property
    def source(self) -> tuple[str, str]:
        return ("reward", str(self.redemption_id))


Issuer = Callable[[AsyncConnection, Redeeming, RewardRepository], Awaitable[Handout]]


def _field(issued: Any, name: str) -> Any:
    """A field of what another feature's service returned (a dict or an object)."""
    if isinstance(issued, dict):
        return issued.get(name)
    return getattr(issued, name, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def _nothing_yet(
    conn: AsyncConnection, redeeming: Redeeming, repository: RewardRepository
) -> Handout:
    return Handout()


async def _digital_code(
    conn: AsyncConnection, redeeming: Redeeming, repository: RewardRepository
) -> Handout:
    reward = redeeming.reward
    if reward.code_source == "pool":
        code = await repository.claim_code(conn, reward.id, redeeming.redemption_id)
        if code is None:
            raise RewardUnavailable(
                f"reward {reward.key!r} is out of stock: its code pool is empty",
                field="reward",
                reason=Reason.OUT_OF_STOCK.value,
            )
        return Handout(code, {"source": "pool"})
    # Generated codes are random over a pattern far larger than the codes in use; the
    # unique (reward, code) constraint turns the rare repeat into a retried transaction.
    code = generate_codes(reward.code_pattern or DEFAULT_CODE_PATTERN, 1)[0]
    return Handout(code, {"source": "generated"})


async def _coupon_code(
    conn: AsyncConnection, redeeming: Redeeming, repository: RewardRepository
) -> Handout:
    campaign = redeeming.reward.coupon_campaign
    issued = await coupon_service.issue_code(
        conn,
        redeeming.program,
        campaign,
        member_id=redeeming.member_id,
        now=redeeming.now,
        source=redeeming.source,
    )
    return Handout(
        str(_field(issued, "code")),
        {
            "coupon_campaign": campaign,
            "coupon_code_id": _text(_field(issued, "id")),
            "expires_at": _text(_field(issued, "expires_at")),
        },
    )


async def _gift_card(
    conn: AsyncConnection, redeeming: Redeeming, repository: RewardRepository
) -> Handout:
    amount = redeeming.reward.gift_amount
    card = await gift_card_service.issue(
        conn,
        redeeming.program,
        amount=amount,
        now=redeeming.now,
        member_id=redeeming.member_id,
        source=redeeming.source,
    )
    return Handout(
        str(_field(card, "code")),
        {"gift_amount": amount, "gift_card_id": _text(_field(card, "id"))},
    )


ISSUERS: dict[str, Issuer] = {
    "physical": _nothing_yet,
    "event": _nothing_yet,
    "charity": _nothing_yet,
    "digital": _digital_code,
    "discount_coupon": _coupon_code,
    "free_product": _coupon_code,
    "free_delivery": _coupon_code,
    "gift_certificate": _gift_card,
}


async def hand_out(
    conn: AsyncConnection, redeeming: Redeeming, repository: RewardRepository = reward_repository
) -> Handout:
    return await ISSUERS[redeeming.reward.kind](conn, redeeming, repository)
