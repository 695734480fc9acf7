"""The demo's rewards shop: a small catalog, and shoppers who spend points on it."""

import random
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.coupons.schemas import CampaignCreate
from kopilka.coupons.service import coupon_service
from kopilka.errors import KopilkaError
from kopilka.members.schemas import MemberRef
from kopilka.programs.service import ProgramContext
from kopilka.rewards.redemptions import redemption_service
from kopilka.rewards.schemas import RedemptionCreate, RewardCreate
from kopilka.rewards.service import reward_service

FREE_CAPPUCCINO = {
    "key": "free-cappuccino",
    "name": "A free cappuccino",
    "discount": {"kind": "free_product", "free_sku": "COF-003"},
    "valid_days": 30,
    "code_pattern": "CAP-####-####",
}
CATALOG: list[dict[str, Any]] = [
    {
        "key": "free-cappuccino",
        "name": "Cappuccino on us",
        "category": "coffee",
        "kind": "free_product",
        "price": 250,
        "tier_prices": {"silver": 200, "gold": 150},
        "coupon_campaign": "free-cappuccino",
    },
    {
        "key": "early-menu",
        "name": "Taste the autumn menu a week early",
        "category": "digital",
        "kind": "digital",
        "price": 100,
        "per_member_limit": 1,
        "code_pattern": "MENU-######",
    },
    {
        "key": "meal-donation",
        "name": "Give a hot meal to the city food bank",
        "category": "charity",
        "kind": "charity",
        "price": 300,
    },
    {
        "key": "gift-500",
        "name": "Gift certificate, 500 ₽",
        "category": "gifts",
        "kind": "gift_certificate",
        "price": 600,
        "gift_amount": 50_000,
    },
    {
        "key": "mug",
        "name": "Café mug",
        "category": "merch",
        "kind": "physical",
        "price": 900,
        "stock": 25,
    },
    {
        # What the rule `regulars` offers, and what the journey `regulars` opens with its tag.
        "key": "baristas-choice",
        "name": "The barista's choice of the week",
        "category": "coffee",
        "kind": "physical",
        "price": 400,
        "exclusive_tag": "regular",
    },
    {
        "key": "gold-tasting",
        "name": "Coffee tasting with the roaster (gold members)",
        "category": "events",
        "kind": "event",
        "price": 500,
        "min_tier": "gold",
        "stock": 12,
    },
]
SHOP_CHANCE = 0.4  # a spender buys from the shop rather than paying a bill with points
FULFIL_CHANCE = 0.9  # physical and event rewards handed over; the rest cancelled


async def open_shop(conn: AsyncConnection, program: ProgramContext, now: datetime) -> None:
    await coupon_service.create_campaign(conn, program, CampaignCreate(**FREE_CAPPUCCINO), now)
    for item in CATALOG:
        await reward_service.create(conn, program, RewardCreate.model_validate(item), now)


async def buy_something(
    conn: AsyncConnection,
    program: ProgramContext,
    member_id: UUID,
    available: int,
    rng: random.Random,
    now: datetime,
) -> bool:
    """Redeem a reward the member can take and afford, if any; physical and event rewards
    are then handed over or, now and then, cancelled (points back). Whether one was bought."""
    catalog = await reward_service.catalog(
        conn,
        program,
        member_id=member_id,
        affordable=True,
        category=None,
        status=None,
        limit=50,
        cursor=None,
        now=now,
    )
    choices = [item for item in catalog.items if item.can_redeem]
    if not choices or available <= 0:
        return False
    reward = rng.choice(choices)
    try:
        # A refusal (the last mug went a moment ago) leaves the day's other work intact.
        async with conn.begin_nested():
            made = await redemption_service.redeem(
                conn,
                program,
                reward.key,
                RedemptionCreate(member=MemberRef(id=member_id)),
                None,
                now,
            )
    except KopilkaError:
        return False
    redemption = made[1]
    if redemption["status"] == "issued":
        if rng.random() < FULFIL_CHANCE:
            await redemption_service.fulfil(conn, program, UUID(redemption["id"]), None, now)
        else:
            await redemption_service.cancel(
                conn, program, UUID(redemption["id"]), "changed their mind", now
            )
    return True
